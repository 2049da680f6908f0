/**
 * Albumentations-equivalent image transforms on batches of tensors, as used by the original study:
 *
 *   train: Resize(h, w) -> HorizontalFlip(p=0.5) -> ShiftScaleRotate(0.05, 0.05, 10°, p=0.5)
 *          -> ColorJitter(brightness 0.2, contrast 0.2, saturation 0.2, p=0.5) -> Normalize
 *   val/test: Resize(h, w) -> Normalize
 *
 * Crop-based training (optional, `cropFrom`, for the from-scratch recipes — not in the study): Resize to
 * `cropFrom` -> RandomCrop(size) -> the augmentations above -> Normalize -> RandomErasing (torchvision's, on the
 * normalized tensor); evaluation takes the centre crop, or one test-time-augmentation view (`view`: a crop
 * offset and a flip; see lib/data/views.ts `ttaViews`).
 *
 * Input is the float32 0..255 batch [b, h, w, c] from `batches()`; output is the model-ready tensor (resized,
 * channels expanded or reduced, normalized). Random parameters come from a seeded generator (lib/util/rng.ts), drawn
 * per image in a fixed order, so a batch's augmentation depends only on (seed, key) — training passes
 * key = [epoch, step], which makes a resumed run augment exactly like an uninterrupted one.
 *
 * Hand-written because no maintained JS library applies Albumentations' geometry to tensors; each transform
 * follows the Albumentations 1.x / OpenCV definition, with these documented differences:
 * - Pixels stay float32 between transforms (Albumentations rounds to uint8 after each one); values are
 *   clipped to 0..255 where Albumentations' uint8 arithmetic saturates.
 * - Pixels are processed in plain loops over typed arrays (see below), so the transforms run on the CPU
 *   whatever the tfjs backend; the result is uploaded as one tensor.
 * - cv2.warpAffine interpolates with 5-bit fixed-point weights; we use exact float weights (a difference of at
 *   most ~1/32 of the local pixel step).
 * - Border mode is cv2.BORDER_REFLECT_101 (Albumentations' default for ShiftScaleRotate: `dcb|abcd|cba`).
 *   tf.image.transform's "reflect" is BORDER_REFLECT (`dcba|abcd|dcba`, edge repeated), so the warp is done
 *   here.
 * - ColorJitter's hue (Albumentations default 0.2) is a no-op on grayscale faces (FER2013 is gray); it is not
 *   implemented, and asking for hue jitter throws. Saturation is implemented and is a no-op on gray images.
 * - Gray images are augmented on one channel and expanded to three just before Normalize; this is exactly
 *   equal to augmenting the replicated 3-channel image (every op acts identically on equal channels).
 */
import * as tf from "@tensorflow/tfjs-core";
import { mixSeed, mulberry32, shuffleInPlace } from "../util/rng.ts";
import { IMAGENET } from "../models/register.ts";
import { centerOffset, roundHalfEven, type View } from "./views.ts";

/** ImageNet means (Albumentations Normalize defaults; defined once, in lib/models/register.ts). */
export const IMAGENET_MEAN: number[] = IMAGENET.mean;
/** ImageNet standard deviations. */
export const IMAGENET_STD: number[] = IMAGENET.std;

/** ShiftScaleRotate parameters of one image (angle in degrees, counter-clockwise; dx, dy as image fractions). */
export type AffineParams = { angle: number; scale: number; dx: number; dy: number };

/** ColorJitter parameters of one image: multiplicative factors and the order the four ops run in. */
export type JitterParams = {
  brightness: number;
  contrast: number;
  saturation: number;
  /** A permutation of 0..3: 0 brightness, 1 contrast, 2 saturation, 3 hue (no-op). */
  order: number[];
};

/** Augmentation settings (the study's values are the defaults). */
export type AugmentOptions = {
  /** HorizontalFlip probability (default 0.5). */
  hflipP?: number;
  /** ShiftScaleRotate: shift limit (fraction of size), scale limit, rotate limit in degrees, probability. */
  shiftLimit?: number;
  scaleLimit?: number;
  rotateLimit?: number;
  ssrP?: number;
  /** ColorJitter strengths and probability (0 disables that part). */
  brightness?: number;
  contrast?: number;
  saturation?: number;
  hue?: number;
  jitterP?: number;
};

/** torchvision RandomErasing settings (defaults p 0.5, scale 0.02–0.33, ratio 0.3–3.3, value 0). */
export type ErasingOptions = {
  /** Probability an image gets a rectangle erased. */
  p?: number;
  /** Range of the erased area as a fraction of the image. */
  scale?: [number, number];
  /** Range of the rectangle's aspect ratio (height / width), sampled log-uniformly. */
  ratio?: [number, number];
  /** Value written into the rectangle, on the normalized scale (0 = the mean pixel). */
  value?: number;
};

/** torchvision RandomErasing's defaults. */
export const ERASING_DEFAULTS: Required<ErasingOptions> = {
  p: 0.5,
  scale: [0.02, 0.33],
  ratio: [0.3, 3.3],
  value: 0,
};

/** One erased rectangle (rows `top..top+h-1`, columns `left..left+w-1`). */
export type EraseRect = { top: number; left: number; h: number; w: number };

/** Options of {@link makeTransforms}. */
export type TransformOptions = {
  /** Output [height, width]. */
  size: [number, number];
  /** Output channels: 3 (gray expanded, ImageNet-style models) or 1. */
  channels: 1 | 3;
  /** Per-output-channel mean and std on the 0..1 scale (length 1 or `channels`). */
  mean: number[];
  std: number[];
  /** Training transforms (random augmentation) or evaluation transforms (resize + normalize only). */
  train: boolean;
  /** Base seed of the augmentation generator (default 0). */
  seed?: number;
  /** Augmentation settings (study defaults). */
  augment?: AugmentOptions;
  /** Albumentations' max_pixel_value (default 255). */
  maxPixelValue?: number;
  /**
   * Crop-based pipeline: resize to `cropFrom`×`cropFrom`, then crop `size` from it (random in training, the
   * centre — or `view` — in evaluation). Absent: resize straight to `size` (the study's pipeline).
   */
  cropFrom?: number;
  /** RandomErasing after Normalize in training (absent or false: none). */
  erasing?: ErasingOptions | false;
  /** Evaluation only: the crop offset and flip of one test-time-augmentation view (needs `cropFrom` for crops). */
  view?: View;
};

/** A batch transform: float 0..255 [b,h,w,c] -> model-ready tensor. `key` (e.g. [epoch, step]) picks the
 * random stream; without it, successive calls continue one stream. The input is not disposed. */
export type Transform = (x: tf.Tensor4D, key?: number[]) => tf.Tensor4D;

/** The study's augmentation settings. */
export const STUDY_AUGMENT: Required<AugmentOptions> = {
  hflipP: 0.5,
  shiftLimit: 0.05,
  scaleLimit: 0.05,
  rotateLimit: 10,
  ssrP: 0.5,
  brightness: 0.2,
  contrast: 0.2,
  saturation: 0.2,
  hue: 0,
  jitterP: 0.5,
};

// ---- the transforms on pixel arrays -----------------------------------------------------------------------
// The work is done in plain loops over Float32Arrays, one pass per transform: on the tfjs cpu backend a
// chain of elementwise tensor ops (reverse, where, gather, broadcast) costs 50-100× more than these loops,
// and the batch comes from (and goes back to) CPU memory anyway. The tensor functions below wrap them.

/** A batch of NHWC pixels in a flat array. */
export type Pixels = { data: Float32Array; b: number; h: number; w: number; c: number };

/** Bilinear resize with OpenCV's INTER_LINEAR convention (half-pixel centres, clamped edges, no antialias). */
export function resizePixels(img: Pixels, oh: number, ow: number): Pixels {
  const { data, b, h, w, c } = img;
  if (oh === h && ow === w) return { ...img, data: data.slice() };
  const out = new Float32Array(b * oh * ow * c);
  const axis = (n: number, on: number) => {
    const lo = new Int32Array(on);
    const hi = new Int32Array(on);
    const f = new Float32Array(on);
    for (let i = 0; i < on; i++) {
      const s = Math.max(0, ((i + 0.5) * n) / on - 0.5);
      const i0 = Math.min(Math.floor(s), n - 1);
      lo[i] = i0;
      hi[i] = Math.min(i0 + 1, n - 1);
      f[i] = s - i0;
    }
    return { lo, hi, f };
  };
  const ys = axis(h, oh);
  const xs = axis(w, ow);
  let o = 0;
  for (let n = 0; n < b; n++) {
    const base = n * h * w * c;
    for (let y = 0; y < oh; y++) {
      const r0 = base + ys.lo[y] * w * c;
      const r1 = base + ys.hi[y] * w * c;
      const fy = ys.f[y];
      for (let x = 0; x < ow; x++) {
        const c0 = xs.lo[x] * c;
        const c1 = xs.hi[x] * c;
        const fx = xs.f[x];
        for (let k = 0; k < c; k++) {
          const top = data[r0 + c0 + k] + (data[r0 + c1 + k] - data[r0 + c0 + k]) * fx;
          const bot = data[r1 + c0 + k] + (data[r1 + c1 + k] - data[r1 + c0 + k]) * fx;
          out[o++] = top + (bot - top) * fy;
        }
      }
    }
  }
  return { data: out, b, h: oh, w: ow, c };
}

/** cv2.BORDER_REFLECT_101 index: `... 2 1 | 0 1 2 ... n-1 | n-2 ...`. */
export function reflect101(i: number, n: number): number {
  if (n === 1) return 0;
  const period = 2 * (n - 1);
  let k = i % period;
  if (k < 0) k += period;
  return k < n ? k : period - k;
}

/**
 * HorizontalFlip then ShiftScaleRotate per image, in one pass (exact: a flip maps pixel centres onto pixel
 * centres, and reflect-101 is symmetric under it). ShiftScaleRotate is Albumentations':
 * `M = cv2.getRotationMatrix2D((w/2 - 0.5, h/2 - 0.5), angle, scale)`, `M[:, 2] += (dx·w, dy·h)`, then
 * `cv2.warpAffine(img, M, (w, h), INTER_LINEAR, BORDER_REFLECT_101)`: each output pixel reads the input at
 * `M⁻¹(x, y)` with bilinear weights, the four neighbours mapped into the image by reflect-101.
 */
export function flipWarpPixels(img: Pixels, flips: boolean[], affines: (AffineParams | null)[]): Pixels {
  const { data, b, h, w, c } = img;
  if (flips.length !== b) throw new RangeError(`${flips.length} flip flags for ${b} images`);
  if (affines.length !== b) throw new RangeError(`${affines.length} affine parameter sets for ${b} images`);
  const out = new Float32Array(data.length);
  const cx = w / 2 - 0.5;
  const cy = h / 2 - 0.5;
  const per = h * w * c;
  for (let n = 0; n < b; n++) {
    const base = n * per;
    const flip = flips[n];
    const a = affines[n];
    const col = (x: number) => (flip ? w - 1 - x : x);
    if (!a) {
      for (let y = 0; y < h; y++) {
        for (let x = 0; x < w; x++) {
          const dst = base + (y * w + x) * c;
          const src = base + (y * w + col(x)) * c;
          for (let k = 0; k < c; k++) out[dst + k] = data[src + k];
        }
      }
      continue;
    }
    const rad = (a.angle * Math.PI) / 180;
    const al = a.scale * Math.cos(rad);
    const be = a.scale * Math.sin(rad);
    const tx = (1 - al) * cx - be * cy + a.dx * w;
    const ty = be * cx + (1 - al) * cy + a.dy * h;
    // dst = A·src + t with A = [[al, be], [-be, al]]  =>  src = A⁻¹(dst - t), A⁻¹ = [[al, -be], [be, al]] / det
    const det = al * al + be * be;
    const ia = al / det;
    const ib = be / det;
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const u = x - tx;
        const v = y - ty;
        const sx = ia * u - ib * v;
        const sy = ib * u + ia * v;
        const x0 = Math.floor(sx);
        const y0 = Math.floor(sy);
        const fx = sx - x0;
        const fy = sy - y0;
        const xa = col(reflect101(x0, w)) * c;
        const xb = col(reflect101(x0 + 1, w)) * c;
        const ya = base + reflect101(y0, h) * w * c;
        const yb = base + reflect101(y0 + 1, h) * w * c;
        const w00 = (1 - fx) * (1 - fy);
        const w01 = fx * (1 - fy);
        const w10 = (1 - fx) * fy;
        const w11 = fx * fy;
        const dst = base + (y * w + x) * c;
        for (let k = 0; k < c; k++) {
          out[dst + k] = data[ya + xa + k] * w00 + data[ya + xb + k] * w01 + data[yb + xa + k] * w10 +
            data[yb + xb + k] * w11;
        }
      }
    }
  }
  return { data: out, b, h, w, c };
}

/**
 * Albumentations/torchvision ColorJitter on 0..255 values, one parameter set (or null: unchanged) per image,
 * the ops in each image's own order: brightness `x·f`; contrast `x·f + mean(gray(x))·(1-f)`; saturation
 * `x·f + gray(x)·(1-f)` (a no-op on one channel); each result clipped to 0..255. Gray is OpenCV's RGB2GRAY
 * (0.299, 0.587, 0.114). Works in place and returns `img`.
 */
export function jitterPixels(img: Pixels, params: (JitterParams | null)[]): Pixels {
  const { data, b, h, w, c } = img;
  if (params.length !== b) throw new RangeError(`${params.length} jitter parameter sets for ${b} images`);
  const per = h * w * c;
  const clip = (v: number) => (v < 0 ? 0 : v > 255 ? 255 : v);
  const luma = (
    i: number,
  ) => (c === 1 ? data[i] : 0.299 * data[i] + 0.587 * data[i + 1] + 0.114 * data[i + 2]);
  for (let n = 0; n < b; n++) {
    const p = params[n];
    if (!p) continue;
    const start = n * per;
    const end = start + per;
    for (const op of p.order) {
      if (op === 0 && p.brightness !== 1) {
        const f = p.brightness;
        for (let i = start; i < end; i++) data[i] = clip(data[i] * f);
      } else if (op === 1 && p.contrast !== 1) {
        const f = p.contrast;
        let sum = 0;
        for (let i = start; i < end; i += c) sum += luma(i);
        const m = (sum / (h * w)) * (1 - f);
        for (let i = start; i < end; i++) data[i] = clip(data[i] * f + m);
      } else if (op === 2 && p.saturation !== 1 && c === 3) {
        const f = p.saturation;
        for (let i = start; i < end; i += 3) {
          const g = luma(i) * (1 - f);
          for (let k = 0; k < 3; k++) data[i + k] = clip(data[i + k] * f + g);
        }
      }
    }
  }
  return img;
}

/**
 * Channel conversion (gray replicated to 3, or RGB to OpenCV luma) fused with Albumentations Normalize:
 * `(x - mean·max) / (std·max)` per output channel (mean/std on the 0..1 scale, one value or one per channel).
 */
export function normalizePixels(
  img: Pixels,
  channels: number,
  mean: number[],
  std: number[],
  maxPixelValue = 255,
): Pixels {
  const { data, b, h, w, c } = img;
  if (!(c === channels || (c === 1 && channels === 3) || (c === 3 && channels === 1))) {
    throw new RangeError(`cannot convert ${c} channels to ${channels}`);
  }
  const expand = (a: number[], what: string) => {
    if (a.length === channels) return a;
    if (a.length === 1) return new Array(channels).fill(a[0]);
    throw new RangeError(`${what} has ${a.length} values for ${channels} channels`);
  };
  const m = expand(mean, "mean").map((v) => v * maxPixelValue);
  const s = expand(std, "std").map((v) => 1 / (v * maxPixelValue));
  const n = b * h * w;
  const out = new Float32Array(n * channels);
  for (let p = 0; p < n; p++) {
    for (let k = 0; k < channels; k++) {
      const v = c === channels
        ? data[p * c + k]
        : c === 1
        ? data[p]
        : 0.299 * data[p * 3] + 0.587 * data[p * 3 + 1] + 0.114 * data[p * 3 + 2];
      out[p * channels + k] = (v - m[k]) * s[k];
    }
  }
  return { data: out, b, h, w, c: channels };
}

/**
 * Crops `oh`×`ow` from every image, image `i` at rows `tops[i]..`, columns `lefts[i]..`, mirrored left-right
 * where `flips[i]` (torchvision crop, then hflip). Offsets must keep the crop inside the image.
 */
export function cropPixels(
  img: Pixels,
  oh: number,
  ow: number,
  tops: ArrayLike<number>,
  lefts: ArrayLike<number>,
  flips?: ArrayLike<boolean>,
): Pixels {
  const { data, b, h, w, c } = img;
  if (tops.length !== b || lefts.length !== b) {
    throw new RangeError(`crop offsets for ${tops.length} of ${b} images`);
  }
  const out = new Float32Array(b * oh * ow * c);
  let o = 0;
  for (let n = 0; n < b; n++) {
    const t = tops[n];
    const l = lefts[n];
    if (t < 0 || l < 0 || t + oh > h || l + ow > w || !Number.isInteger(t) || !Number.isInteger(l)) {
      throw new RangeError(`crop ${oh}x${ow} at (${t}, ${l}) is outside a ${h}x${w} image`);
    }
    const flip = flips?.[n] ?? false;
    for (let y = 0; y < oh; y++) {
      const row = (n * h + t + y) * w;
      for (let x = 0; x < ow; x++) {
        const src = (row + l + (flip ? ow - 1 - x : x)) * c;
        for (let k = 0; k < c; k++) out[o++] = data[src + k];
      }
    }
  }
  return { data: out, b, h: oh, w: ow, c };
}

/**
 * torchvision RandomErasing's rectangle for an `h`×`w` image, or null (not erased): with probability `p`, up to
 * 10 attempts of area `h·w·U(scale)` and aspect `exp(U(log ratio))`, `eh = round(sqrt(area·aspect))`,
 * `ew = round(sqrt(area/aspect))`, accepted when `eh < h` and `ew < w`, at a uniform position. Draws from `rand`
 * in that order (torch's generator differs, so the draws are ours; the distribution is torchvision's).
 */
export function drawErasing(
  rand: () => number,
  h: number,
  w: number,
  e: Required<ErasingOptions>,
): EraseRect | null {
  if (!(rand() < e.p)) return null;
  const area = h * w;
  const [lr0, lr1] = [Math.log(e.ratio[0]), Math.log(e.ratio[1])];
  for (let attempt = 0; attempt < 10; attempt++) {
    const eraseArea = area * (e.scale[0] + (e.scale[1] - e.scale[0]) * rand());
    const aspect = Math.exp(lr0 + (lr1 - lr0) * rand());
    const eh = roundHalfEven(Math.sqrt(eraseArea * aspect));
    const ew = roundHalfEven(Math.sqrt(eraseArea / aspect));
    if (!(eh < h && ew < w)) continue;
    const top = Math.floor(rand() * (h - eh + 1));
    const left = Math.floor(rand() * (w - ew + 1));
    return { top, left, h: eh, w: ew };
  }
  return null;
}

/** Writes `value` into each image's rectangle (null: untouched), all channels. Works in place; returns `img`. */
export function erasePixels(img: Pixels, rects: (EraseRect | null)[], value = 0): Pixels {
  const { data, b, h, w, c } = img;
  if (rects.length !== b) throw new RangeError(`${rects.length} erasing rectangles for ${b} images`);
  for (let n = 0; n < b; n++) {
    const r = rects[n];
    if (!r) continue;
    for (let y = r.top; y < r.top + r.h; y++) {
      data.fill(value, ((n * h + y) * w + r.left) * c, ((n * h + y) * w + r.left + r.w) * c);
    }
  }
  return img;
}

// ---- tensor wrappers ----------------------------------------------------------------------------------

/** The pixels of a [b,h,w,c] tensor (a copy). */
export function toPixels(x: tf.Tensor4D): Pixels {
  const [b, h, w, c] = x.shape;
  return { data: Float32Array.from(x.dataSync()), b, h, w, c };
}

/** A [b,h,w,c] float32 tensor holding `img`. */
export function fromPixels(img: Pixels): tf.Tensor4D {
  return tf.tensor4d(img.data, [img.b, img.h, img.w, img.c], "float32");
}

/** Bilinear resize with OpenCV's INTER_LINEAR pixel-centre convention (see {@link resizePixels}). */
export function resize(x: tf.Tensor4D, size: [number, number]): tf.Tensor4D {
  return fromPixels(resizePixels(toPixels(x), size[0], size[1]));
}

/** Flips the images whose flag is true left-right (the others are returned unchanged). */
export function horizontalFlip(x: tf.Tensor4D, flags: boolean[]): tf.Tensor4D {
  return fromPixels(flipWarpPixels(toPixels(x), flags, flags.map(() => null)));
}

/** Albumentations' ShiftScaleRotate with one parameter set per image (see {@link flipWarpPixels}). */
export function shiftScaleRotate(x: tf.Tensor4D, params: AffineParams[]): tf.Tensor4D {
  return fromPixels(flipWarpPixels(toPixels(x), params.map(() => false), params));
}

/** ColorJitter with one parameter set per image (see {@link jitterPixels}). */
export function colorJitter(x: tf.Tensor4D, params: JitterParams[]): tf.Tensor4D {
  return fromPixels(jitterPixels(toPixels(x), params));
}

/** Gray -> 3 channels (replicated), or RGB -> 1 channel (OpenCV luma); unchanged when already `channels`. */
export function toChannels(x: tf.Tensor4D, channels: 1 | 3): tf.Tensor4D {
  return fromPixels(normalizePixels(toPixels(x), channels, [0], [1 / 255], 255));
}

/** Albumentations Normalize: `(x - mean·max) / (std·max)` per channel (mean/std on the 0..1 scale). */
export function normalize(x: tf.Tensor4D, mean: number[], std: number[], maxPixelValue = 255): tf.Tensor4D {
  return fromPixels(normalizePixels(toPixels(x), x.shape[3], mean, std, maxPixelValue));
}

/** Draws one image's random parameters, in a fixed order (flip, shift-scale-rotate, jitter). */
function drawParams(rand: () => number, a: Required<AugmentOptions>) {
  const uniform = (lo: number, hi: number) => lo + (hi - lo) * rand();
  const flip = rand() < a.hflipP;
  let affine: AffineParams | null = null;
  if (rand() < a.ssrP) {
    affine = {
      angle: uniform(-a.rotateLimit, a.rotateLimit),
      scale: uniform(1 - a.scaleLimit, 1 + a.scaleLimit),
      dx: uniform(-a.shiftLimit, a.shiftLimit),
      dy: uniform(-a.shiftLimit, a.shiftLimit),
    };
  }
  let jitter: JitterParams | null = null;
  if (rand() < a.jitterP) {
    const factor = (s: number) => (s > 0 ? uniform(Math.max(0, 1 - s), 1 + s) : 1);
    jitter = {
      brightness: factor(a.brightness),
      contrast: factor(a.contrast),
      saturation: factor(a.saturation),
      order: shuffleInPlace([0, 1, 2, 3], rand),
    };
  }
  return { flip, affine, jitter };
}

/**
 * The study's transform pipeline as one function. Training: Resize -> HorizontalFlip -> ShiftScaleRotate ->
 * ColorJitter -> channels -> Normalize; evaluation: Resize -> channels -> Normalize. With `cropFrom`: Resize to
 * `cropFrom`, then a random crop of `size` (training) or the centre crop / `view` (evaluation) before the rest,
 * and with `erasing` a RandomErasing after Normalize (training). With a `key`, the random parameters depend only
 * on (seed, key); per image they are drawn in the order crop offset, flip, shift-scale-rotate, jitter, erasing
 * (the crop and erasing draws only when those are on, so the study's pipeline draws exactly as before).
 */
export function makeTransforms(opts: TransformOptions): Transform {
  const a = { ...STUDY_AUGMENT, ...opts.augment };
  if (a.hue > 0) throw new Error("ColorJitter hue is not implemented (it is a no-op on grayscale images)");
  const seed = opts.seed ?? 0;
  const stream = mulberry32(seed);
  const maxPixel = opts.maxPixelValue ?? 255;
  const [oh, ow] = opts.size;
  const from = opts.cropFrom;
  if (from !== undefined && (from < oh || from < ow)) {
    throw new RangeError(`cropFrom ${from} is smaller than the output ${oh}x${ow}`);
  }
  const erasing = opts.train && opts.erasing ? { ...ERASING_DEFAULTS, ...opts.erasing } : null;
  const view = opts.view;
  if (view && opts.train) throw new Error("a TTA view is an evaluation transform (train: false)");
  if (view && from === undefined && (view.top !== 0 || view.left !== 0)) {
    throw new RangeError("a cropped TTA view needs cropFrom");
  }
  return (x: tf.Tensor4D, key?: number[]) => {
    if (x.rank !== 4) throw new RangeError(`transform expects a [b,h,w,c] batch, got shape [${x.shape}]`);
    const b = x.shape[0];
    let img = from === undefined ? resizePixels(toPixels(x), oh, ow) : resizePixels(toPixels(x), from, from);
    if (opts.train) {
      const rand = key ? mulberry32(mixSeed(seed, ...key)) : stream;
      const tops = new Int32Array(b);
      const lefts = new Int32Array(b);
      const ps = Array.from({ length: b }, (_, n) => {
        if (from !== undefined) {
          // torchvision RandomCrop: top = randint(0, h - th), left = randint(0, w - tw), inclusive
          tops[n] = Math.floor(rand() * (from - oh + 1));
          lefts[n] = Math.floor(rand() * (from - ow + 1));
        }
        const p = drawParams(rand, a);
        return { ...p, erase: erasing ? drawErasing(rand, oh, ow, erasing) : null };
      });
      if (from !== undefined) img = cropPixels(img, oh, ow, tops, lefts);
      if (ps.some((p) => p.flip || p.affine)) {
        img = flipWarpPixels(img, ps.map((p) => p.flip), ps.map((p) => p.affine));
      }
      jitterPixels(img, ps.map((p) => p.jitter));
      const out = normalizePixels(img, opts.channels, opts.mean, opts.std, maxPixel);
      if (erasing) erasePixels(out, ps.map((p) => p.erase), erasing.value);
      return fromPixels(out);
    }
    if (from !== undefined || view) {
      const v = view ?? { top: centerOffset(from!, oh), left: centerOffset(from!, ow), flip: false };
      img = cropPixels(
        img,
        oh,
        ow,
        new Int32Array(b).fill(v.top),
        new Int32Array(b).fill(v.left),
        new Array(b).fill(v.flip),
      );
    }
    return fromPixels(normalizePixels(img, opts.channels, opts.mean, opts.std, maxPixel));
  };
}
