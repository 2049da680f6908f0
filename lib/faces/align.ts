/**
 * Face alignment: from a detected face's eye landmarks to a FER2013-style crop — rotated so the eyes are level,
 * scaled and placed where FER2013's faces have their eyes, gray, `size`×`size` (48 for the FER models).
 *
 * FER2013's framing ({@link FER_FRAMING}) was measured with this toolkit's detector on the dataset itself:
 * tests/faces/align_test.ts pastes FER2013 test faces onto a canvas, detects them, and checks that the
 * median eye-centre position and eye distance, in units of the 48-pixel frame, equal these constants.
 *
 * Platform-neutral (tfjs only): the browser demo bundles this file as it is.
 */
import * as tf from "@tensorflow/tfjs-core";
import type { Face, Point } from "./detect.ts";

/** Where a FER2013 face has its eyes, as fractions of the square frame's side. */
export interface Framing {
  /** Horizontal position of the midpoint between the eyes (0 left, 1 right). */
  eyeX: number;
  /** Vertical position of the midpoint between the eyes (0 top, 1 bottom). */
  eyeY: number;
  /** Distance between the eye centres. */
  eyeDistance: number;
}

/** FER2013's median framing (see the module comment for how it is checked). */
export const FER_FRAMING: Framing = { eyeX: 0.5, eyeY: 0.39, eyeDistance: 0.37 };

/** ITU-R BT.601 luma weights (OpenCV's and this toolkit's RGB -> gray, lib/data/augment.ts). */
export const LUMA = [0.299, 0.587, 0.114] as const;

/**
 * The affine map from crop pixels to image pixels for `face`: `[a0, a1, a2, b0, b1, b2]` with
 * `x = a0·u + a1·v + a2`, `y = b0·u + b1·v + b2` in pixel-index coordinates (centres at integers) of a crop of
 * side `size`. Rotation is the eye line's angle, so the crop's eyes are level.
 */
export function cropTransform(face: Face, size: number, framing: Framing = FER_FRAMING): number[] {
  const { rightEye: r, leftEye: l } = face.landmarks;
  const dx = l[0] - r[0], dy = l[1] - r[1];
  const dist = Math.hypot(dx, dy);
  if (!(dist > 0)) throw new RangeError("the face's eye landmarks coincide; cannot align");
  const s = dist / (framing.eyeDistance * size); // image pixels per crop pixel
  const cos = (dx / dist) * s, sin = (dy / dist) * s;
  const ex = (r[0] + l[0]) / 2, ey = (r[1] + l[1]) / 2;
  // crop edge coordinate (u + 0.5) relative to the eye midpoint, rotated and scaled, then back to an index.
  const ou = 0.5 - framing.eyeX * size, ov = 0.5 - framing.eyeY * size;
  return [cos, -sin, ex + cos * ou - sin * ov - 0.5, sin, cos, ey + sin * ou + cos * ov - 0.5];
}

/** Maps a crop point (pixel-index coordinates) to image coordinates with {@link cropTransform}'s matrix. */
export function cropToImage(m: number[], p: Point): Point {
  return [m[0] * p[0] + m[1] * p[1] + m[2] + 0.5, m[3] * p[0] + m[4] * p[1] + m[5] + 0.5];
}

/**
 * Aligned gray crops of `faces` from an RGB image ([h, w, 3], 0..255): a float32 [n, size, size, 1] tensor with
 * values 0..255, ready for a run's eval transform. Each crop is sampled at k× its size (k = image pixels per
 * crop pixel, rounded, 1..8) and average-pooled k×k, so large faces are area-averaged rather than aliased.
 * Pixels outside the image repeat the nearest edge. Caller disposes the result; `image` is not disposed.
 */
export function alignFaces(
  image: tf.Tensor3D,
  faces: Face[],
  size = 48,
  framing: Framing = FER_FRAMING,
): tf.Tensor4D {
  if (image.shape[2] !== 3) {
    throw new RangeError(`alignFaces needs an RGB image [h,w,3], got [${image.shape}]`);
  }
  if (faces.length === 0) return tf.zeros([0, size, size, 1]);
  return tf.tidy(() => {
    const gray = tf.sum(tf.mul(tf.cast(image, "float32"), tf.tensor1d([...LUMA])), 2, true) as tf.Tensor3D;
    const batch = tf.expandDims(gray, 0) as tf.Tensor4D;
    const crops = faces.map((face) => {
      const m = cropTransform(face, size, framing);
      const k = Math.max(1, Math.min(8, Math.round(Math.hypot(m[0], m[3]))));
      // Same map for the k-times finer grid: crop index u' = k·u + (k-1)/2 ... in fine-pixel units.
      const f = [m[0] / k, m[1] / k, m[2] + (m[0] + m[1]) * (0.5 / k - 0.5)];
      const g = [m[3] / k, m[4] / k, m[5] + (m[3] + m[4]) * (0.5 / k - 0.5)];
      const t = tf.tensor2d([[f[0], f[1], f[2], g[0], g[1], g[2], 0, 0]]);
      const fine = tf.image.transform(batch, t, "bilinear", "nearest", 0, [size * k, size * k]);
      return k > 1 ? tf.avgPool(fine, k, k, "valid") : fine;
    });
    return tf.concat(crops, 0) as tf.Tensor4D;
  });
}
