// Per-kernel profile of inference (batch 256) of a bench net (dev tool).
import * as tf from "@tensorflow/tfjs-core";
import { initEngine } from "../../lib/engine/init.ts";
import { convnextNet, referenceNet } from "../../lib/bench/nets.ts";
const [engine = "native", net = "ref", bs = "256"] = Deno.args;
await initEngine(engine);
const model = net === "ref" ? referenceNet() : convnextNet();
const shape = model.inputs[0].shape.slice(1) as number[];
const x = tf.randomNormal([Number(bs), ...shape]);
tf.tidy(() => (model.predict(x) as tf.Tensor).dataSync());
const t = performance.now();
const prof = await tf.profile(() => tf.tidy(() => (model.predict(x) as tf.Tensor).dataSync()));
console.log(`infer ${((performance.now() - t) / 1000).toFixed(2)} s`);
const agg = new Map<string, number>();
for (const k of prof.kernels) agg.set(k.name, (agg.get(k.name) ?? 0) + (k.kernelTimeMs as number));
for (const [n, ms] of [...agg].sort((a, b) => b[1] - a[1]).slice(0, 14)) {
  console.log(`${n.padEnd(32)} ${ms.toFixed(0)} ms`);
}
