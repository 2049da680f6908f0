/** Types and helpers shared by the `native` backend's kernel modules. */
import * as tf from "@tensorflow/tfjs-core";
import type { MathBackendCPU } from "@tensorflow/tfjs-backend-cpu";

/** What TF.js passes a kernel function on a cpu-family backend. */
export type KernelArgs = {
  inputs: Record<string, tf.TensorInfo>;
  backend: MathBackendCPU;
  attrs?: Record<string, unknown>;
};

/** A kernel function. */
export type KernelFn = (args: KernelArgs) => tf.TensorInfo | tf.TensorInfo[];

/** The float32 values of a tensor the caller knows is float32 (kernels registered for float32 inputs). */
export function values(b: MathBackendCPU, t: tf.TensorInfo): Float32Array {
  return b.data.get(t.dataId).values as Float32Array;
}

/** Register `kernels` (name, function) on `backendName`, skipping names already registered there. */
export function registerKernels(
  backendName: string,
  kernels: readonly (readonly [string, (a: KernelArgs) => tf.TensorInfo | tf.TensorInfo[]])[],
): void {
  for (const [name, fn] of kernels) {
    if (!tf.getKernel(name, backendName)) {
      tf.registerKernel({ kernelName: name, backendName, kernelFunc: fn as unknown as tf.KernelFunc });
    }
  }
}

/** Run a (custom) kernel by name on the active backend, recorded for autodiff like any op. */
export function runKernel(
  name: string,
  inputs: Record<string, tf.Tensor>,
  attrs: Record<string, unknown> = {},
): tf.Tensor | tf.Tensor[] {
  return tf.engine().runKernel(name, inputs as unknown as tf.NamedTensorMap, attrs as tf.NamedAttrMap);
}

/**
 * The prototype of a TF.js-layers class registered under `className` (layers and activations register in
 * tfjs-core's serialization map when tfjs-layers is imported); the engine wraps methods on it.
 */
export function layersPrototype<P>(className: string): P {
  const entry =
    (tf.serialization.SerializationMap.getMap().classNameMap as Record<string, [unknown, unknown]>)[
      className
    ] as [{ prototype: P }, unknown] | undefined;
  if (!entry) throw new Error(`native engine: TF.js-layers has no '${className}' class to route`);
  return entry[0].prototype;
}

/**
 * dgamma / dbeta of a normalization computed together with dx, kept (keyed by dy's data) for the separate
 * dgamma and dbeta gradient kernels of the same backward pass to take instead of recomputing them.
 */
export class ParamGrads {
  #pending = new WeakMap<object, { x: object; dgamma: Float32Array; dbeta: Float32Array }>();

  /** The stored dgamma (which 1) or dbeta (2) for this x and dy, or null. */
  take(backend: MathBackendCPU, x: tf.TensorInfo, dy: tf.TensorInfo, which: number): tf.TensorInfo | null {
    const done = this.#pending.get(dy.dataId);
    if (which === 0 || !done || done.x !== x.dataId) return null;
    const v = which === 1 ? done.dgamma : done.dbeta;
    return backend.makeTensorInfo([v.length], "float32", v.slice());
  }

  /** Store dgamma / dbeta and return the output `which` asks for (0 dx, 1 dgamma, 2 dbeta). */
  give(
    backend: MathBackendCPU,
    x: tf.TensorInfo,
    dy: tf.TensorInfo,
    which: number,
    r: { dx: Float32Array; dgamma: Float32Array; dbeta: Float32Array },
  ): tf.TensorInfo {
    this.#pending.set(dy.dataId, { x: x.dataId, dgamma: r.dgamma, dbeta: r.dbeta });
    if (which === 0) return backend.makeTensorInfo(x.shape, "float32", r.dx);
    const v = which === 1 ? r.dgamma : r.dbeta;
    return backend.makeTensorInfo([v.length], "float32", v.slice());
  }
}
