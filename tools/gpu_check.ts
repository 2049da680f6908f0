/**
 * The GPU check (README, "GPU engine"): one script, bundleable into one file, that
 *   1. prints the WebGPU adapter and fails on a software fallback adapter (unless `--allow-fallback`),
 *   2. runs the webgpu-vs-cpu gradient-parity cases (lib/engine/parity.ts),
 *   3. times training steps (AdamW on the device) and inference of EfficientNet-B3 and ConvNeXt-Tiny at 224 px
 *      (batch 32, after warm-up) and of the benchmark's reference net (48x48x1, batch 64), printing img/s and
 *      the implied minutes per FER2013 training epoch (28,709 images).
 *
 *   deno run -A tools/gpu_check.ts [--allow-fallback] [--tiny] [--size 224] [--batch 32] [--steps 5]
 *     [--only efficientnet_b3,convnext_tiny,reference|none] [--skip-parity] [--out result.json]
 *     [--recipes vgg_fer:cpu,efficientnet_b3:scratch,...]
 *
 * `--recipes EXPERIMENT:PRESET,...` also times each experiment's own setting (lib/train/experiments.ts: its
 * model with the preset's options, input size, channels and batch size), so the minutes per epoch are those of
 * that run on this GPU.
 *
 * `--tiny` (for a software adapter): 32 px, batch 2, one warm-up and one timed step, reference net at batch 4.
 * Exit status: 0 all good, 1 a parity case failed, 2 no adapter or a software one without `--allow-fallback`.
 */
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import { parseArgs } from "node:util";
import { describeAdapter, probeAdapter, setWebgpuBackend } from "../lib/engine/webgpu.ts";
import { gradientParity, type ParityResult } from "../lib/engine/parity.ts";
import { createModel } from "../lib/models/registry.ts";
import { referenceNet, syntheticTraining } from "../lib/bench/nets.ts";
import { experimentConfig } from "../lib/train/experiments.ts";
import type { Preset } from "../lib/train/experiments.ts";

/** FER2013's training folder (the study trained on all of it). */
const FER_TRAIN_IMAGES = 28_709;
/** webgpu vs cpu relative tolerance (tests/engine/webgpu_test.ts uses the same). */
const PARITY_TOL = 1e-4;

const { values: args } = parseArgs({
  args: Deno.args,
  options: {
    "allow-fallback": { type: "boolean", default: false },
    tiny: { type: "boolean", default: false },
    size: { type: "string" },
    batch: { type: "string" },
    steps: { type: "string" },
    out: { type: "string" },
    "skip-parity": { type: "boolean", default: false },
    only: { type: "string" },
    recipes: { type: "string" },
  },
});
const tiny = args.tiny;
const size = Number(args.size ?? (tiny ? 32 : 224));
const batch = Number(args.batch ?? (tiny ? 2 : 32));
const steps = Number(args.steps ?? (tiny ? 1 : 5));
const warmup = tiny ? 1 : 2;
const MODELS = ["efficientnet_b3", "convnext_tiny", "reference"];
const only = args.only === "none" ? [] : args.only?.split(",").map((s) => s.trim()) ?? MODELS;
if (only.some((n) => !MODELS.includes(n))) {
  console.error(`--only: expected names from ${MODELS.join(", ")} (or none), got ${args.only}`);
  Deno.exit(2);
}

type Timing = {
  model: string;
  input: number[];
  batch: number;
  train_img_s: number;
  infer_img_s: number;
  minutes_per_epoch: number;
  first_step_s: number;
};

async function time(name: string, model: ReturnType<typeof referenceNet>, b: number): Promise<Timing> {
  const input = model.inputs[0].shape.slice(1) as number[];
  const { step, dispose } = syntheticTraining(model, b);
  const t0 = performance.now();
  await step(); // compiles the shaders
  const first = (performance.now() - t0) / 1000;
  for (let i = 1; i < warmup; i++) await step();
  const t1 = performance.now();
  for (let i = 0; i < steps; i++) await step();
  const train = (b * steps) / ((performance.now() - t1) / 1000);
  dispose();
  const x = tf.randomNormal([b, ...input]);
  const infer = async () => {
    const y = model.predict(x) as tf.Tensor;
    await y.data();
    y.dispose();
  };
  for (let i = 0; i < warmup; i++) await infer();
  const t2 = performance.now();
  for (let i = 0; i < steps; i++) await infer();
  const inf = (b * steps) / ((performance.now() - t2) / 1000);
  x.dispose();
  return {
    model: name,
    input,
    batch: b,
    train_img_s: train,
    infer_img_s: inf,
    minutes_per_epoch: FER_TRAIN_IMAGES / train / 60,
    first_step_s: first,
  };
}

async function main(): Promise<number> {
  // 1. the adapter
  const adapter = await probeAdapter();
  if (!adapter) {
    console.error(
      "no WebGPU adapter: install the Vulkan loader (libvulkan1) and the GPU driver's Vulkan ICD, then run with " +
        "DENO_WEBGPU_BACKEND=vulkan",
    );
    return 2;
  }
  console.log(`adapter: ${describeAdapter(adapter)}`);
  if (adapter.fallback && !args["allow-fallback"]) {
    console.error("the adapter is a software fallback, not a GPU (pass --allow-fallback to run anyway)");
    return 2;
  }
  const { reason } = await setWebgpuBackend({ warn: (s) => console.log(`note: ${s}`) });
  if (reason) {
    console.error(`webgpu backend: ${reason}`);
    return 2;
  }

  // 2. gradient parity against the cpu backend
  let parity: ParityResult[] = [];
  if (!args["skip-parity"]) {
    console.log(`gradient parity, webgpu vs cpu (relative tolerance ${PARITY_TOL}):`);
    parity = await gradientParity({
      onCase: (r) =>
        console.log(
          `  ${r.maxRelError <= PARITY_TOL ? "ok  " : "FAIL"} ${r.family.padEnd(10)} ` +
            `${r.maxRelError.toExponential(2)}  ${r.name} (worst: ${r.worst})`,
        ),
    });
  }
  const failed = parity.filter((r) => !(r.maxRelError <= PARITY_TOL));
  await tf.setBackend("webgpu");

  // 3. timings
  console.log(
    `timing (webgpu, AdamW on the device; ${warmup} warm-up step${warmup > 1 ? "s" : ""}, ${steps} timed):`,
  );
  // the 224 px study models last: they take longest, and a run cut off by a time limit keeps what came before
  const plan: [string, () => ReturnType<typeof referenceNet>, number][] = [
    ["reference", () => referenceNet(), tiny ? 4 : 64],
    [
      "efficientnet_b3",
      () => createModel("efficientnet_b3", { inputShape: [size, size, 3], numClasses: 7 }),
      batch,
    ],
    [
      "convnext_tiny",
      () => createModel("convnext_tiny", { inputShape: [size, size, 3], numClasses: 7 }),
      batch,
    ],
  ];
  const recipes = (args.recipes ?? "").split(",").map((s) => s.trim()).filter(Boolean).map((r) => {
    const [exp, preset] = r.split(":");
    const cfg = experimentConfig(exp, preset as Preset);
    const build = () =>
      createModel(cfg.model, {
        numClasses: 7,
        inputShape: [cfg.inputSize, cfg.inputSize, cfg.channels],
        seed: cfg.seed,
        ...cfg.modelOptions,
      });
    return [r, build, cfg.batchSize] as [string, () => ReturnType<typeof referenceNet>, number];
  });
  const timings: Timing[] = [];
  const result = {
    adapter,
    deno: Deno.version.deno,
    filter_grads: Deno.env.get("FER_WEBGPU_GRADS") ?? "auto",
    parity,
    parity_failed: failed.map((r) => r.name),
    timings,
    options: { size, batch, steps, warmup, tiny },
  };
  // written after every model, so that a run stopped by a time limit leaves what it measured
  const save = () => args.out && Deno.writeTextFileSync(args.out, JSON.stringify(result, null, 2) + "\n");
  const pick = (names: string[]) => plan.filter(([n]) => names.includes(n) && only.includes(n));
  const order = [...pick(["reference"]), ...recipes, ...pick(["efficientnet_b3", "convnext_tiny"])];
  for (const [name, build, b] of order) {
    const model = build();
    try {
      const t = await time(name, model, b);
      timings.push(t);
      console.log(
        `  ${name.padEnd(24)} ${t.input.join("x").padEnd(10)} batch ${String(b).padEnd(3)} ` +
          `train ${t.train_img_s.toFixed(1).padStart(7)} img/s (${t.minutes_per_epoch.toFixed(1)} min per ` +
          `FER2013 epoch)  inference ${t.infer_img_s.toFixed(1).padStart(7)} img/s  ` +
          `first step ${t.first_step_s.toFixed(1)} s`,
      );
    } finally {
      model.dispose();
    }
    save();
  }
  console.log(`json: ${JSON.stringify(result)}`);
  save();
  if (failed.length) console.error(`gradient parity failed: ${failed.map((r) => r.name).join("; ")}`);
  return failed.length ? 1 : 0;
}

if (import.meta.main) Deno.exit(await main());
