/**
 * `deno task predict <run> <image...> [--top K] [--annotate OUT] [--min-score S] [--no-detect]`: loads a run's
 * best checkpoint (checkpoints/<run>/best/, a TF.js layers model; the run may be a name under checkpoints/ or a
 * path to a run folder), finds every face in each photo (BlazeFace, lib/faces/), aligns it to FER2013's framing,
 * and prints its box and top classes; `--annotate` writes the photo with boxes and labels (OUT is a file for one
 * image, else a folder). With `--no-detect`, the whole-image mode for pre-cropped faces: decodes each image with
 * sharp the way training saw it (gray, resized to the run's data size, then the run's eval transform: resize to
 * the input size, channels, normalization) and prints the top classes with their probabilities.
 * Exit status: 0 all predicted, 1 some image failed, 2 bad arguments/run.
 */
import * as tf from "@tensorflow/tfjs-core";
import { existsSync } from "node:fs";
import { parseArgs } from "node:util";
import type * as tfl from "@tensorflow/tfjs-layers";
import { decodeImage } from "../data/dataset.ts";
import { loadRunConfig, loadRunModel, resolveRunDir, runTransform } from "../runs/runs.ts";
import { setupBackend, type TrainConfig } from "../train/loop.ts";
import { predictFaceImages } from "../faces/cli.ts";

const USAGE =
  "usage: deno task predict <run> <image...> [--top K] [--annotate OUT] [--min-score S] [--no-detect]";

function fail(msg: string): never {
  console.error(`error: ${msg}\n${USAGE}`);
  Deno.exit(2);
}

let parsed;
try {
  parsed = parseArgs({
    args: Deno.args,
    allowPositionals: true,
    options: {
      top: { type: "string" },
      annotate: { type: "string" },
      "min-score": { type: "string" },
      "no-detect": { type: "boolean" },
    },
  });
} catch (e) {
  fail((e as Error).message);
}
const [run, ...images] = parsed.positionals;
if (!run || images.length === 0) fail("a run and at least one image are needed");
const top = Number(parsed.values.top ?? 3);
if (!Number.isInteger(top) || top < 1) fail(`--top must be a positive integer, got ${parsed.values.top}`);

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
const transform = runTransform(cfg);
if (!parsed.values["no-detect"]) {
  const minScore = Number(parsed.values["min-score"] ?? 0.5);
  if (!(minScore >= 0 && minScore <= 1)) {
    fail(`--min-score must be in 0..1, got ${parsed.values["min-score"]}`);
  }
  Deno.exit(
    await predictFaceImages(images, { model, classes, cfg, top, minScore, annotate: parsed.values.annotate }),
  );
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
    return tf.softmax(model.predict(transform(x)) as tf.Tensor).dataSync() as Float32Array;
  });
  const ranked = Array.from(probs, (p, i) => ({ p, c: classes[i] })).sort((a, b) => b.p - a.p).slice(0, top);
  console.log(`${path}: ${ranked.map((r) => `${r.c} ${(100 * r.p).toFixed(1)}%`).join(", ")}`);
}
model.dispose();
Deno.exit(failed ? 1 : 0);
