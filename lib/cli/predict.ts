/**
 * `deno task predict <run> <image...> [--top K] [--annotate OUT] [--min-score S] [--no-detect]`: loads a run's
 * best checkpoint (checkpoints/<run>/best/, a TF.js layers model; the run may be a name under checkpoints/ or a
 * path to a run folder), finds every face in each photo (BlazeFace, lib/faces/), aligns it to FER2013's framing,
 * and prints its box and top classes; `--annotate` writes the photo with boxes and labels (OUT is a file for one
 * image, else a folder). With `--no-detect`, the whole-image mode for pre-cropped faces: decodes each image with
 * sharp the way training saw it (gray, resized to the run's data size, then the run's eval transform: resize to
 * the input size, channels, normalization) and prints the top classes with their probabilities. `--tta MODE`
 * averages the probabilities over test-time views (lib/eval/tta.ts) of each aligned face, or of each image with
 * `--no-detect`; the default, `auto`, is the mode chosen on validation (`deno task evaluate <run> --split val
 * --tta <mode>`; none when no such evaluation was made), which is also what the exported demo applies.
 * The run may be an ensemble folder (`deno task evaluate --ensemble`, checkpoints/ensemble-<name>/): each member
 * predicts with its own TTA as the ensemble recorded it (or `--tta MODE` for all) and their probabilities are
 * averaged, as the ensemble's evaluation did; the members' run folders must be on the machine with their models.
 * Exit status: 0 all predicted, 1 some image failed, 2 bad arguments/run.
 */
import * as tf from "@tensorflow/tfjs-core";
import { existsSync } from "node:fs";
import { decodeImage } from "../data/dataset.ts";
import { resolveRunDir } from "../runs/runs.ts";
import { initEngine } from "../engine/init.ts";
import {
  ArgsError,
  type CommandSpec,
  faceTtaOptions,
  parseCli,
  runArg,
  usageError,
  userPath,
} from "./args.ts";
import { faceClassifiers, predictFaceImages } from "../faces/cli.ts";
import { describeResolvedTta } from "../eval/tta.ts";
import { type Classifier, classifyCrops, faceCrop } from "../faces/pipeline.ts";
import { loadPredictors, type Predictor } from "../eval/predictors.ts";

const SPEC: CommandSpec = {
  name: "predict",
  usage: [
    "<run> <image...> [--top K] [--annotate OUT] [--min-score S]",
    "<run> <image...> --no-detect [--top K] [--tta MODE] [--tta-average prob|logit]",
  ],
  summary:
    "Finds every face in each photo (BlazeFace), aligns it to FER2013's framing and prints its box and " +
    "top classes\nwith a run's best checkpoint (a run name under checkpoints/ or a run folder; an ensemble " +
    "folder averages its\nmembers' probabilities); --no-detect classifies each whole image as a pre-cropped " +
    "face. Relative paths\nare taken from the directory you run it in. Exit status: 0 all predicted, 1 some " +
    "image failed, 2 bad\narguments or run.",
  options: {
    top: { type: "string", value: "K", help: "how many classes to show per image", default: "3" },
    annotate: {
      type: "string",
      value: "OUT",
      help: "write the photo with boxes and labels (a file for one image, else a folder)",
    },
    "min-score": { type: "string", value: "S", help: "face detection threshold, 0..1", default: "0.5" },
    "no-detect": { type: "boolean", help: "whole-image mode for pre-cropped 48×48 faces" },
    ...faceTtaOptions("of each face (the demo applies the same)"),
  },
  positionals: { min: 0, max: Infinity },
};

const { run, images, top, detect, minScore, annotate, tta } = parseCli(SPEC, (a) => {
  const [run, ...images] = a.positionals;
  if (!run || images.length === 0) usageError(SPEC, "a run and at least one image are needed");
  const minScore = Number(a.string("min-score", "0.5"));
  if (!(minScore >= 0 && minScore <= 1)) {
    throw new ArgsError(`--min-score must be in 0..1, got "${a.string("min-score")}"`);
  }
  return {
    tta: { mode: a.string("tta", "auto"), average: a.string("tta-average", "prob") },
    run: runArg(run),
    images,
    top: a.int("top", { min: 1, fallback: 3 }),
    detect: !a.flag("no-detect"),
    minScore,
    annotate: a.path("annotate"),
  };
});

function fail(msg: string): never {
  console.error(`error: ${msg}`);
  Deno.exit(2);
}

// a run's best model, or each member of an ensemble folder with its own TTA (probabilities averaged)
let predictors: Predictor[];
let classifiers: Classifier[];
let dataSize: number;
try {
  const runDir = resolveRunDir(run);
  await initEngine();
  predictors = await loadPredictors(runDir, tta);
  classifiers = faceClassifiers(predictors);
  ({ dataSize } = faceCrop(classifiers)); // an ensemble's members share it
} catch (e) {
  fail((e as Error).message);
}
const classes = predictors[0].classes;
if (predictors.length > 1) {
  console.error(`ensemble of ${predictors.length} members, probabilities averaged:`);
  for (const p of predictors) console.error(`  ${p.name}: ${describeResolvedTta(p.tta)}`);
} else if (predictors[0].tta.mode !== "none" || predictors[0].tta.source === "validation") {
  console.error(describeResolvedTta(predictors[0].tta));
}
if (detect) {
  const files = images.map((p) => ({ shown: p, file: userPath(p) }));
  // TTA on each aligned face: the same views as on the test split (the crops are FER2013-sized gray faces;
  // each mode was checked against its run above)
  Deno.exit(await predictFaceImages(files, { classifiers, classes, top, minScore, annotate }));
}

// whole-image mode: each image decoded the way training saw it (gray, resized to the data size), then the same
// classification as an aligned face (each model's preprocessing and TTA, members averaged)
let failed = 0;
for (const path of images) {
  const file = userPath(path); // `deno task` runs in the project root; INIT_CWD is where it was called
  let probs: number[];
  try {
    if (!existsSync(file)) throw new Error(`file not found (${file})`);
    const pixels = await decodeImage(file, dataSize, 1);
    const crop = tf.tensor4d(Float32Array.from(pixels), [1, dataSize, dataSize, 1]);
    try {
      [probs] = await classifyCrops(classifiers.length === 1 ? classifiers[0] : classifiers, crop);
    } finally {
      crop.dispose();
    }
  } catch (e) {
    console.error(`${path}: cannot read image: ${(e as Error).message}`);
    failed++;
    continue;
  }
  const ranked = probs.map((p, i) => ({ p, c: classes[i] })).sort((a, b) => b.p - a.p).slice(0, top);
  console.log(`${path}: ${ranked.map((r) => `${r.c} ${(100 * r.p).toFixed(1)}%`).join(", ")}`);
}
for (const p of predictors) p.model.dispose();
Deno.exit(failed ? 1 : 0);
