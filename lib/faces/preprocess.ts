/**
 * The preprocessing a trained run expects, as data (stored in an exported model's metadata) and as tfjs ops
 * (used by the face pipeline in Deno and by the browser demo), so that every place feeds the model the same way.
 *
 * It is the run's evaluation transform (lib/data/augment.ts `makeTransforms` without augmentation): a gray
 * `dataSize`² face crop with values 0..255 is resized bilinearly to `inputSize`² (half-pixel centres, no
 * antialias: OpenCV's INTER_LINEAR) — or, for a crop-trained run, resized to `cropFrom`² and centre-cropped to
 * `inputSize`² — gray is replicated to 3 channels when the model takes 3, then `(x - mean·255) / (std·255)`.
 * Test-time views (mirror, five and ten crops) are the evaluation's, from lib/data/views.ts.
 * tests/models/export_test.ts checks the two agree, view by view.
 *
 * Platform-neutral (tfjs only): the browser demo bundles this file as it is.
 */
import * as tf from "@tensorflow/tfjs-core";
import { type TtaMode, ttaViews } from "../data/views.ts";
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

/**
 * Gray crops [n, dataSize, dataSize, 1] (0..255) -> one model input [n, inputSize, inputSize, channels] per
 * test-time view of `mode` (lib/data/views.ts `ttaViews`, the views `deno task evaluate --tta` uses): the face is
 * resized once to `cropFrom`² (or `inputSize`²), then each view is cropped, mirrored where the view says, and
 * normalised. `none` is the single centre view ({@link preprocess}); `5crop`/`10crop` need a crop-trained run.
 */
export function preprocessViews(crops: tf.Tensor4D, p: Preprocessing, mode: TtaMode): tf.Tensor4D[] {
  const side = p.cropFrom ?? p.inputSize;
  const views = ttaViews(mode, side, p.inputSize);
  return tf.tidy(() => {
    let x: tf.Tensor4D = tf.cast(crops, "float32");
    if (x.shape[1] !== side || x.shape[2] !== side) {
      x = tf.image.resizeBilinear(x, [side, side], false, true);
    }
    const per = (a: number[]) => (a.length === 1 ? new Array(p.channels).fill(a[0]) : a);
    const mean = tf.tensor1d(per(p.mean).map((m) => m * 255));
    const scale = tf.tensor1d(per(p.std).map((s) => 1 / (s * 255)));
    return views.map((v) => {
      let y = side === p.inputSize
        ? x
        : tf.slice(x, [0, v.top, v.left, 0], [-1, p.inputSize, p.inputSize, -1]);
      if (v.flip) y = tf.reverse(y, 2);
      if (p.channels === 3 && y.shape[3] === 1) y = tf.tile(y, [1, 1, 1, 3]);
      return tf.mul(tf.sub(y, mean), scale) as tf.Tensor4D;
    });
  });
}

/** Gray crops [n, dataSize, dataSize, 1] (0..255) -> model input [n, inputSize, inputSize, channels]. */
export function preprocess(crops: tf.Tensor4D, p: Preprocessing): tf.Tensor4D {
  return preprocessViews(crops, p, "none")[0];
}
