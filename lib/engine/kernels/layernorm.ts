/**
 * Layer normalization over the last axis as one forward and one backward kernel for the `native` backend.
 *
 * TF.js-layers' LayerNormalization computes moments, tiles mean / variance / gamma / beta to the input's full
 * shape (a workaround noted in its source) and calls batchNormalization; autodiff then runs through every one
 * of those ops. ConvNeXt normalizes in each block, so at 48 px these ops (Multiply, Add, Sub, Rsqrt, Tile
 * gradients, Sum) were ~40% of its training step. Here the forward is one pass per row and the gradient the
 * closed form, per row of C values with xhat = (x - mean) * rstd and g = dy * gamma:
 *   dx = rstd * (g - mean(g) - xhat * mean(g * xhat)),  dgamma = sum_rows(dy * xhat),  dbeta = sum_rows(dy).
 *
 * Both run on oneDNN's layer-normalization primitives (vectorized, multi-threaded; float32 statistics) when
 * libdnnl is loaded, and as the JS loops below (float64 statistics) otherwise.
 *
 * As for batch norm (batchnorm.ts), the layer class and weights stay TF.js-layers' own; its `call` is routed
 * (lib/engine/layers_routing.ts)
 * to use the kernel on the native backend (float32, normalized over the last axis only, with scale and
 * center) and runs unchanged otherwise.
 */
import * as tf from "@tensorflow/tfjs-core";
import { activeDnnl } from "../dnnl.ts";
import { type KernelArgs, ParamGrads, registerKernels, runKernel, values } from "./types.ts";
import { allocOn, outArray } from "../pool.ts";

/** Fused layer-norm kernel name. */
export const LN = "FerNativeLayerNorm";
const LN_GRAD = "FerNativeLayerNormGrad";

/** Mean and 1/sqrt(var + eps) of x[o .. o + c) (two passes, float64). */
function rowStats(x: Float32Array, o: number, c: number, eps: number): [number, number] {
  let m = 0;
  for (let j = 0; j < c; j++) m += x[o + j];
  m /= c;
  let v = 0;
  for (let j = 0; j < c; j++) {
    const d = x[o + j] - m;
    v += d * d;
  }
  return [m, 1 / Math.sqrt(v / c + eps)];
}

function layerNorm({ inputs, backend, attrs }: KernelArgs): tf.TensorInfo {
  const { x, gamma, beta } = inputs;
  const xv = values(backend, x), g = values(backend, gamma), b = values(backend, beta);
  const c = g.length, eps = attrs!.epsilon as number;
  const fast = activeDnnl()?.layerNorm(xv, c, g, b, eps, allocOn(backend));
  if (fast) return backend.makeTensorInfo(x.shape, "float32", fast);
  const y = outArray(backend, xv.length);
  for (let o = 0; o < xv.length; o += c) {
    const [m, r] = rowStats(xv, o, c, eps);
    for (let j = 0; j < c; j++) y[o + j] = (xv[o + j] - m) * r * g[j] + b[j];
  }
  return backend.makeTensorInfo(x.shape, "float32", y);
}

const paramGrads = new ParamGrads();

/** dx (which 0), dgamma (1) or dbeta (2); one pass computes all three. */
function layerNormGrad({ inputs, backend, attrs }: KernelArgs): tf.TensorInfo {
  const { x, dy, gamma } = inputs;
  const which = attrs!.which as number;
  const c = gamma.shape[0];
  const stored = paramGrads.take(backend, x, dy, which);
  if (stored) return stored;
  const xv = values(backend, x), dyv = values(backend, dy), g = values(backend, gamma);
  const eps = attrs!.epsilon as number;
  const fast = activeDnnl()?.layerNormBackward(xv, c, dyv, g, eps, allocOn(backend));
  if (fast) return paramGrads.give(backend, x, dy, which, fast);
  const dx = outArray(backend, xv.length);
  const dg = new Float64Array(c), db = new Float64Array(c);
  for (let o = 0; o < xv.length; o += c) {
    const [m, r] = rowStats(xv, o, c, eps);
    let s1 = 0, s2 = 0;
    for (let j = 0; j < c; j++) {
      const xh = (xv[o + j] - m) * r, d = dyv[o + j], gj = d * g[j];
      s1 += gj;
      s2 += gj * xh;
      dg[j] += d * xh;
      db[j] += d;
    }
    s1 /= c;
    s2 /= c;
    for (let j = 0; j < c; j++) {
      const xh = (xv[o + j] - m) * r;
      dx[o + j] = r * (dyv[o + j] * g[j] - s1 - xh * s2);
    }
  }
  return paramGrads.give(backend, x, dy, which, {
    dx,
    dgamma: Float32Array.from(dg),
    dbeta: Float32Array.from(db),
  });
}

let wrapped = false;

/** Register the fused layer norm and its gradient on `backendName` (idempotent). */
export function registerLayerNorm(backendName: string): void {
  registerKernels(backendName, [[LN, layerNorm], [LN_GRAD, layerNormGrad]]);
  if (wrapped) return;
  wrapped = true;
  const run = (name: string, inputs: Record<string, tf.Tensor>, attrs: Record<string, unknown>) =>
    runKernel(name, inputs, attrs) as tf.Tensor;
  tf.registerGradient({
    kernelName: LN,
    inputsToSave: ["x", "gamma"],
    gradFunc: (dy, saved, attrs) => {
      const [x, gamma] = saved;
      const get = (which: number) => () =>
        run(LN_GRAD, { x, dy: dy as tf.Tensor, gamma }, { epsilon: attrs.epsilon, which });
      return { x: get(0), gamma: get(1), beta: get(2) };
    },
  });
}
