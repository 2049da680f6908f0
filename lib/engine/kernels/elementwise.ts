/**
 * Tuned JS replacements for the non-GEMM kernels that dominate a training step once the convolutions run on
 * OpenBLAS. Profile of one reference-net step (batch 64) on the plain cpu kernels, native convs only:
 * Multiply 30%, Sum 21%, MaxPoolGrad 12%, Mean 9%, Sub 9%, Add 4%, Tile 3%, RealDiv 3%, Relu/Step 2%
 * (mostly BatchNorm's moments and gradient, whose per-channel operands are broadcast over N*H*W; the cpu
 * backend computes a full multi-index per element for any broadcast, and reduces by transposing first).
 * These versions collapse shapes to at most a few loops with unit-stride inner loops; each falls back to
 * the original cpu kernel for dtypes/cases it does not handle, so semantics never diverge.
 */
import * as tf from "@tensorflow/tfjs-core";
import type { MathBackendCPU } from "@tensorflow/tfjs-backend-cpu";
import { activeDnnl, type EltwiseAlg } from "../dnnl.ts";
import { type KernelFn } from "./types.ts";
import { allocOn, outArray, recycleOn, zeroArray } from "../pool.ts";

function vals(b: MathBackendCPU, t: tf.TensorInfo): Float32Array | null {
  if (t.dtype !== "float32") return null;
  const v = b.data.get(t.dataId).values;
  return v instanceof Float32Array ? v : null;
}

/**
 * Broadcast plan: shapes padded to a common rank, then adjacent dims merged while both operands agree on
 * whether they are broadcast there. Returns merged out dims and per-operand strides (0 = broadcast).
 */
function broadcastPlan(
  sa: number[],
  sb: number[],
): { out: number[]; dims: number[]; stA: number[]; stB: number[] } | null {
  const r = Math.max(sa.length, sb.length);
  const a = [...Array(r - sa.length).fill(1), ...sa];
  const b = [...Array(r - sb.length).fill(1), ...sb];
  const out: number[] = [];
  for (let i = 0; i < r; i++) {
    if (a[i] !== b[i] && a[i] !== 1 && b[i] !== 1) return null;
    out.push(Math.max(a[i], b[i]));
  }
  // Merge dims (skipping size-1 output dims) with identical broadcast flags.
  const dims: number[] = [];
  const fa: boolean[] = [];
  const fb: boolean[] = [];
  for (let i = 0; i < r; i++) {
    if (out[i] === 1) continue;
    const ba = a[i] === 1, bb = b[i] === 1;
    const last = dims.length - 1;
    if (last >= 0 && fa[last] === ba && fb[last] === bb) dims[last] *= out[i];
    else {
      dims.push(out[i]);
      fa.push(ba);
      fb.push(bb);
    }
  }
  if (dims.length === 0) {
    dims.push(1);
    fa.push(false);
    fb.push(false);
  }
  const stA = new Array(dims.length).fill(0), stB = new Array(dims.length).fill(0);
  let pa = 1, pb = 1;
  for (let i = dims.length - 1; i >= 0; i--) {
    if (!fa[i]) {
      stA[i] = pa;
      pa *= dims[i];
    }
    if (!fb[i]) {
      stB[i] = pb;
      pb *= dims[i];
    }
  }
  return { out, dims, stA, stB };
}

type BinOp = (x: number, y: number) => number;

/** Below this many output elements the JS loop beats a oneDNN call's fixed cost. */
const DNNL_MIN = 16384;
const DNNL_BINARY = ["add", "sub", "mul"] as const;

/**
 * Add / sub / mul (code 0 / 1 / 2) on oneDNN when one operand is full-size and the other is broadcast over
 * merged dims (bit for bit the JS results, see dnnl/binary.ts); null when not applicable.
 */
function dnnlBinary(
  code: number,
  a: Float32Array,
  b: Float32Array,
  dims: number[],
  stA: number[],
  stB: number[],
  backend: unknown,
): Float32Array | null {
  const dnnl = activeDnnl();
  if (!dnnl) return null;
  const full = (st: number[]) => st.every((v) => v !== 0);
  const shapeOf = (st: number[]) => dims.map((d, i) => (st[i] === 0 ? 1 : d));
  const alloc = allocOn(backend);
  const alg = DNNL_BINARY[code];
  if (full(stA)) return dnnl.binary(alg, a, dims, b, shapeOf(stB), alloc);
  // a broadcast, b full: swap operands for the commutative ops
  if (full(stB) && code !== 1) return dnnl.binary(alg, b, dims, a, shapeOf(stA), alloc);
  return null;
}

/** Broadcasting binary op with the innermost merged dim as a unit-or-zero-stride loop. */
function binary(
  a: Float32Array,
  sa: number[],
  b: Float32Array,
  sb: number[],
  op: BinOp,
  code: number,
  backend: unknown,
) {
  const plan = broadcastPlan(sa, sb);
  if (!plan) return null;
  const { out, dims, stA, stB } = plan;
  const size = out.reduce((p, q) => p * q, 1);
  const fast = code <= 2 && size >= DNNL_MIN ? dnnlBinary(code, a, b, dims, stA, stB, backend) : null;
  if (fast) return { shape: out, values: fast };
  const y = outArray(backend, size);
  const nd = dims.length;
  const inner = dims[nd - 1], ia = stA[nd - 1], ib = stB[nd - 1];
  const idx = new Array(nd - 1).fill(0);
  let oa = 0, ob = 0;
  for (let o = 0; o < size; o += inner) {
    // The common cases get monomorphic loops (code: 0 add, 1 sub, 2 mul, 3 div, else generic op).
    if (ia === 1 && ib === 1) {
      if (code === 0) { for (let i = 0; i < inner; i++) y[o + i] = a[oa + i] + b[ob + i]; }
      else if (code === 1) { for (let i = 0; i < inner; i++) y[o + i] = a[oa + i] - b[ob + i]; }
      else if (code === 2) { for (let i = 0; i < inner; i++) y[o + i] = a[oa + i] * b[ob + i]; }
      else for (let i = 0; i < inner; i++) y[o + i] = op(a[oa + i], b[ob + i]);
    } else if (ib === 0) {
      const bv = b[ob];
      if (code === 0) { for (let i = 0; i < inner; i++) y[o + i] = a[oa + i * ia] + bv; }
      else if (code === 1) { for (let i = 0; i < inner; i++) y[o + i] = a[oa + i * ia] - bv; }
      else if (code === 2) { for (let i = 0; i < inner; i++) y[o + i] = a[oa + i * ia] * bv; }
      else for (let i = 0; i < inner; i++) y[o + i] = op(a[oa + i * ia], bv);
    } else {
      const av = a[oa];
      if (code === 0) { for (let i = 0; i < inner; i++) y[o + i] = av + b[ob + i * ib]; }
      else if (code === 1) { for (let i = 0; i < inner; i++) y[o + i] = av - b[ob + i * ib]; }
      else if (code === 2) { for (let i = 0; i < inner; i++) y[o + i] = av * b[ob + i * ib]; }
      else for (let i = 0; i < inner; i++) y[o + i] = op(av, b[ob + i * ib]);
    }
    // advance the outer multi-index
    for (let d = nd - 2; d >= 0; d--) {
      idx[d]++;
      oa += stA[d];
      ob += stB[d];
      if (idx[d] < dims[d]) break;
      oa -= stA[d] * dims[d];
      ob -= stB[d] * dims[d];
      idx[d] = 0;
    }
  }
  return { shape: out, values: y };
}

function binaryKernel(name: string, op: BinOp, code: number, orig: (n: string) => KernelFn): KernelFn {
  return (args) => {
    const { a, b } = args.inputs;
    const av = vals(args.backend, a), bv = vals(args.backend, b);
    if (!av || !bv) return orig(name)(args);
    const r = binary(av, a.shape, bv, b.shape, op, code, args.backend);
    if (!r) return orig(name)(args);
    return args.backend.makeTensorInfo(r.shape, "float32", r.values);
  };
}

/** Sum over a contiguous block of axes as [outer, red, inner], accumulating in float64. */
function reduceSum(
  x: Float32Array,
  shape: number[],
  axes: number[],
): { outShape: number[]; v: Float32Array; red: number } | null {
  const ax = [...axes].sort((p, q) => p - q);
  for (let i = 1; i < ax.length; i++) if (ax[i] !== ax[i - 1] + 1) return null;
  const lo = ax.length ? ax[0] : 0, hi = ax.length ? ax[ax.length - 1] + 1 : 0;
  const outer = shape.slice(0, lo).reduce((p, q) => p * q, 1);
  const red = shape.slice(lo, hi).reduce((p, q) => p * q, 1);
  const inner = shape.slice(hi).reduce((p, q) => p * q, 1);
  const acc = new Float64Array(outer * inner);
  if (inner === 1) {
    for (let o = 0; o < outer; o++) {
      let s = 0;
      const base = o * red;
      for (let r = 0; r < red; r++) s += x[base + r];
      acc[o] = s;
    }
  } else {
    for (let o = 0; o < outer; o++) {
      const ao = o * inner;
      for (let r = 0; r < red; r++) {
        const base = (o * red + r) * inner;
        for (let i = 0; i < inner; i++) acc[ao + i] += x[base + i];
      }
    }
  }
  return { outShape: [...shape.slice(0, lo), ...shape.slice(hi)], v: Float32Array.from(acc), red };
}

/**
 * Mean of NHWC data over H and W (axes [1, 2]: global average pooling, squeeze-excite) on oneDNN's average
 * pooling, for large inputs (float32 accumulation; the JS path sums in float64). Null when not applicable.
 */
function dnnlMean(x: Float32Array, shape: number[], axes: number[], backend: unknown): Float32Array | null {
  const dnnl = activeDnnl();
  const ax = [...axes].sort((p, q) => p - q);
  if (!dnnl || shape.length !== 4 || ax.length !== 2 || ax[0] !== 1 || ax[1] !== 2) return null;
  return dnnl.spatialMean(x, shape, allocOn(backend));
}

function reduceKernel(name: string, mean: boolean, orig: (n: string) => KernelFn): KernelFn {
  return (args) => {
    const { x } = args.inputs;
    const xv = vals(args.backend, x);
    if (!xv || x.shape.length === 0) return orig(name)(args);
    const axes = tf.util.parseAxisParam(args.attrs?.axis as number | number[], x.shape);
    const keptShape = () => x.shape.map((d, i) => (axes.includes(i) ? 1 : d));
    const fast = mean && xv.length >= DNNL_MIN ? dnnlMean(xv, x.shape, axes, args.backend) : null;
    if (fast) {
      const shape = args.attrs?.keepDims ? keptShape() : x.shape.filter((_, i) => !axes.includes(i));
      return args.backend.makeTensorInfo(shape, "float32", fast);
    }
    const r = reduceSum(xv, x.shape, axes);
    if (!r) return orig(name)(args);
    if (mean) {
      const inv = r.red;
      for (let i = 0; i < r.v.length; i++) r.v[i] /= inv;
    }
    let shape = r.outShape;
    if (args.attrs?.keepDims) shape = keptShape();
    return args.backend.makeTensorInfo(shape, "float32", r.v);
  };
}

/** Tile by copying whole rows of the innermost dim (then doubling), instead of per-element index math. */
function tileKernel(orig: (n: string) => KernelFn): KernelFn {
  return (args) => {
    const { x } = args.inputs;
    const reps = args.attrs?.reps as number[];
    const xv = vals(args.backend, x);
    if (!xv || x.shape.length === 0 || reps.length !== x.shape.length) return orig(tf.Tile)(args);
    const shape = x.shape;
    const r = shape.length;
    const outShape = shape.map((d, i) => d * reps[i]);
    // Build progressively from the last axis: after step k, `cur` holds x tiled along axes >= k.
    let cur: Float32Array = xv;
    let curShape = [...shape];
    for (let k = r - 1; k >= 0; k--) {
      if (reps[k] === 1) continue;
      const outer = curShape.slice(0, k).reduce((p, q) => p * q, 1);
      const block = curShape.slice(k).reduce((p, q) => p * q, 1);
      const next = outArray(args.backend, outer * block * reps[k]);
      const rk = reps[k];
      if (block >= 64) {
        for (let o = 0; o < outer; o++) {
          const src = cur.subarray(o * block, (o + 1) * block);
          const base = o * block * rk;
          for (let t = 0; t < rk; t++) next.set(src, base + t * block);
        }
      } else if (block === 1) {
        // e.g. LayerNorm's per-pixel mean tiled over channels
        for (let o = 0; o < outer; o++) next.fill(cur[o], o * rk, (o + 1) * rk);
      } else {
        let p = 0;
        for (let o = 0; o < outer; o++) {
          const src = o * block;
          for (let t = 0; t < rk; t++) for (let z = 0; z < block; z++) next[p++] = cur[src + z];
        }
      }
      cur = next;
      curShape = curShape.map((d, i) => (i === k ? d * reps[k] : d));
    }
    return args.backend.makeTensorInfo(outShape, "float32", cur === xv ? xv.slice() : cur);
  };
}

function poolInfo(x: tf.TensorInfo, attrs: Record<string, unknown>) {
  return tf.backend_util.computePool2DInfo(
    x.shape as [number, number, number, number],
    attrs.filterSize as [number, number] | number,
    attrs.strides as [number, number] | number,
    1,
    attrs.pad as "same" | "valid",
    attrs.dimRoundingMode as "floor" | "round" | "ceil" | undefined,
  );
}

/**
 * NHWC max pooling. `argmax` (when given) receives, per output element, the flat input index of the first
 * maximum in row-major window order, exactly the cpu backend's tie rule (strict `>` from -Infinity).
 */
function maxPool(
  x: Float32Array,
  info: ReturnType<typeof poolInfo>,
  argmax: Int32Array | null,
  backend: unknown = null,
): Float32Array {
  const { batchSize: n, inHeight: h, inWidth: w, inChannels: c, outHeight: oh, outWidth: ow } = info;
  const { filterHeight: fh, filterWidth: fw, strideHeight: sh, strideWidth: sw } = info;
  const { top, left } = info.padInfo;
  const y = outArray(backend, n * oh * ow * c).fill(-Infinity);
  const pos = argmax ?? new Int32Array(0);
  if (argmax) argmax.fill(-1);
  for (let b = 0; b < n; b++) {
    for (let r = 0; r < oh; r++) {
      for (let q = 0; q < ow; q++) {
        const yo = ((b * oh + r) * ow + q) * c;
        for (let i = 0; i < fh; i++) {
          const ih = r * sh - top + i;
          if (ih < 0 || ih >= h) continue;
          for (let j = 0; j < fw; j++) {
            const iw = q * sw - left + j;
            if (iw < 0 || iw >= w) continue;
            const xo = ((b * h + ih) * w + iw) * c;
            if (argmax) {
              for (let k = 0; k < c; k++) {
                const v = x[xo + k];
                if (v > y[yo + k]) {
                  y[yo + k] = v;
                  pos[yo + k] = xo + k;
                }
              }
            } else {
              for (let k = 0; k < c; k++) if (x[xo + k] > y[yo + k]) y[yo + k] = x[xo + k];
            }
          }
        }
      }
    }
  }
  return y;
}

function maxPoolKernels(orig: (n: string) => KernelFn): Record<string, KernelFn> {
  const fwd: KernelFn = (args) => {
    const { x } = args.inputs;
    const xv = vals(args.backend, x);
    if (!xv || x.shape.length !== 4) return orig(tf.MaxPool)(args);
    const info = poolInfo(x, args.attrs ?? {});
    const fast = info.dilationHeight === 1 && info.dilationWidth === 1
      ? activeDnnl()?.maxPool(xv, info, allocOn(args.backend))
      : null;
    const y = fast ?? maxPool(xv, info, null, args.backend);
    return args.backend.makeTensorInfo(info.outShape, "float32", y);
  };
  const grad: KernelFn = (args) => {
    const { dy, input } = args.inputs;
    const xv = vals(args.backend, input), dyv = vals(args.backend, dy);
    if (!xv || !dyv || input.shape.length !== 4) return orig(tf.MaxPoolGrad)(args);
    const info = poolInfo(input, args.attrs ?? {});
    const fast = info.dilationHeight === 1 && info.dilationWidth === 1
      ? activeDnnl()?.maxPoolBackward(xv, dyv, info, allocOn(args.backend))
      : null;
    if (fast) return args.backend.makeTensorInfo(input.shape, "float32", fast);
    const pos = new Int32Array(dyv.length);
    const scratch = maxPool(xv, info, pos, args.backend);
    recycleOn(args.backend, scratch);
    const dx = zeroArray(args.backend, xv.length);
    for (let i = 0; i < pos.length; i++) if (pos[i] >= 0) dx[pos[i]] += dyv[i];
    return args.backend.makeTensorInfo(input.shape, "float32", dx);
  };
  return { [tf.MaxPool]: fwd, [tf.MaxPoolGrad]: grad };
}

function unaryKernel(
  name: string,
  orig: (n: string) => KernelFn,
  f: (x: Float32Array, y: Float32Array, attrs: Record<string, unknown>) => void,
  fast?: EltwiseAlg,
): KernelFn {
  return (args) => {
    const { x } = args.inputs;
    const xv = vals(args.backend, x);
    if (!xv) return orig(name)(args);
    const alloc = allocOn(args.backend);
    const yf = fast ? activeDnnl()?.eltwise(fast, xv, alloc) : undefined;
    if (yf) return args.backend.makeTensorInfo(x.shape, "float32", yf);
    const y = alloc(xv.length);
    f(xv, y, args.attrs ?? {});
    return args.backend.makeTensorInfo(x.shape, "float32", y);
  };
}

/**
 * FusedBatchNorm (inference form, also used by training-mode tfjs-layers BN after tf.moments): on oneDNN's
 * batch-normalization primitive with global statistics (vectorized, multi-threaded) when the statistics are
 * per-channel; else a loop that computes the per-channel factor scale / sqrt(var + eps) once per channel (the
 * cpu kernel takes a Math.sqrt and four modulo counters per element).
 */
function batchNormKernel(orig: (n: string) => KernelFn): KernelFn {
  return (args) => {
    const { x, mean, variance, offset, scale } = args.inputs;
    const b = args.backend;
    const xv = vals(b, x), mv = vals(b, mean), vv = vals(b, variance);
    const ov = offset ? vals(b, offset) : new Float32Array([0]);
    const sv = scale ? vals(b, scale) : new Float32Array([1]);
    if (!xv || !mv || !vv || !ov || !sv) return orig(tf.FusedBatchNorm)(args);
    const L = Math.max(mv.length, vv.length, ov.length, sv.length);
    if ([mv, vv, ov, sv].some((a) => a.length !== 1 && a.length !== L) || xv.length % L !== 0) {
      return orig(tf.FusedBatchNorm)(args);
    }
    const eps = (args.attrs?.varianceEpsilon as number | undefined) ?? 0.001;
    // oneDNN when every statistic is per-channel over the last axis (float32 arithmetic: equal to the loop
    // below to rounding, not bit for bit)
    const perChannel = [mv, vv, ov, sv].every((a) => a.length === L) && x.shape[x.shape.length - 1] === L &&
      (x.shape.length === 4 || x.shape.length === 2) && offset && scale;
    const fast = perChannel
      ? activeDnnl()?.batchNormInference(xv, x.shape, mv, vv, sv, ov, eps, allocOn(b))
      : null;
    if (fast) return b.makeTensorInfo(x.shape, "float32", fast);
    const at = (a: Float32Array, i: number) => (a.length === 1 ? a[0] : a[i]);
    const m = new Float64Array(L), f = new Float64Array(L), o = new Float64Array(L);
    for (let i = 0; i < L; i++) {
      m[i] = at(mv, i);
      f[i] = at(sv, i) / Math.sqrt(at(vv, i) + eps);
      o[i] = at(ov, i);
    }
    const y = outArray(b, xv.length);
    for (let i = 0; i < xv.length; i += L) {
      for (let c = 0; c < L; c++) y[i + c] = o[c] + (xv[i + c] - m[c]) * f[c];
    }
    return b.makeTensorInfo(x.shape, "float32", y);
  };
}

/** Element-wise / reduction / pooling overrides (fall back to `orig` for cases not handled). */
export function extraKernels(orig: (name: string) => KernelFn): Record<string, KernelFn> {
  return {
    [tf.Add]: binaryKernel(tf.Add, (x, y) => x + y, 0, orig),
    [tf.Sub]: binaryKernel(tf.Sub, (x, y) => x - y, 1, orig),
    [tf.Multiply]: binaryKernel(tf.Multiply, (x, y) => x * y, 2, orig),
    [tf.RealDiv]: binaryKernel(tf.RealDiv, (x, y) => x / y, 3, orig),
    [tf.SquaredDifference]: binaryKernel(tf.SquaredDifference, (x, y) => (x - y) * (x - y), 4, orig),
    [tf.Maximum]: binaryKernel(tf.Maximum, (x, y) => Math.max(x, y), 5, orig),
    [tf.Sum]: reduceKernel(tf.Sum, false, orig),
    [tf.Mean]: reduceKernel(tf.Mean, true, orig),
    [tf.Tile]: tileKernel(orig),
    [tf.FusedBatchNorm]: batchNormKernel(orig),
    ...maxPoolKernels(orig),
    [tf.Relu]: unaryKernel(tf.Relu, orig, (x, y) => {
      for (let i = 0; i < x.length; i++) y[i] = x[i] < 0 ? 0 : x[i];
    }, "relu"),
    // Same Abramowitz-Stegun 7.1.26 formula and constants as the cpu kernel, without its per-element
    // closure call (GELU's erf was 20% of ConvNeXt inference).
    [tf.Erf]: unaryKernel(tf.Erf, orig, (x, y) => {
      const { ERF_P: p, ERF_A1: a1, ERF_A2: a2, ERF_A3: a3, ERF_A4: a4, ERF_A5: a5 } = tf.backend_util;
      for (let i = 0; i < x.length; i++) {
        const xi = x[i];
        const v = Math.abs(xi);
        const t = 1.0 / (1.0 + p * v);
        y[i] = Math.sign(xi) *
          (1.0 - (((((a5 * t + a4) * t) + a3) * t + a2) * t + a1) * t * Math.exp(-v * v));
      }
    }),
    [tf.Sigmoid]: unaryKernel(tf.Sigmoid, orig, (x, y) => {
      for (let i = 0; i < x.length; i++) y[i] = 1 / (1 + Math.exp(-x[i]));
    }, "logistic"),
    [tf.Exp]: unaryKernel(tf.Exp, orig, (x, y) => {
      for (let i = 0; i < x.length; i++) y[i] = Math.exp(x[i]);
    }),
    [tf.Step]: unaryKernel(tf.Step, orig, (x, y, attrs) => {
      const alpha = (attrs.alpha as number) ?? 0;
      for (let i = 0; i < x.length; i++) y[i] = x[i] > 0 ? 1 : Number.isNaN(x[i]) ? NaN : alpha;
    }),
  };
}
