/**
 * Photo -> faces -> expressions: detect every face (lib/faces/detect.ts), align each to the model's crop
 * (lib/faces/align.ts), preprocess (lib/faces/preprocess.ts) and classify with a layers model. The same
 * function runs in the CLI (`deno task predict`) and in the browser demo (web/), so both give the same numbers.
 *
 * Platform-neutral (tfjs only).
 */
import * as tf from "@tensorflow/tfjs-core";
import type * as tfl from "@tensorflow/tfjs-layers";
import { alignFaces } from "./align.ts";
import type { DetectOptions, Face, FaceDetector } from "./detect.ts";
import { preprocess, type Preprocessing } from "./preprocess.ts";

/** One face with its class probabilities (in the model's class order). */
export interface FacePrediction extends Face {
  probs: number[];
}

/**
 * Test-time augmentation for faces: one transform per view, each turning the gray crops [n, dataSize, dataSize,
 * 1] (0..255) into model inputs, and how the views' logits become probabilities (`combine(logits, classes)`,
 * lib/eval/tta.ts `averageViews` in the CLI). Kept as functions so that this file stays tfjs-only.
 */
export interface FaceTta {
  views: ((crops: tf.Tensor4D) => tf.Tensor4D)[];
  combine: (logits: Float32Array[], classes: number) => Float32Array;
}

/** A model ready to classify aligned faces. */
export interface Classifier {
  model: tfl.LayersModel;
  classes: string[];
  preprocessing: Preprocessing;
  /** Test-time views instead of the single {@link preprocess}ed input. */
  tta?: FaceTta;
}

/** Softmax probabilities for gray crops [n, dataSize, dataSize, 1] (0..255); one row per crop. */
export async function classifyCrops(c: Classifier, crops: tf.Tensor4D): Promise<number[][]> {
  const n = crops.shape[0];
  if (n === 0) return [];
  if (c.tta) {
    const k = c.classes.length;
    const logits: Float32Array[] = [];
    for (const view of c.tta.views) {
      const out = tf.tidy(() => c.model.predict(view(crops)) as tf.Tensor2D);
      logits.push((await out.data()) as Float32Array); // asynchronous: GPU backends cannot read synchronously
      out.dispose();
    }
    const probs = c.tta.combine(logits, k);
    return Array.from({ length: n }, (_, i) => Array.from(probs.subarray(i * k, (i + 1) * k)));
  }
  const probs = tf.tidy(() => tf.softmax(c.model.predict(preprocess(crops, c.preprocessing)) as tf.Tensor2D));
  const rows = (await probs.array()) as number[][];
  probs.dispose();
  return rows;
}

/** Every face in an RGB image ([h, w, 3], 0..255) with its expression probabilities, best detection first. */
export async function predictFaces(
  detector: FaceDetector,
  c: Classifier,
  image: tf.Tensor3D,
  opts: DetectOptions = {},
): Promise<FacePrediction[]> {
  const faces = await detector.detect(image, opts);
  const crops = alignFaces(image, faces, c.preprocessing.dataSize, c.preprocessing.framing);
  try {
    const probs = await classifyCrops(c, crops);
    return faces.map((f, i) => ({ ...f, probs: probs[i] }));
  } finally {
    crops.dispose();
  }
}

/** The `k` most probable classes of one prediction, best first. */
export function topClasses(probs: number[], classes: string[], k = 3): { name: string; p: number }[] {
  return probs.map((p, i) => ({ name: classes[i], p })).sort((a, b) => b.p - a.p).slice(0, k);
}
