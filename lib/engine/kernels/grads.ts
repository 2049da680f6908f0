/**
 * Fused gradient kernels for the `native` backend. TF.js composes the gradients of FusedBatchNorm, Mean,
 * SquaredDifference, Tile and Relu from ~20 full-size element-wise ops per BatchNorm layer (each a fresh
 * allocation and a pass over the activations); after the convolutions moved to OpenBLAS these were ~50% of
 * a reference-net training step. Here each gradient becomes one or two passes in one kernel.
 *
 * The gradient registry is global, so the registered gradient functions are wrapped, not replaced: when
 * the active backend is `native` (and the case is handled) the fused kernel runs, otherwise the original
 * TF.js gradient runs unchanged. The math is the same as TF.js's (see tfjs-core/src/gradients/*_grad.ts).
 */
import * as tf from "@tensorflow/tfjs-core";
import { activeDnnl } from "../dnnl.ts";
// tfjs-core's node bundle registers no gradients; tfjs-layers' bundle registers all of them (into the global
// registry) on import. Imported here so the gradients exist before they are wrapped below.
import "@tensorflow/tfjs-layers";
import { type KernelArgs, registerKernels, runKernel, values } from "./types.ts";
import { allocOn, outArray } from "../pool.ts";

const BN_GRAD = "FerNativeBatchNormGrad";
const RELU_GRAD = "FerNativeReluGrad";
const BROADCAST_SCALE = "FerNativeBroadcastScale";
const SQDIFF_GRAD = "FerNativeSquaredDifferenceGrad";
const TILE_GRAD = "FerNativeTileGrad";

/**
 * One of dx (0), dmean (1), dvariance (2), dscale (3), doffset (4) of
 * y = (x - mean) * rsqrt(var + eps) * scale + offset, NHWC with 1-D statistics (attr `which`). One kernel
 * per output keeps each result owned by its consumer; the per-channel sums are a read-only pass.
 */
function bnGrad({ inputs, backend, attrs }: KernelArgs): tf.TensorInfo {
  const { x, dy, mean, variance } = inputs;
  const scale = inputs.scale as tf.TensorInfo | undefined;
  const eps = attrs!.varianceEpsilon as number;
  const which = attrs!.which as number;
  const xv = values(backend, x),
    dyv = values(backend, dy),
    mv = values(backend, mean),
    vv = values(backend, variance);
  const c = mean.shape[0];
  const sv = scale ? values(backend, scale) : null;
  const inv = new Float64Array(c), sc = new Float64Array(c);
  for (let k = 0; k < c; k++) {
    inv[k] = 1 / Math.sqrt(vv[k] + eps);
    sc[k] = sv ? (sv.length === 1 ? sv[0] : sv[k]) : 1;
  }
  const n = xv.length;
  if (which === 0) {
    const dx = outArray(backend, n);
    const f = new Float32Array(c);
    for (let k = 0; k < c; k++) f[k] = inv[k] * sc[k];
    for (let i = 0; i < n; i += c) for (let k = 0; k < c; k++) dx[i + k] = dyv[i + k] * f[k];
    return backend.makeTensorInfo(x.shape, "float32", dx);
  }
  const s = new Float64Array(c);
  if (which === 1 || which === 4) {
    for (let i = 0; i < n; i += c) for (let k = 0; k < c; k++) s[k] += dyv[i + k];
  } else {
    for (let i = 0; i < n; i += c) for (let k = 0; k < c; k++) s[k] += dyv[i + k] * (xv[i + k] - mv[k]);
  }
  const out = new Float32Array(c);
  for (let k = 0; k < c; k++) {
    if (which === 1) out[k] = -inv[k] * sc[k] * s[k];
    else if (which === 2) out[k] = -0.5 * inv[k] * inv[k] * inv[k] * sc[k] * s[k];
    else if (which === 3) out[k] = inv[k] * s[k];
    else out[k] = s[k];
  }
  return backend.makeTensorInfo(mean.shape, "float32", out);
}

function reluGrad({ inputs, backend }: KernelArgs): tf.TensorInfo {
  const { dy, x } = inputs;
  const dyv = values(backend, dy), xv = values(backend, x);
  const fast = activeDnnl()?.eltwiseBackward("relu", xv, dyv, allocOn(backend));
  if (fast) return backend.makeTensorInfo(x.shape, "float32", fast);
  const out = outArray(backend, xv.length);
  for (let i = 0; i < xv.length; i++) out[i] = xv[i] > 0 ? dyv[i] : Number.isNaN(xv[i]) ? NaN * dyv[i] : 0;
  return backend.makeTensorInfo(x.shape, "float32", out);
}

/** Strides of `src` (padded to out's rank) inside `out`, 0 on broadcast axes. */
function bstrides(src: number[], out: number[]): number[] {
  const s = [...Array(out.length - src.length).fill(1), ...src];
  const st = new Array(out.length).fill(0);
  let p = 1;
  for (let i = out.length - 1; i >= 0; i--) {
    if (s[i] !== 1) {
      st[i] = p;
      p *= s[i];
    }
  }
  return st;
}

/** Visit every element of `out` with the matching offsets into a and b (broadcast strides). */
function forEachBroadcast(
  out: number[],
  stA: number[],
  stB: number[],
  body: (o: number, ia: number, ib: number, inner: number, sa: number, sb: number) => void,
): void {
  const r = out.length;
  if (r === 0) {
    body(0, 0, 0, 1, 0, 0);
    return;
  }
  const inner = out[r - 1];
  const size = out.reduce((p, q) => p * q, 1);
  const idx = new Array(r - 1).fill(0);
  let oa = 0, ob = 0;
  for (let o = 0; o < size; o += inner) {
    body(o, oa, ob, inner, stA[r - 1], stB[r - 1]);
    for (let d = r - 2; d >= 0; d--) {
      idx[d]++;
      oa += stA[d];
      ob += stB[d];
      if (idx[d] < out[d]) break;
      oa -= stA[d] * out[d];
      ob -= stB[d] * out[d];
      idx[d] = 0;
    }
  }
}

/** y[shape] = scale * broadcast(x): Mean's gradient in one pass. */
function broadcastScale({ inputs, backend, attrs }: KernelArgs): tf.TensorInfo {
  const { x } = inputs;
  const shape = attrs!.shape as number[];
  const scale = attrs!.scale as number;
  const xv = values(backend, x);
  const y = outArray(backend, shape.reduce((p, q) => p * q, 1));
  const st = bstrides(x.shape, shape);
  forEachBroadcast(shape, st, st, (o, ia, _ib, inner, sa) => {
    for (let i = 0; i < inner; i++) y[o + i] = xv[ia + i * sa] * scale;
  });
  return backend.makeTensorInfo(shape, "float32", y);
}

/** 2 * dy * (a - b) with broadcasting of a, b to dy's shape (SquaredDifference's gradient for a). */
function sqdiffGrad({ inputs, backend }: KernelArgs): tf.TensorInfo {
  const { dy, a, b } = inputs;
  const dyv = values(backend, dy), av = values(backend, a), bv = values(backend, b);
  const y = outArray(backend, dyv.length);
  forEachBroadcast(
    dy.shape,
    bstrides(a.shape, dy.shape),
    bstrides(b.shape, dy.shape),
    (o, ia, ib, inner, sa, sb) => {
      for (let i = 0; i < inner; i++) y[o + i] = 2 * dyv[o + i] * (av[ia + i * sa] - bv[ib + i * sb]);
    },
  );
  return backend.makeTensorInfo(dy.shape, "float32", y);
}

/**
 * Tile's gradient: dx[i] = sum of dy over all repetitions of i, in one pass over dy. TF.js builds it from
 * one Slice + Add per repetition (reps = 8*8*... in tfjs-layers' LayerNormalization broadcast: 38k kernel
 * calls and 71% of a ConvNeXt training step).
 */
function tileGrad({ inputs, backend, attrs }: KernelArgs): tf.TensorInfo {
  const { dy } = inputs;
  const xShape = attrs!.xShape as number[];
  const dyv = values(backend, dy);
  const r = xShape.length;
  const dx = new Float64Array(xShape.reduce((p, q) => p * q, 1));
  const out = dy.shape;
  const inner = out[r - 1], xInner = xShape[r - 1];
  const xStr = new Array(r).fill(1);
  for (let d = r - 2; d >= 0; d--) xStr[d] = xStr[d + 1] * xShape[d + 1];
  const idx = new Array(r).fill(0);
  for (let o = 0; o < dyv.length; o += inner) {
    let xo = 0;
    for (let d = 0; d < r - 1; d++) xo += (idx[d] % xShape[d]) * xStr[d];
    if (inner === xInner) { for (let k = 0; k < inner; k++) dx[xo + k] += dyv[o + k]; }
    else for (let k = 0; k < inner; k++) dx[xo + (k % xInner)] += dyv[o + k];
    for (let d = r - 2; d >= 0; d--) {
      if (++idx[d] < out[d]) break;
      idx[d] = 0;
    }
  }
  return backend.makeTensorInfo(xShape, "float32", Float32Array.from(dx));
}

const f32 = (...ts: (tf.Tensor | null | undefined)[]) => ts.every((t) => t == null || t.dtype === "float32");

let wrapped = false;

/**
 * Register the fused gradient kernels for `backendName` and wrap the FusedBatchNorm, Relu, Mean and
 * SquaredDifference gradients to use them while that backend is active (idempotent).
 */
export function registerFusedGrads(backendName: string): void {
  const kernels: [string, (a: KernelArgs) => tf.TensorInfo][] = [
    [BN_GRAD, bnGrad],
    [RELU_GRAD, reluGrad],
    [BROADCAST_SCALE, broadcastScale],
    [SQDIFF_GRAD, sqdiffGrad],
    [TILE_GRAD, tileGrad],
  ];
  registerKernels(backendName, kernels);
  if (wrapped) return;
  wrapped = true;
  const active = () => tf.getBackend() === backendName;
  type GradFunc = (
    dy: tf.Tensor | tf.Tensor[],
    saved: tf.Tensor[],
    attrs: tf.NamedAttrMap,
  ) => Record<string, () => tf.Tensor>;
  const wrap = (kernel: string, fast: (orig: GradFunc) => GradFunc) => {
    const cfg = tf.getGradient(kernel) as unknown as { gradFunc: GradFunc } | undefined;
    if (!cfg) return;
    const orig = cfg.gradFunc;
    cfg.gradFunc = fast(orig);
  };
  const run = runKernel;

  wrap(tf.FusedBatchNorm, (orig) => (dy, saved, attrs) => {
    const [x, mean, variance, scale] = saved;
    const d = dy as tf.Tensor;
    if (
      !active() || x.rank !== 4 || mean.rank !== 1 || variance.rank !== 1 || !f32(x, d, mean, variance, scale)
    ) {
      return orig(dy, saved, attrs);
    }
    if (scale && !(scale.rank === 1 && (scale.size === mean.size || scale.size === 1))) {
      return orig(dy, saved, attrs);
    }
    const get = (which: number) => () => {
      const inputs: Record<string, tf.Tensor> = { x, dy: d, mean, variance };
      if (scale) inputs.scale = scale;
      return run(BN_GRAD, inputs, { varianceEpsilon: attrs.varianceEpsilon, which }) as tf.Tensor;
    };
    return { x: get(0), mean: get(1), variance: get(2), scale: get(3), offset: get(4) };
  });
  wrap(tf.Tile, (orig) => (dy, saved, attrs) => {
    const [x] = saved;
    const d = dy as tf.Tensor;
    if (!active() || x.rank === 0 || !f32(x, d)) return orig(dy, saved, attrs);
    return { x: () => run(TILE_GRAD, { dy: d }, { xShape: x.shape }) as tf.Tensor };
  });
  wrap(tf.Relu, (orig) => (dy, saved, attrs) => {
    const [x] = saved;
    if (!active() || !f32(x, dy as tf.Tensor)) return orig(dy, saved, attrs);
    return { x: () => run(RELU_GRAD, { dy: dy as tf.Tensor, x }) as tf.Tensor };
  });
  wrap(tf.Mean, (orig) => (dy, saved, attrs) => {
    const [x] = saved;
    if (!active() || !f32(x, dy as tf.Tensor)) return orig(dy, saved, attrs);
    const axes = tf.util.parseAxisParam(attrs.axis as number | number[], x.shape);
    const reduceSize = axes.reduce((p, a) => p * x.shape[a], 1);
    const expanded = x.shape.map((s, i) => (axes.includes(i) ? 1 : s));
    return {
      x: () =>
        tf.tidy(() =>
          run(BROADCAST_SCALE, { x: tf.reshape(dy as tf.Tensor, expanded) }, {
            shape: x.shape,
            scale: 1 / reduceSize,
          }) as tf.Tensor
        ),
    };
  });
  wrap(tf.SquaredDifference, (orig) => (dy, saved, attrs) => {
    const [a, b] = saved;
    const d = dy as tf.Tensor;
    if (!active() || !f32(a, b, d)) return orig(dy, saved, attrs);
    return {
      a: () => run(SQDIFF_GRAD, { dy: d, a, b }) as tf.Tensor,
      b: () => run(SQDIFF_GRAD, { dy: d, a: b, b: a }) as tf.Tensor,
    };
  });
}
