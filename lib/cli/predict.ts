/**
 * `deno task predict <run> <image...> [--top K]`: loads a run's best checkpoint (checkpoints/<run>/best/, a
 * TF.js layers model; the run may be a name under checkpoints/ or a path to a run folder), decodes each image with sharp the way training saw it (gray, resized to the run's data
 * size, then the run's eval transform: resize to the input size, channels, normalization) and prints the top
 * classes with their probabilities. Exit status: 0 all predicted, 1 some image failed, 2 bad arguments/run.
 */
import * as tf from "@tensorflow/tfjs-core";
import { existsSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { makeTransforms } from "../augment.ts";
import { CLASSES, decodeImage } from "../data.ts";
import { loadCheckpoint } from "../models/checkpoint.ts";
import { DEFAULT_CONFIG, setupBackend, type TrainConfig } from "../train.ts";

const USAGE = "usage: deno task predict <run> <image...> [--top K]";

function fail(msg: string): never {
  console.error(`error: ${msg}\n${USAGE}`);
  Deno.exit(2);
}

let parsed;
try {
  parsed = parseArgs({ args: Deno.args, allowPositionals: true, options: { top: { type: "string" } } });
} catch (e) {
  fail((e as Error).message);
}
const [run, ...images] = parsed.positionals;
if (!run || images.length === 0) fail("a run and at least one image are needed");
const top = Number(parsed.values.top ?? 3);
if (!Number.isInteger(top) || top < 1) fail(`--top must be a positive integer, got ${parsed.values.top}`);

const runDir = existsSync(run) && statSync(run).isDirectory()
  ? resolve(run)
  : join(DEFAULT_CONFIG.outDir, run);
const cfgPath = join(runDir, "config.json");
const bestPath = join(runDir, "best", "model.json");
if (!existsSync(cfgPath)) {
  fail(`${cfgPath} not found (is "${run}" a run folder or a run under checkpoints/?)`);
}
if (!existsSync(bestPath)) fail(`${bestPath} not found: the run has no best checkpoint yet`);
let cfg: TrainConfig;
try {
  cfg = { ...DEFAULT_CONFIG, ...JSON.parse(Deno.readTextFileSync(cfgPath)) };
} catch (e) {
  fail(`${cfgPath}: ${(e as Error).message}`);
}

await setupBackend();
let model;
let classes: string[] = [...CLASSES];
try {
  const ck = await loadCheckpoint(bestPath);
  model = ck.model;
  if (Array.isArray(ck.info.metadata.classes)) classes = ck.info.metadata.classes as string[];
} catch (e) {
  fail((e as Error).message);
}
const transform = makeTransforms({
  size: [cfg.inputSize, cfg.inputSize],
  channels: cfg.channels,
  mean: cfg.mean,
  std: cfg.std,
  train: false,
});

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
