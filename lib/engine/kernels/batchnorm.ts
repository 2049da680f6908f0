/**
 * Training-mode batch normalization as one forward and one backward kernel for the `native` backend.
 *
 * TF.js-layers' BatchNormalization computes, in training, `tf.moments` (Mean, SquaredDifference, Mean) and a
 * FusedBatchNorm, and updates its moving statistics; autodiff then differentiates through the moments too.
 * Even with the per-op gradients fused (grads.ts) that is ~12 kernels and as many full-size passes per BN
 * layer per step. Here the forward is one kernel returning [y, mean, variance] (batch statistics, biased
 * variance, exactly TF.js's), and its gradient is the closed form
 *   dbeta = sum(dy), dgamma = sum(dy * xhat), dx = gamma * rsqrt(var + eps) / M * (M*dy - dbeta - xhat*dgamma)
 * over the M = N*H*W positions of each channel.
 *
 * Both run on oneDNN's batch-normalization primitives (vectorized, multi-threaded) when libdnnl is loaded, and
 * as JS loops otherwise.
 *
 * The layer keeps TF.js-layers' class and weights (checkpoints unchanged): its `call` is routed
 * (lib/engine/layers_routing.ts) so that in
 * training, on the native backend, with channels last, it runs the fused kernel and applies the same
 * moving-average update as TF.js-layers; every other case runs the original `call`.
 */
import * as tf from "@tensorflow/tfjs-core";
import { activeDnnl } from "../dnnl.ts";
import { type KernelArgs, ParamGrads, registerKernels, runKernel, values } from "./types.ts";
import { allocOn, outArray } from "../pool.ts";

/** Fused training batch-norm kernel name (outputs y, batch mean, batch variance). */
export const BN_TRAIN = "FerNativeBatchNormTrain";
const BN_TRAIN_GRAD = "FerNativeBatchNormTrainGrad";

/** Per-channel mean and biased variance of NHWC-flattened `x` with C channels (two passes, float64 sums). */
function moments(x: Float32Array, c: number): { mean: Float64Array; variance: Float64Array } {
  const m = x.length / c;
  const mean = new Float64Array(c), variance = new Float64Array(c);
  for (let i = 0; i < x.length; i += c) for (let k = 0; k < c; k++) mean[k] += x[i + k];
  for (let k = 0; k < c; k++) mean[k] /= m;
  for (let i = 0; i < x.length; i += c) {
    for (let k = 0; k < c; k++) {
      const d = x[i + k] - mean[k];
      variance[k] += d * d;
    }
  }
  for (let k = 0; k < c; k++) variance[k] /= m;
  return { mean, variance };
}

function bnTrain({ inputs, backend, attrs }: KernelArgs): tf.TensorInfo[] {
  const { x, gamma, beta } = inputs;
  const xv = values(backend, x), g = values(backend, gamma), b = values(backend, beta);
  const c = x.shape[x.shape.length - 1];
  const eps = attrs!.varianceEpsilon as number;
  const alloc = allocOn(backend);
  const fast = activeDnnl()?.batchNorm(xv, x.shape, g, b, eps, alloc);
  if (fast) {
    return [
      backend.makeTensorInfo(x.shape, "float32", fast.y),
      backend.makeTensorInfo([c], "float32", fast.mean),
      backend.makeTensorInfo([c], "float32", fast.variance),
    ];
  }
  const { mean, variance } = moments(xv, c);
  const f = new Float32Array(c), o = new Float32Array(c);
  for (let k = 0; k < c; k++) {
    f[k] = g[k] / Math.sqrt(variance[k] + eps);
    o[k] = b[k] - mean[k] * f[k];
  }
  const y = alloc(xv.length);
  for (let i = 0; i < xv.length; i += c) for (let k = 0; k < c; k++) y[i + k] = xv[i + k] * f[k] + o[k];
  return [
    backend.makeTensorInfo(x.shape, "float32", y),
    backend.makeTensorInfo([c], "float32", Float32Array.from(mean)),
    backend.makeTensorInfo([c], "float32", Float32Array.from(variance)),
  ];
}

const paramGrads = new ParamGrads();

/** dx (which 0), dgamma (1) or dbeta (2); one call computes all three, the other two calls take theirs. */
function bnTrainGrad({ inputs, backend, attrs }: KernelArgs): tf.TensorInfo {
  const { x, dy, mean, variance, gamma } = inputs;
  const xv = values(backend, x), dyv = values(backend, dy);
  const mv = values(backend, mean), vv = values(backend, variance), g = values(backend, gamma);
  const c = mv.length;
  const eps = attrs!.varianceEpsilon as number;
  const which = attrs!.which as number;
  const stored = paramGrads.take(backend, x, dy, which);
  if (stored) return stored;
  const fast = activeDnnl()?.batchNormBackward(xv, x.shape, dyv, mv, vv, g, eps, allocOn(backend));
  if (fast) return paramGrads.give(backend, x, dy, which, fast);
  const inv = new Float64Array(c);
  for (let k = 0; k < c; k++) inv[k] = 1 / Math.sqrt(vv[k] + eps);
  const sdy = new Float64Array(c), sdyx = new Float64Array(c);
  for (let i = 0; i < xv.length; i += c) {
    for (let k = 0; k < c; k++) {
      const d = dyv[i + k];
      sdy[k] += d;
      sdyx[k] += d * (xv[i + k] - mv[k]);
    }
  }
  const dgamma = new Float32Array(c);
  for (let k = 0; k < c; k++) dgamma[k] = sdyx[k] * inv[k];
  // dx = a*dy + b*x + d per channel, with a = gamma*inv, b = -a*inv^2*sdyx/M, d = -a*sdy/M - b*mean.
  const m = xv.length / c;
  const a = new Float32Array(c), bb = new Float32Array(c), d = new Float32Array(c);
  for (let k = 0; k < c; k++) {
    const ak = g[k] * inv[k];
    const bk = -ak * inv[k] * inv[k] * sdyx[k] / m;
    a[k] = ak;
    bb[k] = bk;
    d[k] = -ak * sdy[k] / m - bk * mv[k];
  }
  const dx = outArray(backend, xv.length);
  for (let i = 0; i < xv.length; i += c) {
    for (let k = 0; k < c; k++) dx[i + k] = a[k] * dyv[i + k] + bb[k] * xv[i + k] + d[k];
  }
  return paramGrads.give(backend, x, dy, which, { dx, dgamma, dbeta: Float32Array.from(sdy) });
}

let wrapped = false;

/** Register the fused training batch norm and its gradient on `backendName` (idempotent). */
export function registerBatchNorm(backendName: string): void {
  registerKernels(backendName, [[BN_TRAIN, bnTrain], [BN_TRAIN_GRAD, bnTrainGrad]]);
  if (wrapped) return;
  wrapped = true;
  const run = runKernel;
  tf.registerGradient({
    kernelName: BN_TRAIN,
    inputsToSave: ["x", "gamma"],
    outputsToSave: [false, true, true],
    // Only y carries a gradient: mean and variance feed the moving averages, which are not differentiated.
    gradFunc: (dy, saved, attrs) => {
      const [x, gamma, mean, variance] = saved;
      const d = (Array.isArray(dy) ? dy[0] : dy) as tf.Tensor;
      const get = (which: number) => () =>
        run(BN_TRAIN_GRAD, { x, dy: d, mean, variance, gamma }, {
          varianceEpsilon: attrs.varianceEpsilon,
          which,
        }) as tf.Tensor;
      return { x: get(0), gamma: get(1), beta: get(2) };
    },
  });
}
