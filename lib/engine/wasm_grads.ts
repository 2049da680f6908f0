/**
 * Gradient kernels the TF.js `wasm` backend lacks (Conv2DBackpropFilter, the depthwise backprops, ...),
 * implemented in JS on the tensor data so that networks can train on `wasm` when OpenBLAS is absent.
 * They reuse the convolution code of the native engine with the JS GEMM; data moves through the wasm
 * backend's own readSync / makeOutput, so no wasm internals are touched.
 */
import * as tf from "@tensorflow/tfjs-core";
import type { MathBackendCPU } from "@tensorflow/tfjs-backend-cpu";
import { jsGemm } from "./kernels/gemm.ts";
import { convKernels, matmulKernels } from "./native.ts";

type WasmLike = {
  readSync(dataId: unknown): unknown;
  makeOutput(shape: number[], dtype: string, memoryOffset?: number, values?: unknown): tf.TensorInfo;
};
type KernelArgs = {
  inputs: Record<string, tf.TensorInfo>;
  backend: unknown;
  attrs?: Record<string, unknown>;
};

/** Kernels registered by {@link registerWasmGrads} (those `cpu` has and `wasm` lacks, among ours). */
export const WASM_GRAD_KERNELS = [
  tf.Conv2DBackpropFilter,
  tf.DepthwiseConv2dNativeBackpropFilter,
  tf.DepthwiseConv2dNativeBackpropInput,
];

/** Expose a wasm backend through the two MathBackendCPU members the shared kernels use. */
function adapt(b: WasmLike): MathBackendCPU {
  return {
    data: { get: (id: unknown) => ({ values: b.readSync(id) }) },
    makeTensorInfo: (shape: number[], dtype: string, values: unknown) =>
      b.makeOutput(shape, dtype, undefined, values),
  } as unknown as MathBackendCPU;
}

/**
 * Register the missing gradient kernels for backend `wasm` (idempotent; call after the wasm backend package
 * is imported). Returns the kernel names registered by this call.
 */
export function registerWasmGrads(): string[] {
  const noFallback = (name: string) => () => {
    throw new Error(`wasm engine: ${name} case not supported by the JS gradient kernels`);
  };
  const ours = { ...convKernels(jsGemm, noFallback), ...matmulKernels(jsGemm, noFallback) };
  const added: string[] = [];
  for (const name of WASM_GRAD_KERNELS) {
    if (tf.getKernel(name, "wasm")) continue;
    const fn = ours[name];
    tf.registerKernel({
      kernelName: name,
      backendName: "wasm",
      kernelFunc: ((args: KernelArgs) =>
        fn({ ...args, backend: adapt(args.backend as WasmLike) })) as unknown as tf.KernelFunc,
    });
    added.push(name);
  }
  return added;
}
