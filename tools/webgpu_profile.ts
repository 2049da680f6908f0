/**
 * Where a webgpu training step spends its time: one AdamW step (lib/bench/nets.ts `syntheticTraining`) of a
 * model under `tf.profile`, the kernels summed by name (GPU timestamps where the adapter has them), and how many
 * compute pipelines the step created (0 after the first step: no shader is recompiled per step). The README's
 * "GPU engine" figures for the filter-gradient kernels come from this script.
 *
 *   deno run -A tools/webgpu_profile.ts [reference|<registered model>] [size] [batch] [--top N]
 *   FER_WEBGPU_GRADS=naive|composed|auto   # lib/engine/webgpu_grads.ts
 *
 * `reference` is the benchmark's VGG-style net (48×48×1, size ignored); other names are built at size×size×3.
 */
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import { parseArgs } from "node:util";
import { setWebgpuBackend } from "../lib/engine/webgpu.ts";
import { referenceNet, syntheticTraining } from "../lib/bench/nets.ts";
import { createModel } from "../lib/models/registry.ts";

const { values, positionals } = parseArgs({
  args: Deno.args,
  options: { top: { type: "string", default: "12" } },
  allowPositionals: true,
});
const [name = "reference", size = "48", batch = "2"] = positionals;

// count the compute pipelines made (a pipeline made at every step would mean shaders recompiled per step)
let pipelines = 0;
const proto =
  (globalThis as unknown as { GPUDevice: { prototype: Record<string, unknown> } }).GPUDevice.prototype;
const create = proto.createComputePipeline as (...a: unknown[]) => unknown;
proto.createComputePipeline = function (this: unknown, ...a: unknown[]) {
  pipelines++;
  return create.apply(this, a);
};

const { adapter, reason } = await setWebgpuBackend({ warn: () => {} });
if (!adapter) {
  console.error(`webgpu: ${reason}`);
  Deno.exit(2);
}
const model = name === "reference"
  ? referenceNet()
  : createModel(name, { inputShape: [Number(size), Number(size), 3], numClasses: 7 });
const { step, dispose } = syntheticTraining(model, Number(batch));
let t0 = performance.now();
await step(); // compiles the shaders
console.log(
  `${name}, batch ${batch}, filter gradients ${Deno.env.get("FER_WEBGPU_GRADS") ?? "auto"}, on ` +
    `${adapter.description}`,
);
console.log(`first step ${((performance.now() - t0) / 1000).toFixed(1)} s, ${pipelines} pipelines made`);
pipelines = 0;
t0 = performance.now();
const prof = await tf.profile(() => step());
console.log(`profiled step ${((performance.now() - t0) / 1000).toFixed(1)} s, ${pipelines} pipelines made`);
const byName = new Map<string, { ms: number; n: number }>();
for (const k of prof.kernels) {
  const ms = await k.kernelTimeMs;
  const e = byName.get(k.name) ?? { ms: 0, n: 0 };
  e.ms += typeof ms === "number" ? ms : 0;
  e.n++;
  byName.set(k.name, e);
}
const total = [...byName.values()].reduce((s, e) => s + e.ms, 0);
console.log(`kernel time ${(total / 1000).toFixed(1)} s over ${prof.kernels.length} kernels; by name:`);
for (const [k, e] of [...byName].sort((a, b) => b[1].ms - a[1].ms).slice(0, Number(values.top))) {
  console.log(`  ${k.padEnd(36)} ${(e.ms / 1000).toFixed(2).padStart(7)} s  (${e.n})`);
}
dispose();
model.dispose();
