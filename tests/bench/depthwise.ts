// Depthwise weight gradients: oneDNN vs the WebAssembly kernel (lib/engine/wasm/depthwise.ts) on every shape of
// a ConvNeXt-Tiny step at 64 px and an EfficientNet-B3 step at 48 px, batch 32 (dev tool):
//   FER_THREADS=1 deno run -A tests/bench/depthwise.ts
// Median of five rounds of ten calls, the two alternating so that a busy machine slows both alike; the `engine`
// column is the one lib/engine/native.ts picks (oneDNN where its depthwise kernel `jit_dw` takes the shape).
import * as tf from "@tensorflow/tfjs-core";
import { openDnnl } from "../../lib/engine/dnnl.ts";
import { depthwiseFilterWasm } from "../../lib/engine/wasm/depthwise.ts";

const dnnl = openDnnl(Number(Deno.env.get("FER_THREADS") ?? 2));
if (!dnnl) throw new Error("oneDNN is not loaded: nothing to compare with");
type Shape = [
  side: number,
  channels: number,
  kernel: number,
  stride: number,
  pad: "same" | "valid",
  count: number,
];
const NETS: Record<string, Shape[]> = {
  "convnext_tiny@64": [[16, 96, 7, 1, "same", 3], [8, 192, 7, 1, "same", 3], [4, 384, 7, 1, "same", 9], [
    2,
    768,
    7,
    1,
    "same",
    3,
  ]],
  "efficientnet_b3@48": [
    [24, 24, 3, 1, "same", 1],
    [24, 40, 3, 1, "same", 1],
    [26, 144, 3, 2, "valid", 1],
    [12, 192, 3, 1, "same", 2],
    [16, 192, 5, 2, "valid", 1],
    [6, 288, 5, 1, "same", 2],
    [8, 288, 3, 2, "valid", 1],
    [3, 576, 3, 1, "same", 4],
    [3, 576, 5, 1, "same", 1],
    [3, 816, 5, 1, "same", 4],
    [7, 816, 5, 2, "valid", 1],
    [2, 1392, 5, 1, "same", 5],
    [2, 1392, 3, 1, "same", 1],
    [2, 2304, 3, 1, "same", 1],
  ],
};
const median = (a: number[]) => [...a].sort((p, q) => p - q)[a.length >> 1];
for (const [net, shapes] of Object.entries(NETS)) {
  const total = [0, 0, 0];
  for (const [side, c, k, s, pad, count] of shapes) {
    const g = tf.backend_util.computeConv2DInfo(
      [32, side, side, c],
      [k, k, c, 1],
      s,
      1,
      pad,
      undefined,
      true,
    );
    const x = new Float32Array(32 * side * side * c).map(() => Math.random() - 0.5);
    const dy = new Float32Array(32 * g.outHeight * g.outWidth * c).map(() => Math.random() - 0.5);
    const runs = [() => dnnl.backwardWeights(x, dy, g, c), () => depthwiseFilterWasm(x, dy, g, 1)];
    const times: number[][] = [[], []];
    runs.forEach((f) => f());
    for (let round = 0; round < 5; round++) {
      runs.forEach((f, i) => {
        const t = performance.now();
        for (let r = 0; r < 10; r++) f();
        times[i].push((performance.now() - t) / 10);
      });
    }
    const impl = dnnl.backwardWeightsImpl(g, c);
    const [a, b] = times.map(median), e = /^jit_dw/.test(impl) ? a : b;
    [a, b, e].forEach((v, i) => (total[i] += v * count));
    console.log(
      `${net} ${side}×${side}×${c} k${k} s${s} ×${count}`.padEnd(42) +
        `oneDNN ${a.toFixed(2).padStart(6)} ms (${impl})  wasm ${b.toFixed(2).padStart(6)} ms`,
    );
  }
  console.log(
    `${net} per step: oneDNN ${total[0].toFixed(1)} ms, wasm ${total[1].toFixed(1)} ms, engine ${
      total[2].toFixed(1)
    } ms\n`,
  );
}
