/**
 * The preprocessing a trained run expects, as data (stored in an exported model's metadata) and as tfjs ops
 * (used by the face pipeline in Deno and by the browser demo), so that every place feeds the model the same way.
 *
 * It is the run's evaluation transform (lib/data/augment.ts `makeTransforms` without augmentation): a gray
 * `dataSize`² face crop with values 0..255 is resized bilinearly to `inputSize`² (half-pixel centres, no
 * antialias: OpenCV's INTER_LINEAR) — or, for a crop-trained run, resized to `cropFrom`² and centre-cropped to
 * `inputSize`² — gray is replicated to 3 channels when the model takes 3, then `(x - mean·255) / (std·255)`.
 * tests/models/export_test.ts checks the two agree.
 *
 * Platform-neutral (tfjs only): the browser demo bundles this file as it is.
 */
import * as tf from "@tensorflow/tfjs-core";
import { FER_FRAMING, type Framing, LUMA } from "./align.ts";

/** How to turn a face in a photo into the model's input; stored as `userDefinedMetadata.preprocessing`. */
export interface Preprocessing {
  /** Side of the aligned gray face crop, in pixels (the size training decoded FER2013 to). */
  dataSize: number;
  /** Side of the model input after resizing (and cropping). */
  inputSize: number;
  /**
   * Crop-trained runs (TrainConfig `cropFrom`): the face is resized to `cropFrom`² and the centre `inputSize`²
   * taken, as in evaluation. Absent: resized straight to `inputSize`² (and in exports made before it existed).
   */
  cropFrom?: number;
  /** Model input channels (1: gray; 3: gray replicated). */
  channels: 1 | 3;
  /** Normalisation on the 0..1 scale: `(x/255 - mean) / std`, one value or one per channel. */
  mean: number[];
  std: number[];
  /** Face crop: where the eyes go in the square crop (lib/faces/align.ts). */
  framing: Framing;
  /** RGB -> gray weights applied before cropping. */
  luma: readonly number[];
}

/** The preprocessing of a run with these settings (a TrainConfig has all four fields). */
export function preprocessingOf(cfg: {
  dataSize: number;
  inputSize: number;
  cropFrom?: number | null;
  channels: 1 | 3;
  mean: number[];
  std: number[];
}): Preprocessing {
  return {
    dataSize: cfg.dataSize,
    inputSize: cfg.inputSize,
    ...(cfg.cropFrom ? { cropFrom: cfg.cropFrom } : {}),
    channels: cfg.channels,
    mean: [...cfg.mean],
    std: [...cfg.std],
    framing: { ...FER_FRAMING },
    luma: [...LUMA],
  };
}

/** The centre crop's offset, as lib/data/augment.ts `centerOffset` (half rounded to even), repeated here so that
 * this file stays tfjs-only for the browser bundle. */
function centerOffset(n: number, size: number): number {
  const h = (n - size) / 2;
  const f = Math.floor(h);
  return h - f === 0.5 ? (f % 2 === 0 ? f : f + 1) : Math.round(h);
}

/** Gray crops [n, dataSize, dataSize, 1] (0..255) -> model input [n, inputSize, inputSize, channels]. */
export function preprocess(crops: tf.Tensor4D, p: Preprocessing): tf.Tensor4D {
  return tf.tidy(() => {
    let x: tf.Tensor4D = tf.cast(crops, "float32");
    const side = p.cropFrom ?? p.inputSize;
    if (x.shape[1] !== side || x.shape[2] !== side) {
      x = tf.image.resizeBilinear(x, [side, side], false, true);
    }
    if (p.cropFrom) {
      const o = centerOffset(p.cropFrom, p.inputSize);
      x = tf.slice(x, [0, o, o, 0], [-1, p.inputSize, p.inputSize, -1]);
    }
    if (p.channels === 3 && x.shape[3] === 1) x = tf.tile(x, [1, 1, 1, 3]);
    const per = (a: number[]) => (a.length === 1 ? new Array(p.channels).fill(a[0]) : a);
    const mean = tf.tensor1d(per(p.mean).map((m) => m * 255));
    const scale = tf.tensor1d(per(p.std).map((s) => 1 / (s * 255)));
    return tf.mul(tf.sub(x, mean), scale);
  });
}
