// A short trial of a recipe (dev tool behind docs/RECIPES.md): trains an experiment's preset for a few epochs on
// a seeded subset of the training images and prints throughput, CPU time and validation accuracy per epoch.
//   FER_THREADS=1 deno run -A tests/bench/recipe_trial.ts <experiment> [preset] [train images] [epochs] [val images]
// env TRIAL_SIZE (input size), TRIAL_LR (peak learning rate), TRIAL_OPT=adamw (optimizer), TRIAL_MODEL_OPTIONS
// (JSON model options, e.g. {"headInit":"zeros"}) vary one setting.
// img/cpu_s: training images per process CPU-second of the epoch (validation included, so slightly low): on a
// shared machine wall-clock img/s depends on the load, CPU time much less.
// The cosine is shortened to the trial (tMax = epochs) and the warm-up to at most a quarter of it, so the trial
// sees a whole schedule; everything else is the preset's. The run folder goes to a temporary directory.
import { experimentConfig, type Preset } from "../../lib/train/experiments.ts";
import { initEngine } from "../../lib/engine/init.ts";
import { train } from "../../lib/train/loop.ts";

const [name, preset = "cpu", n = "2000", e = "2", v = "1000"] = Deno.args;
if (!name) {
  console.error("usage: recipe_trial.ts <experiment> [preset] [train images] [epochs] [val images]");
  Deno.exit(2);
}
const engine = await initEngine();
const epochs = Number(e);
const base = experimentConfig(name, preset as Preset);
const outDir = await Deno.makeTempDir({ prefix: "fer-trial-" });
const size = Deno.env.get("TRIAL_SIZE"); // e.g. 64: another input size for the same recipe
// TRIAL_OPT=adamw: the same recipe with AdamW (lr 1e-3, decoupled decay 0.01), for SGD-vs-AdamW comparisons
const adamw = Deno.env.get("TRIAL_OPT") === "adamw"
  ? { optimizer: "adamw" as const, lr: 1e-3, weightDecay: 0.01 }
  : {};
const lr = Deno.env.get("TRIAL_LR"); // e.g. 3e-4: another peak learning rate for the same recipe
// e.g. {"headInit":"zeros"}: model options merged over the preset's
const modelOptions = JSON.parse(Deno.env.get("TRIAL_MODEL_OPTIONS") ?? "null");
const cfg = {
  ...base,
  ...(size ? { inputSize: Number(size) } : {}),
  ...adamw,
  ...(lr ? { lr: Number(lr) } : {}),
  ...(modelOptions ? { modelOptions: { ...base.modelOptions, ...modelOptions } } : {}),
  epochs,
  tMax: epochs,
  warmupEpochs: Math.min(base.warmupEpochs ?? 0, epochs / 4),
  patience: 100,
  maxTrainImages: Number(n),
  maxEvalImages: Number(v),
  outDir,
  run: "trial",
};
console.log(
  `engine ${engine.name} (${engine.threads} threads); ${name}/${preset}: ${cfg.model} ${cfg.inputSize}px`,
);
try {
  const res = await train(cfg, { progress: "lines", log: () => {} });
  for (const r of res.history) {
    console.log(
      `TRIAL ${name} ${preset} epoch ${r.epoch} train_acc ${r.train_acc.toFixed(4)} val_acc ${
        r.val_acc.toFixed(4)
      } ` +
        `img/s ${r.img_s.toFixed(1)} epoch_s ${r.seconds.toFixed(0)} cpu_s ${r.cpu_s!.toFixed(1)} ` +
        `img/cpu_s ${(cfg.maxTrainImages / r.cpu_s!).toFixed(2)}`,
    );
  }
} finally {
  await Deno.remove(outDir, { recursive: true });
}
