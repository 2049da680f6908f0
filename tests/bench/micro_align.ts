// Does 64-byte alignment of the arrays change oneDNN's speed? A convolution and an element-wise op on arrays
// at byte offsets 0, 16, 32, 48 from a 64-byte boundary (dev tool): deno run -A tests/bench/micro_align.ts
import * as tf from "@tensorflow/tfjs-core";
import { openDnnl } from "../../lib/engine/dnnl.ts";
const d = openDnnl(Number(Deno.env.get("FER_THREADS") ?? 2))!;
const [N, H, W, C, O] = [16, 56, 56, 48, 288];
const g = tf.backend_util.computeConv2DInfo([N, H, W, C], [1, 1, C, O], 1, 1, "same");
/** A Float32Array of n elements whose data starts `off` bytes past a 64-byte boundary. */
function at(n: number, off: number): Float32Array {
  const buf = new ArrayBuffer(n * 4 + 128);
  const base = Number(Deno.UnsafePointer.value(Deno.UnsafePointer.of(new Uint8Array(buf))!));
  const pad = ((64 - (base % 64)) % 64) + off;
  return new Float32Array(buf, pad, n);
}
const w = at(C * O, 0).fill(0.01);
for (const off of [0, 16, 32, 48]) {
  const x = at(N * H * W * C, off).fill(0.5), y = at(N * H * W * O, off);
  const e = at(N * H * W * O, off);
  const time = (f: () => unknown) => {
    f();
    const t = performance.now();
    for (let i = 0; i < 10; i++) f();
    return ((performance.now() - t) / 10).toFixed(2);
  };
  console.log(
    `offset ${off}: conv ${time(() => d.forward(x, w, g, 1, () => y))} ms, swish ${
      time(() => d.eltwise("swish", y, () => e))
    } ms`,
  );
}
