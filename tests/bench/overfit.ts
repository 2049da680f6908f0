// Can a model fit a small subset? Trains an experiment's preset on N images without augmentation, with early
// stopping off, and prints the training loss per epoch (dev tool for recipe debugging):
//   deno run -A tests/bench/overfit.ts efficientnet_b3 scratch 128 20 [lr]
import { initEngine } from "../../lib/engine/init.ts";
import { experimentConfig, type Preset } from "../../lib/train/experiments.ts";
import { train } from "../../lib/train/loop.ts";
const [exp = "efficientnet_b3", preset = "scratch", n = "128", epochs = "20", lr] = Deno.args;
await initEngine();
const cfg = experimentConfig(exp, preset as Preset);
await train({
  ...cfg,
  maxTrainImages: Number(n),
  maxEvalImages: 128,
  epochs: Number(epochs),
  tMax: Number(epochs),
  warmupEpochs: 0,
  patience: 1000,
  augment: false,
  erasing: undefined,
  ...(lr ? { lr: Number(lr) } : {}),
  run: `overfit-${exp}`,
  outDir: await Deno.makeTempDir(),
});
