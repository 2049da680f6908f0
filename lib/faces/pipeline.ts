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

/**
 * Softmax probabilities for gray crops [n, dataSize, dataSize, 1] (0..255); one row per crop. Several
 * classifiers (an ensemble's members, each with its own preprocessing and TTA) give the mean of their
 * probabilities, as `deno task evaluate --ensemble` averages them.
 */
export async function classifyCrops(c: Classifier | Classifier[], crops: tf.Tensor4D): Promise<number[][]> {
  if (Array.isArray(c)) {
    if (c.length === 0) throw new RangeError("no classifier given");
    const each: number[][][] = [];
    for (const m of c) each.push(await classifyCrops(m, crops));
    return each[0].map((row, i) =>
      row.map((_, k) => each.reduce((s, probs) => s + probs[i][k], 0) / c.length)
    );
  }
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

/**
 * Every face in an RGB image ([h, w, 3], 0..255) with its expression probabilities, best detection first. With
 * several classifiers (an ensemble), each face is aligned once: they must share the crop size and framing.
 */
export async function predictFaces(
  detector: FaceDetector,
  c: Classifier | Classifier[],
  image: tf.Tensor3D,
  opts: DetectOptions = {},
): Promise<FacePrediction[]> {
  const { dataSize, framing } = faceCrop(Array.isArray(c) ? c : [c]);
  const faces = await detector.detect(image, opts);
  const crops = alignFaces(image, faces, dataSize, framing);
  try {
    const probs = await classifyCrops(c, crops);
    return faces.map((f, i) => ({ ...f, probs: probs[i] }));
  } finally {
    crops.dispose();
  }
}

/** The face crop every classifier expects (size and framing); throws when they differ. */
export function faceCrop(cs: Classifier[]): Pick<Preprocessing, "dataSize" | "framing"> {
  if (cs.length === 0) throw new RangeError("no classifier given");
  const { dataSize, framing } = cs[0].preprocessing;
  for (const m of cs.slice(1)) {
    if (
      m.preprocessing.dataSize !== dataSize ||
      JSON.stringify(m.preprocessing.framing) !== JSON.stringify(framing)
    ) {
      throw new RangeError(
        `the classifiers expect different face crops (${dataSize} px ${JSON.stringify(framing)} and ` +
          `${m.preprocessing.dataSize} px ${
            JSON.stringify(m.preprocessing.framing)
          }); an ensemble's members must share them`,
      );
    }
  }
  return { dataSize, framing };
}

/** The `k` most probable classes of one prediction, best first. */
export function topClasses(probs: number[], classes: string[], k = 3): { name: string; p: number }[] {
  return probs.map((p, i) => ({ name: classes[i], p })).sort((a, b) => b.p - a.p).slice(0, k);
}
