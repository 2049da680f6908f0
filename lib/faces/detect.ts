/**
 * Face detection with BlazeFace (MediaPipe's "back"/full-range face detector, 256×256 input, 896 anchors, a box
 * and 6 landmarks per face), using the model files that `@vladmandic/human` ships in its npm package
 * (`models/blazeface.json` + `.bin`), run as a TF.js GraphModel on this toolkit's own tfjs instance.
 *
 * Why this package and this way (evaluated 2026-11, all on npm, all tfjs 4.22.0 — the version pinned here):
 * - `@vladmandic/human` 3.3.6 (MIT, maintained, ~28 MB) ships its detector weights inside the package, so it
 *   installs offline from npm. Its entry points do not fit Deno: `exports` resolves to `human.node.js`, which
 *   needs `@tensorflow/tfjs-node` (a native binary downloaded at install time, not possible here);
 *   `human.esm.js` bundles a second copy of tfjs (so it could not use the native engine, and a browser page
 *   would carry two tfjs copies beside our layers model); the no-bundle build needs four more tfjs backends
 *   and its environment detection takes Deno for a browser. Its model files are plain TF.js graph models,
 *   so we load them with `@tensorflow/tfjs-converter` and keep one tfjs everywhere (CLI, tests, browser page).
 * - `@vladmandic/face-api` 1.7.15 (MIT, archived upstream but still published) ships SSD-MobileNet and Tiny
 *   Face Detector weights as weight manifests that need face-api's own network code (bundled with its own tfjs),
 *   and its 68-point landmark net is a second model to run; BlazeFace gives the eye landmarks we align with in
 *   the same pass.
 * So the network and weights are BlazeFace's; this module only does what any BlazeFace user writes around
 * it (as human's `src/face/blazeface.ts` does): pad to a square, scale to [-1, 1], add the anchor centres to
 * the regressed offsets, non-maximum suppression (tfjs' own), and map back to image pixels.
 *
 * Platform-neutral (tfjs only, no Deno APIs): the browser demo bundles this file as it is.
 */
import * as tf from "@tensorflow/tfjs-core";
import type { GraphModel } from "@tensorflow/tfjs-converter";

/** A point in image pixels (x right, y down; pixel edges at integers). */
export type Point = [number, number];

/** An axis-aligned box in image pixels. */
export interface Box {
  x: number;
  y: number;
  width: number;
  height: number;
}

/** BlazeFace's six landmarks, named from the subject's point of view (their right eye is on the image's left). */
export interface Landmarks {
  rightEye: Point;
  leftEye: Point;
  nose: Point;
  mouth: Point;
  rightEar: Point;
  leftEar: Point;
}

/** One detected face. */
export interface Face {
  /** BlazeFace's tight face box (brows to chin), clipped to the image. */
  box: Box;
  /** Detection confidence, 0..1. */
  score: number;
  landmarks: Landmarks;
}

/** Detection settings. */
export interface DetectOptions {
  /** Faces below this confidence are dropped (default 0.5). */
  minScore?: number;
  /** IoU above which overlapping detections are merged (default 0.3). */
  iouThreshold?: number;
  /** At most this many faces (default 20). */
  maxFaces?: number;
  /** Faces whose box is smaller than this many pixels on either side are dropped (default 12). */
  minSize?: number;
}

const LANDMARKS = ["rightEye", "leftEye", "nose", "mouth", "rightEar", "leftEar"] as const;

/**
 * Anchor centres of the full-range BlazeFace, in input pixels: a 16×16 grid (stride 16) with 2 anchors per
 * cell, then an 8×8 grid (stride 32) with 6 per cell — 512 + 384 = 896, the order of the model's outputs.
 */
export function blazeFaceAnchors(inputSize = 256): Float32Array {
  const layers = [{ stride: inputSize / 16, count: 2 }, { stride: inputSize / 8, count: 6 }];
  const out: number[] = [];
  for (const { stride, count } of layers) {
    const cells = Math.ceil(inputSize / stride);
    for (let y = 0; y < cells; y++) {
      for (let x = 0; x < cells; x++) {
        for (let k = 0; k < count; k++) out.push(stride * (x + 0.5), stride * (y + 0.5));
      }
    }
  }
  return Float32Array.from(out);
}

/** BlazeFace on a GraphModel (see the module comment). Dispose it when done. */
export class FaceDetector {
  readonly inputSize: number;
  readonly #anchors: Float32Array;

  constructor(readonly model: GraphModel) {
    const shape = model.inputs[0]?.shape;
    this.inputSize = shape && shape[1] && shape[1] > 0 ? shape[1] : 256;
    this.#anchors = blazeFaceAnchors(this.inputSize);
  }

  /**
   * Faces in an RGB image ([h, w, 3], values 0..255, any dtype), best first. The image is not disposed.
   */
  async detect(image: tf.Tensor3D, opts: DetectOptions = {}): Promise<Face[]> {
    const { minScore = 0.5, iouThreshold = 0.3, maxFaces = 20, minSize = 12 } = opts;
    const [h, w, c] = image.shape;
    if (c !== 3) {
      throw new RangeError(`face detection needs an RGB image [h,w,3], got shape [${image.shape}]`);
    }
    const side = Math.max(h, w);
    const n = this.inputSize;
    const scale = side / n; // image pixels per detector pixel (the image is padded right/bottom to a square)
    const raw = tf.tidy(() => {
      const padded = tf.pad(tf.cast(image, "float32"), [[0, side - h], [0, side - w], [0, 0]]);
      const x = tf.sub(tf.div(tf.image.resizeBilinear(padded as tf.Tensor3D, [n, n]), 127.5), 1);
      const outs = this.model.execute(tf.expandDims(x, 0)) as tf.Tensor | tf.Tensor[];
      // Four outputs (scores and regressors of the 512- and 384-anchor layers), told apart by size.
      const list = Array.isArray(outs) ? [...outs].sort((a, b) => a.size - b.size) : [outs];
      const rows = list.length === 4
        ? tf.concat([tf.concat([list[1], list[3]], 2), tf.concat([list[0], list[2]], 2)], 1)
        : list[0];
      return tf.reshape(rows, [-1, 17]) as tf.Tensor2D;
    });
    if (raw.shape[0] !== this.#anchors.length / 2) {
      raw.dispose();
      throw new Error(`BlazeFace gave ${raw.shape[0]} anchors, expected ${this.#anchors.length / 2}`);
    }
    const data = await raw.data();
    raw.dispose();
    const count = this.#anchors.length / 2;
    const boxes = new Float32Array(count * 4);
    const scores = new Float32Array(count);
    for (let i = 0; i < count; i++) {
      const r = i * 17, ax = this.#anchors[2 * i], ay = this.#anchors[2 * i + 1];
      const cx = data[r + 1] + ax, cy = data[r + 2] + ay, bw = data[r + 3], bh = data[r + 4];
      boxes.set([cy - bh / 2, cx - bw / 2, cy + bh / 2, cx + bw / 2], i * 4);
      scores[i] = 1 / (1 + Math.exp(-data[r]));
    }
    const boxT = tf.tensor2d(boxes, [count, 4]);
    const scoreT = tf.tensor1d(scores);
    const keepT = await tf.image.nonMaxSuppressionAsync(boxT, scoreT, maxFaces, iouThreshold, minScore);
    const keep = Array.from(await keepT.data());
    tf.dispose([boxT, scoreT, keepT]);
    const faces: Face[] = [];
    for (const i of keep) {
      const [y1, x1, y2, x2] = Array.from(boxes.subarray(i * 4, i * 4 + 4), (v) => v * scale);
      const box = clipBox({ x: x1, y: y1, width: x2 - x1, height: y2 - y1 }, w, h);
      if (box.width < minSize || box.height < minSize) continue;
      const r = i * 17, ax = this.#anchors[2 * i], ay = this.#anchors[2 * i + 1];
      const landmarks = Object.fromEntries(LANDMARKS.map((name, k) => [
        name,
        [(data[r + 5 + 2 * k] + ax) * scale, (data[r + 6 + 2 * k] + ay) * scale] as Point,
      ])) as unknown as Landmarks;
      faces.push({ box, score: scores[i], landmarks });
    }
    return faces;
  }

  /** Frees the model's weights. */
  dispose(): void {
    this.model.dispose();
  }
}

function clipBox(b: Box, w: number, h: number): Box {
  const x1 = Math.max(0, b.x), y1 = Math.max(0, b.y);
  const x2 = Math.min(w, b.x + b.width), y2 = Math.min(h, b.y + b.height);
  return { x: x1, y: y1, width: Math.max(0, x2 - x1), height: Math.max(0, y2 - y1) };
}
