// Training-step speed in float32 and in bfloat16 convolutions (lib/engine/dnnl/conv.ts), alternating (dev tool):
//   FER_THREADS=1 deno run -A tests/bench/precision.ts [net] [batch] [steps]
// net as in profile.ts (`ref`, `convnext` or `<registry model>@<size>`, e.g. `vgg_fer@44`); default vgg_fer@44,
// batch 64, 4 timed steps per precision and round, three rounds. The same weights and batch in both precisions.
import { initEngine, setPrecision } from "../../lib/engine/init.ts";
import { syntheticTraining } from "../../lib/bench/nets.ts";
import { netByName } from "./net_by_name.ts";

const [net = "vgg_fer@44", bs = "64", st = "4"] = Deno.args;
console.log(await initEngine("native"));
const batch = Number(bs), steps = Number(st);
const model = netByName(net, 1);
const { step, dispose } = syntheticTraining(model, batch);
const rates: Record<string, number[]> = { float32: [], bfloat16: [] };
for (let round = 0; round < 3; round++) {
  for (const p of ["float32", "bfloat16"] as const) {
    const r = setPrecision(p);
    if (r.precision !== p) throw new Error(`${p} unavailable: ${r.reason}`);
    await step(); // warm-up: primitives for this precision
    const t = performance.now();
    for (let i = 0; i < steps; i++) await step();
    rates[p].push((batch * steps) / ((performance.now() - t) / 1000));
  }
}
setPrecision("float32");
dispose();
const median = (a: number[]) => [...a].sort((p, q) => p - q)[Math.floor(a.length / 2)];
for (const [p, r] of Object.entries(rates)) {
  console.log(
    `${net} batch ${batch} ${p.padEnd(8)}: ${r.map((v) => v.toFixed(1)).join(" / ")} img/s (median ${
      median(r).toFixed(1)
    })`,
  );
}
console.log(`bfloat16 / float32: ${(median(rates.bfloat16) / median(rates.float32)).toFixed(2)}x`);
