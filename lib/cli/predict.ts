/**
 * `deno task predict <run> <image...> [--top K] [--tta none|hflip|5crop|10crop] [--tta-average prob|logit]`: loads a run's best checkpoint (checkpoints/<run>/best/, a
 * TF.js layers model; the run may be a name under checkpoints/ or a path to a run folder), decodes each image with sharp the way training saw it (gray, resized to the run's data
 * size, then the run's eval transform: resize to the input size, channels, normalization) and prints the top
 * classes with their probabilities (with `--tta`, averaged over the test-time views, lib/eval/tta.ts). Exit status: 0 all predicted, 1 some image failed, 2 bad arguments/run.
 */
import * as tf from "@tensorflow/tfjs-core";
import { existsSync } from "node:fs";
import type * as tfl from "@tensorflow/tfjs-layers";
import { decodeImage } from "../data/dataset.ts";
import { loadRunConfig, loadRunModel, resolveRunDir, runTransform } from "../runs/runs.ts";
import { setupBackend, type TrainConfig } from "../train/loop.ts";
import { averageViews, parseTta, ttaTransforms } from "../eval/tta.ts";
import { TTA_MODES } from "../data/augment.ts";
import { type CommandSpec, parseCli, runArg, usageError, userPath } from "./args.ts";

const SPEC: CommandSpec = {
  name: "predict",
  usage: ["<run> <image...> [--top K] [--tta MODE] [--tta-average prob|logit]"],
  summary:
    "Predicts face images with a run's best checkpoint (a run name under checkpoints/ or a run folder) " +
    "and prints the top\nclasses with their probabilities. Relative paths are taken from the directory you " +
    "run it in. Exit status: 0 all\npredicted, 1 some image failed, 2 bad arguments or run.",
  options: {
    top: { type: "string", value: "K", help: "how many classes to show per image", default: "3" },
    tta: {
      type: "string",
      value: "MODE",
      help: `test-time augmentation: ${TTA_MODES.join(", ")} (lib/eval/tta.ts)`,
      default: "none",
    },
    "tta-average": {
      type: "string",
      value: "HOW",
      help: "average the views' prob(abilities) or logit(s)",
      default: "prob",
    },
  },
  positionals: { min: 0, max: Infinity },
};

const { run, images, top, tta } = parseCli(SPEC, (a) => {
  const [run, ...images] = a.positionals;
  if (!run || images.length === 0) usageError(SPEC, "a run and at least one image are needed");
  let tta;
  try {
    tta = parseTta(a.string("tta", "none"), a.string("tta-average", "prob"));
  } catch (e) {
    usageError(SPEC, (e as Error).message);
  }
  return { run: runArg(run), images, top: a.int("top", { min: 1, fallback: 3 }), tta };
});

function fail(msg: string): never {
  console.error(`error: ${msg}`);
  Deno.exit(2);
}

let runDir: string;
let cfg: TrainConfig;
let model: tfl.LayersModel;
let classes: string[];
try {
  runDir = resolveRunDir(run);
  cfg = loadRunConfig(runDir);
  await setupBackend();
  ({ model, classes } = await loadRunModel(runDir));
} catch (e) {
  fail((e as Error).message);
}
let transforms;
try {
  transforms = tta.mode === "none" ? [runTransform(cfg)] : ttaTransforms(cfg, tta.mode);
} catch (e) {
  fail((e as Error).message);
}

let failed = 0;
for (const path of images) {
  let pixels: Uint8Array;
  try {
    const file = userPath(path); // `deno task` runs in the project root; INIT_CWD is where it was called
    if (!existsSync(file)) throw new Error(`file not found (${file})`);
    pixels = await decodeImage(file, cfg.dataSize, 1);
  } catch (e) {
    console.error(`${path}: cannot read image: ${(e as Error).message}`);
    failed++;
    continue;
  }
  const probs = tf.tidy(() => {
    const x = tf.tensor4d(Float32Array.from(pixels), [1, cfg.dataSize, cfg.dataSize, 1]);
    const views = transforms.map((t) => (model.predict(t(x)) as tf.Tensor).dataSync() as Float32Array);
    return averageViews(views, classes.length, tta.average);
  });
  const ranked = Array.from(probs, (p, i) => ({ p, c: classes[i] })).sort((a, b) => b.p - a.p).slice(0, top);
  console.log(`${path}: ${ranked.map((r) => `${r.c} ${(100 * r.p).toFixed(1)}%`).join(", ")}`);
}
model.dispose();
Deno.exit(failed ? 1 : 0);
