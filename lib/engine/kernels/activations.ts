/**
 * One-pass SiLU (swish) and exact GELU for the `native` backend. TF.js-layers composes swish as
 * `mul(sigmoid(mul(x, alpha)), x)` and GELU as `mul(x, mul(0.5, add(1, erf(div(x, sqrt 2)))))`; their
 * gradients add five to eight more full-size element-wise ops, and in EfficientNet-B3 at 48 px these ops were
 * ~30% of a training step. Here each activation is one kernel forward and one backward: oneDNN's
 * vectorized, multi-threaded element-wise primitive when loaded, else a JS loop.
 *
 * The models keep TF.js-layers' standard `swish` / `gelu` activations (checkpoints stay plain TF.js): their
 * `apply` is routed to the fused kernel while the native backend is active (lib/engine/layers_routing.ts), and
 * otherwise the original composition runs unchanged.
 */
import * as tf from "@tensorflow/tfjs-core";
import { activeDnnl, type EltwiseAlg } from "../dnnl.ts";
import { type KernelArgs, registerKernels, runKernel, values } from "./types.ts";
import { allocOn } from "../pool.ts";

/** Fused SiLU (swish) kernel name. */
export const SILU = "FerNativeSilu";
const SILU_GRAD = "FerNativeSiluGrad";
/** Fused exact GELU kernel name. */
export const GELU = "FerNativeGelu";
const GELU_GRAD = "FerNativeGeluGrad";

/** erf by Abramowitz-Stegun 7.1.26, the formula and constants of TF.js's cpu Erf kernel. */
function erf(x: number): number {
  const { ERF_P: p, ERF_A1: a1, ERF_A2: a2, ERF_A3: a3, ERF_A4: a4, ERF_A5: a5 } = tf.backend_util;
  const v = Math.abs(x);
  const t = 1.0 / (1.0 + p * v);
  return Math.sign(x) * (1.0 - (((((a5 * t + a4) * t) + a3) * t + a2) * t + a1) * t * Math.exp(-v * v));
}

function unary(alg: EltwiseAlg, f: (x: Float32Array, y: Float32Array) => void) {
  return ({ inputs, backend }: KernelArgs): tf.TensorInfo => {
    const x = values(backend, inputs.x);
    const alloc = allocOn(backend);
    const fast = activeDnnl()?.eltwise(alg, x, alloc);
    if (fast) return backend.makeTensorInfo(inputs.x.shape, "float32", fast);
    const y = alloc(x.length);
    f(x, y);
    return backend.makeTensorInfo(inputs.x.shape, "float32", y);
  };
}

function grad(alg: EltwiseAlg, f: (x: Float32Array, dy: Float32Array, dx: Float32Array) => void) {
  return ({ inputs, backend }: KernelArgs): tf.TensorInfo => {
    const x = values(backend, inputs.x), dy = values(backend, inputs.dy);
    const alloc = allocOn(backend);
    const fast = activeDnnl()?.eltwiseBackward(alg, x, dy, alloc);
    if (fast) return backend.makeTensorInfo(inputs.x.shape, "float32", fast);
    const dx = alloc(x.length);
    f(x, dy, dx);
    return backend.makeTensorInfo(inputs.x.shape, "float32", dx);
  };
}

const INV_SQRT2 = Math.SQRT1_2;
const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);

const KERNELS: [string, (a: KernelArgs) => tf.TensorInfo][] = [
  [
    SILU,
    unary("swish", (x, y) => {
      for (let i = 0; i < x.length; i++) y[i] = x[i] / (1 + Math.exp(-x[i]));
    }),
  ],
  // d/dx x*s(x) = s + x*s*(1-s)
  [
    SILU_GRAD,
    grad("swish", (x, dy, dx) => {
      for (let i = 0; i < x.length; i++) {
        const s = 1 / (1 + Math.exp(-x[i]));
        dx[i] = dy[i] * s * (1 + x[i] * (1 - s));
      }
    }),
  ],
  [
    GELU,
    unary("gelu_erf", (x, y) => {
      for (let i = 0; i < x.length; i++) y[i] = 0.5 * x[i] * (1 + erf(x[i] * INV_SQRT2));
    }),
  ],
  // d/dx x*Phi(x) = Phi(x) + x*phi(x)
  [
    GELU_GRAD,
    grad("gelu_erf", (x, dy, dx) => {
      for (let i = 0; i < x.length; i++) {
        const xi = x[i];
        dx[i] = dy[i] * (0.5 * (1 + erf(xi * INV_SQRT2)) + xi * INV_SQRT_2PI * Math.exp(-0.5 * xi * xi));
      }
    }),
  ],
];

let wrapped = false;

/** Register the fused activation kernels and their gradients on `backendName` (idempotent). */
export function registerActivations(backendName: string): void {
  registerKernels(backendName, KERNELS);
  if (wrapped) return;
  wrapped = true;
  const run = (name: string, inputs: Record<string, tf.Tensor>) => runKernel(name, inputs) as tf.Tensor;
  for (const [fwd, bwd] of [[SILU, SILU_GRAD], [GELU, GELU_GRAD]]) {
    tf.registerGradient({
      kernelName: fwd,
      inputsToSave: ["x"],
      gradFunc: (dy, saved) => ({ x: () => run(bwd, { x: saved[0], dy: dy as tf.Tensor }) }),
    });
  }
}
