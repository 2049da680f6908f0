// Per-kernel profile of inference with element counts (dev tool): deno run -A tests/bench/prof_kernels.ts [engine] [net] [batch]
// net: ref, convnext or <registry model>@<size>; PROF_DETAIL=<kernel> lists that kernel by shape.
import * as tf from "@tensorflow/tfjs-core";
import { initEngine } from "../../lib/engine/init.ts";
import { netByName } from "./net_by_name.ts";
const [engine = "native", net = "efficientnet_b3@48", bs = "32"] = Deno.args;
await initEngine(engine);
const model = netByName(net);
const x = tf.randomNormal([Number(bs), ...model.inputs[0].shape.slice(1) as number[]]);
for (let i = 0; i < 2; i++) tf.tidy(() => (model.predict(x) as tf.Tensor).dataSync());
const t = performance.now();
for (let i = 0; i < 3; i++) tf.tidy(() => (model.predict(x) as tf.Tensor).dataSync());
console.log(`infer ${((performance.now() - t) / 3).toFixed(1)} ms/batch`);
const prof = await tf.profile(() => tf.tidy(() => (model.predict(x) as tf.Tensor).dataSync()));
const agg = new Map<string, { ms: number; n: number; el: number }>();
for (const k of prof.kernels) {
  const a = agg.get(k.name) ?? { ms: 0, n: 0, el: 0 };
  a.ms += k.kernelTimeMs as number;
  a.n++;
  a.el += (k.outputShapes[0] ?? []).reduce((p: number, q: number) => p * q, 1);
  agg.set(k.name, a);
}
let tot = 0;
for (const a of agg.values()) tot += a.ms;
console.log("total kernel ms", tot.toFixed(1), "kernels", prof.kernels.length);
for (const [n, a] of [...agg].sort((p, q) => q[1].ms - p[1].ms).slice(0, 16)) {
  console.log(
    `${n.padEnd(28)} ${a.ms.toFixed(1).padStart(7)} ms x${a.n}  ${(a.el / 1e6).toFixed(1)}M el  ${
      (1e6 * a.ms / a.el).toFixed(2)
    } ns/el`,
  );
}
if (Deno.env.get("PROF_DETAIL")) {
  const want = Deno.env.get("PROF_DETAIL")!;
  const rows = prof.kernels.filter((k) => k.name === want).map((k) => ({
    ms: k.kernelTimeMs as number,
    sh: JSON.stringify(k.inputShapes) + " -> " + JSON.stringify(k.outputShapes),
  }));
  const by = new Map<string, { ms: number; n: number }>();
  for (const r of rows) {
    const a = by.get(r.sh) ?? { ms: 0, n: 0 };
    a.ms += r.ms;
    a.n++;
    by.set(r.sh, a);
  }
  for (const [sh, a] of [...by].sort((p, q) => q[1].ms - p[1].ms).slice(0, 25)) {
    console.log(`${a.ms.toFixed(2).padStart(7)} ms x${a.n} ${sh}`);
  }
}
