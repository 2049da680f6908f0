// Micro-benchmark of one oneDNN convolution shape through the engine's handle (dev tool):
//   deno run -A tests/bench/micro_conv.ts N H W C O k stride
import * as tf from "@tensorflow/tfjs-core";
import { openDnnl } from "../../lib/engine/dnnl.ts";
const [N, H, W, C, O, k, s] = (Deno.args.length ? Deno.args : ["32", "24", "24", "24", "144", "1", "1"]).map(
  Number,
);
const d = openDnnl(Number(Deno.env.get("FER_THREADS") ?? 2))!;
const g = tf.backend_util.computeConv2DInfo([N, H, W, C], [k, k, C, O], s, 1, "same");
const x = new Float32Array(N * H * W * C).map(() => Math.random() - 0.5);
const w = new Float32Array(k * k * C * O).map(() => Math.random() - 0.5);
const time = (label: string, f: () => unknown, reps = 30) => {
  f();
  const t = performance.now();
  for (let i = 0; i < reps; i++) f();
  const ms = (performance.now() - t) / reps;
  console.log(`${label.padEnd(24)} ${ms.toFixed(3)} ms`);
};
time("fwd", () => d.forward(x, w, g, 1));
time("fwd", () => d.forward(x, w, g, 1));
const y = d.forward(x, w, g, 1)!;
time("bwd data", () => d.backwardData(y, w, g, 1));
time("bwd weights", () => d.backwardWeights(x, y, g, 1));
console.log("impls:", d.impls().join(", "));
time("alloc+fill out", () => new Float32Array(N * g.outHeight * g.outWidth * O).fill(1));
