/**
 * Photo -> faces -> expressions: detect every face (lib/faces/detect.ts), align each to the model's crop
 * (lib/faces/align.ts), preprocess (lib/faces/preprocess.ts) and classify with a layers model. The same
 * function runs in the CLI (`deno task predict`) and in the browser demo (web/), so both give the same numbers.
 *
 * Platform-neutral (tfjs only; the view geometry and averaging modules it imports are plain TypeScript).
 */
import * as tf from "@tensorflow/tfjs-core";
import type * as tfl from "@tensorflow/tfjs-layers";
import { alignFaces } from "./align.ts";
import type { DetectOptions, Face, FaceDetector } from "./detect.ts";
import { type Preprocessing, preprocessViews } from "./preprocess.ts";
import { averageViews, NO_TTA, type TtaSpec } from "../eval/combine.ts";

/** One face with its class probabilities (in the model's class order). */
export interface FacePrediction extends Face {
  probs: number[];
}

/** A model ready to classify aligned faces. */
export interface Classifier {
  model: tfl.LayersModel;
  classes: string[];
  preprocessing: Preprocessing;
  /**
   * Test-time augmentation of each face: the evaluation's views (lib/data/views.ts) averaged as `deno task
   * evaluate --tta` does (lib/eval/combine.ts). Absent or `none`: the single centre view.
   */
  tta?: TtaSpec;
}

/** Softmax probabilities for gray crops [n, dataSize, dataSize, 1] (0..255); one row per crop. */
export async function classifyCrops(c: Classifier, crops: tf.Tensor4D): Promise<number[][]> {
  const n = crops.shape[0];
  if (n === 0) return [];
  const k = c.classes.length;
  const { mode, average } = c.tta ?? NO_TTA;
  const inputs = preprocessViews(crops, c.preprocessing, mode);
  const logits: Float32Array[] = [];
  try {
    for (const x of inputs) {
      const out = c.model.predict(x) as tf.Tensor2D;
      logits.push((await out.data()) as Float32Array); // asynchronous: GPU backends cannot read synchronously
      out.dispose();
    }
  } finally {
    tf.dispose(inputs);
  }
  const probs = averageViews(logits, k, average);
  return Array.from({ length: n }, (_, i) => Array.from(probs.subarray(i * k, (i + 1) * k)));
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
