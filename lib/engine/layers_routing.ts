/**
 * Routing TF.js-layers to the native engine's fused kernels: the one place the engine changes tfjs-layers, one
 * explicit step of registering the native backend (lib/engine/native.ts `registerNative`).
 *
 * TF.js-layers computes these layers as chains of small ops; on the native backend three layer methods are
 * wrapped so that each calls one fused kernel (with its own registered gradient) instead, and falls back to the
 * original method on any other backend, dtype or configuration:
 * - `BatchNormalization.call` in training mode (last axis, with gamma and beta) -> `FerNativeBatchNormTrain`
 *   (kernels/batchnorm.ts), updating the moving averages exactly as tfjs-layers does;
 * - `LayerNormalization.call` (last axis, scale and center) -> `FerNativeLayerNorm` (kernels/layernorm.ts);
 * - the `swish` (alpha 1) and `gelu` activations' `apply` -> `FerNativeSilu` / `FerNativeGelu`
 *   (kernels/activations.ts).
 * The class prototypes are found through tfjs-core's serialization map (`layersPrototype`), since tfjs-layers
 * does not export the classes.
 */
import * as tf from "@tensorflow/tfjs-core";
// Registers TF.js-layers' classes (into tfjs-core's serialization map) before they are routed.
import "@tensorflow/tfjs-layers";
import { GELU, SILU } from "./kernels/activations.ts";
import { BN_TRAIN } from "./kernels/batchnorm.ts";
import { LN } from "./kernels/layernorm.ts";
import { layersPrototype, runKernel } from "./kernels/types.ts";

const run = runKernel;

/** The parts of TF.js-layers' BatchNormalization the routed `call` uses. */
type BnLayer = {
  axis: number;
  momentum: number;
  epsilon: number;
  gamma: { read(): tf.Variable } | null;
  beta: { read(): tf.Variable } | null;
  movingMean: { read(): tf.Variable; write(v: tf.Tensor): void };
  movingVariance: { read(): tf.Variable; write(v: tf.Tensor): void };
};
type BnCall = (this: BnLayer, inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>) => tf.Tensor;

/** The parts of TF.js-layers' LayerNormalization the routed `call` uses. */
type LnLayer = {
  axis: number[];
  epsilon: number;
  scale: boolean;
  center: boolean;
  gamma: { read(): tf.Variable } | null;
  beta: { read(): tf.Variable } | null;
};
type LnCall = (this: LnLayer, inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>) => tf.Tensor;

let routed = false;

/** Wraps the layer methods listed in the module doc to use `backendName`'s fused kernels (idempotent). */
export function routeLayersToKernels(backendName: string): void {
  if (routed) return;
  routed = true;
  routeBatchNorm(backendName);
  routeLayerNorm(backendName);
  routeActivations(backendName);
}

function routeBatchNorm(backendName: string): void {
  const proto = layersPrototype<{ call: BnCall }>("BatchNormalization");
  const orig = proto.call;
  proto.call = function (this: BnLayer, inputs, kwargs) {
    const x = Array.isArray(inputs) ? inputs[0] : inputs;
    const fast = kwargs?.training === true && tf.getBackend() === backendName && x.dtype === "float32" &&
      x.rank >= 2 && (this.axis === -1 || this.axis === x.rank - 1) && this.gamma !== null &&
      this.beta !== null && (!Array.isArray(inputs) || inputs.length === 1);
    if (!fast) return orig.call(this, inputs, kwargs);
    return tf.tidy(() => {
      const [y, mean, variance] = run(
        BN_TRAIN,
        { x, gamma: this.gamma!.read(), beta: this.beta!.read() },
        { varianceEpsilon: this.epsilon },
      ) as tf.Tensor[];
      // TF.js-layers' update: v <- v - (v - batch_stat) * (1 - momentum).
      for (const [v, stat] of [[this.movingMean, mean], [this.movingVariance, variance]] as const) {
        tf.tidy(() => {
          const old = v.read();
          v.write(tf.sub(old, tf.mul(tf.sub(old, stat), 1 - this.momentum)));
        });
      }
      return y;
    });
  };
}

function routeLayerNorm(backendName: string): void {
  const proto = layersPrototype<{ call: LnCall }>("LayerNormalization");
  const orig = proto.call;
  proto.call = function (this: LnLayer, inputs, kwargs) {
    const x = Array.isArray(inputs) ? inputs[0] : inputs;
    const fast = tf.getBackend() === backendName && x.dtype === "float32" && x.rank >= 1 &&
      this.axis.length === 1 && this.axis[0] === x.rank - 1 && this.scale && this.center &&
      this.gamma !== null && this.beta !== null && (!Array.isArray(inputs) || inputs.length === 1);
    if (!fast) return orig.call(this, inputs, kwargs);
    return run(LN, { x, gamma: this.gamma!.read(), beta: this.beta!.read() }, {
      epsilon: this.epsilon,
    }) as tf.Tensor;
  };
}

function routeActivations(backendName: string): void {
  const active = (x: tf.Tensor) => tf.getBackend() === backendName && x.dtype === "float32";
  const patch = (className: string, kernel: string, ok: (alpha?: number) => boolean) => {
    const proto = layersPrototype<{ apply: (x: tf.Tensor, alpha?: number) => tf.Tensor }>(className);
    const orig = proto.apply;
    proto.apply = function (this: unknown, x: tf.Tensor, alpha?: number) {
      return active(x) && ok(alpha) ? run(kernel, { x }) as tf.Tensor : orig.call(this, x, alpha);
    };
  };
  patch("swish", SILU, (alpha) => alpha === undefined || alpha === 1);
  patch("gelu", GELU, () => true);
}
