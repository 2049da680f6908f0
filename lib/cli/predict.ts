/**
 * `deno task predict <run> <image...> [--top K] [--tta none|hflip|5crop|10crop] [--tta-average prob|logit]`: loads a run's best checkpoint (checkpoints/<run>/best/, a
 * TF.js layers model; the run may be a name under checkpoints/ or a path to a run folder), decodes each image with sharp the way training saw it (gray, resized to the run's data
 * size, then the run's eval transform: resize to the input size, channels, normalization) and prints the top
 * classes with their probabilities (with `--tta`, averaged over the test-time views, lib/eval/tta.ts). Exit status: 0 all predicted, 1 some image failed, 2 bad arguments/run.
 */
import * as tf from "@tensorflow/tfjs-core";
import { existsSync } from "node:fs";
import { parseArgs } from "node:util";
import type * as tfl from "@tensorflow/tfjs-layers";
import { decodeImage } from "../data/dataset.ts";
import { loadRunConfig, loadRunModel, resolveRunDir, runTransform } from "../runs/runs.ts";
import { setupBackend, type TrainConfig } from "../train/loop.ts";
import { averageViews, parseTta, ttaTransforms } from "../eval/tta.ts";

const USAGE =
  "usage: deno task predict <run> <image...> [--top K] [--tta none|hflip|5crop|10crop] [--tta-average prob|logit]";

function fail(msg: string): never {
  console.error(`error: ${msg}\n${USAGE}`);
  Deno.exit(2);
}

let parsed;
try {
  parsed = parseArgs({
    args: Deno.args,
    allowPositionals: true,
    options: { top: { type: "string" }, tta: { type: "string" }, "tta-average": { type: "string" } },
  });
} catch (e) {
  fail((e as Error).message);
}
const [run, ...images] = parsed.positionals;
if (!run || images.length === 0) fail("a run and at least one image are needed");
const top = Number(parsed.values.top ?? 3);
if (!Number.isInteger(top) || top < 1) fail(`--top must be a positive integer, got ${parsed.values.top}`);

let tta;
try {
  tta = parseTta(parsed.values.tta ?? "none", parsed.values["tta-average"] ?? "prob");
} catch (e) {
  fail((e as Error).message);
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
    if (!existsSync(path)) throw new Error("file not found");
    pixels = await decodeImage(path, cfg.dataSize, 1);
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
