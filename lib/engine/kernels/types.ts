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
