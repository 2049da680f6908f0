// Per-kernel profile of one training step (dev tool):
//   deno run -A tests/bench/profile.ts [engine] [net] [batch]
// net: `ref` (bench reference net), `convnext` (bench depthwise net) or `<registry model>@<size>`, e.g.
// `efficientnet_b3@48` (3 channels, 7 classes). PROF_DETAIL=<kernel> lists that kernel's calls by shape;
// PROF_PRECISION=bfloat16 profiles bfloat16 convolutions and matmuls (lib/engine/init.ts setPrecision).
import * as tf from "@tensorflow/tfjs-core";
import { initEngine, type Precision, setPrecision } from "../../lib/engine/init.ts";
import { netByName } from "./net_by_name.ts";
import { syntheticTraining } from "../../lib/bench/nets.ts";

const [engine = "native", net = "ref", bs = "64"] = Deno.args;
console.log(await initEngine(engine));
const precision = setPrecision((Deno.env.get("PROF_PRECISION") ?? "float32") as Precision);
console.log(
  precision.reason ? `precision: float32 (${precision.reason})` : `precision: ${precision.precision}`,
);
const b = Number(bs);
const model = netByName(net);
const shape = model.inputs[0].shape.slice(1) as number[];
const { step } = syntheticTraining(model, b);
await step();
let t = performance.now();
await step();
console.log(
  `step ${((performance.now() - t) / 1000).toFixed(2)} s -> ${
    (b / ((performance.now() - t) / 1000)).toFixed(1)
  } img/s`,
);
const prof = await tf.profile(() => step());
const agg = new Map<string, { ms: number; n: number }>();
for (const k of prof.kernels) {
  const a = agg.get(k.name) ?? { ms: 0, n: 0 };
  a.ms += k.kernelTimeMs as number;
  a.n++;
  agg.set(k.name, a);
}
const tot = [...agg.values()].reduce((p, q) => p + q.ms, 0);
for (const [name, a] of [...agg].sort((p, q) => q[1].ms - p[1].ms).slice(0, 25)) {
  console.log(
    `${name.padEnd(36)} ${a.ms.toFixed(0).padStart(7)} ms ${
      (100 * a.ms / tot).toFixed(1).padStart(5)
    }%  x${a.n}`,
  );
}
// PROF_DETAIL=<kernel>: that kernel's calls, slowest first, with input and output shapes
const detail = Deno.env.get("PROF_DETAIL");
if (detail) {
  for (
    const k of prof.kernels.filter((k) => k.name === detail).sort((p, q) => +q.kernelTimeMs - +p.kernelTimeMs)
  ) {
    console.log(
      `  ${(+k.kernelTimeMs).toFixed(1).padStart(7)} ms  in ${JSON.stringify(k.inputShapes)} out ${
        JSON.stringify(k.outputShapes)
      }`,
    );
  }
}
t = performance.now();
tf.tidy(() => (model.predict(tf.randomNormal([Math.min(256, 4 * b), ...shape])) as tf.Tensor).dataSync());
console.log(`infer ${Math.min(256, 4 * b)}: ${((performance.now() - t) / 1000).toFixed(2)} s`);
