/**
 * The `native` TF.js backend: the cpu backend's class and data handling, every cpu kernel copied over, and
 * the kernels that dominate training replaced through Deno FFI:
 * - convolutions (dense, depthwise; forward and both gradients) on oneDNN 2.x (dnnl.ts) when libdnnl is
 *   present, else lowered to OpenBLAS SGEMM (kernels/conv.ts); matmuls on OpenBLAS;
 * - training batch norm, ReLU / sigmoid / SiLU / GELU and their gradients as single kernels on oneDNN
 *   primitives, else JS loops (kernels/batchnorm.ts, activations.ts, grads.ts);
 * - tuned JS for the rest that profiling showed: broadcasting element-wise ops, reductions, Tile, pooling,
 *   Slice / PadV2 / Transpose, layer norm, fused gradients (kernels/elementwise.ts, layout.ts, layernorm.ts).
 *
 * Reusing MathBackendCPU (instead of writing a backend from scratch) keeps every op TF.js supports working,
 * keeps tensor storage as plain typed arrays (which FFI can pass without copies), and lets each override
 * fall back to the original cpu kernel for cases it does not handle (NCHW, int dtypes, PReLU...).
 */
import * as tf from "@tensorflow/tfjs-core";
import { MathBackendCPU } from "@tensorflow/tfjs-backend-cpu";
import { type Blas, openBlas } from "./blas.ts";
import { activeDnnl, type Dnnl, type DnnlGeom, openDnnl, setDnnlEnabled } from "./dnnl.ts";
import type { Alloc } from "./dnnl/core.ts";
import type { Gemm } from "./kernels/gemm.ts";
import { extraKernels } from "./kernels/elementwise.ts";
import { depthwiseFilterWasm } from "./wasm/depthwise.ts";
import { layoutKernels } from "./kernels/layout.ts";
import { registerActivations } from "./kernels/activations.ts";
import { registerBatchNorm } from "./kernels/batchnorm.ts";
import { registerLayerNorm } from "./kernels/layernorm.ts";
import { routeLayersToKernels } from "./layers_routing.ts";
import { registerFusedGrads } from "./kernels/grads.ts";
import {
  conv2d,
  conv2dBackpropFilter,
  conv2dBackpropInput,
  type ConvGeom,
  depthwiseBackpropFilter,
  depthwiseBackpropInput,
  depthwiseConv2d,
} from "./kernels/conv.ts";
import { type KernelFn } from "./kernels/types.ts";
import { allocOn, BufferPool, outArray, zeroArray } from "./pool.ts";

/** Name the backend is registered under. */
export const NATIVE = "native";

/**
 * Backend class: the cpu backend's storage and kernels, plus a {@link BufferPool} from which the native kernels
 * take their outputs; the arrays of disposed tensors go back to it, and any array user code reads (`dataSync`,
 * `data`, `bufferSync`) leaves it for good (see pool.ts).
 */
export class NativeBackend extends MathBackendCPU {
  readonly pool = new BufferPool();

  override write(values: tf.backend_util.BackendValues, shape: number[], dtype: tf.DataType): tf.DataId {
    this.pool.held(values);
    return super.write(values, shape, dtype);
  }

  override move(
    dataId: tf.DataId,
    values: tf.backend_util.BackendValues,
    shape: number[],
    dtype: tf.DataType,
    refCount: number,
  ): void {
    this.pool.held(values);
    super.move(dataId, values, shape, dtype, refCount);
  }

  override readSync(dataId: tf.DataId): tf.backend_util.BackendValues {
    this.pool.escape(this.data.get(dataId)?.values);
    return super.readSync(dataId);
  }

  override disposeData(dataId: tf.DataId, force = false): boolean {
    const values = this.data.get(dataId)?.values;
    const gone = super.disposeData(dataId, force);
    if (gone && values && !this.data.has(dataId)) this.pool.release(values);
    return gone;
  }

  override dispose(): void {
    this.pool.clear();
    super.dispose();
  }
}

/** Float32 values of a tensor held by a cpu-family backend, or null when not float32. */
export function f32(backend: MathBackendCPU, t: tf.TensorInfo): Float32Array | null {
  if (t.dtype !== "float32") return null;
  const v = backend.data.get(t.dataId).values;
  return v instanceof Float32Array ? v : null;
}

/** Activations {@link applyBiasActivation} applies after a convolution or matmul (others use the cpu kernel). */
const FUSABLE = ["linear", "relu", "relu6", "leakyrelu", "sigmoid", "elu", undefined];

/** Apply bias (channels-last, [C] or scalar) and a fused activation in place; false if unsupported. */
export function applyBiasActivation(
  y: Float32Array,
  channels: number,
  bias: Float32Array | null,
  activation: string | undefined,
  leakyAlpha = 0.2,
): boolean {
  const act = activation ?? "linear";
  if (!FUSABLE.includes(act)) return false;
  if (bias && bias.length !== channels && bias.length !== 1) return false;
  const n = y.length;
  // Per-channel bias in place on oneDNN (bit for bit the loop below; see dnnl/binary.ts) for large outputs.
  if (
    bias && bias.length === channels && n >= 16384 &&
    activeDnnl()?.binary("add", y, [n / channels, channels], bias, [1, channels], () => y)
  ) {
    bias = null;
  }
  if (bias) {
    if (bias.length === 1) {
      const b = bias[0];
      for (let i = 0; i < n; i++) y[i] += b;
    } else {
      for (let i = 0; i < n; i += channels) for (let c = 0; c < channels; c++) y[i + c] += bias[c];
    }
  }
  switch (act) {
    case "relu":
      for (let i = 0; i < n; i++) if (y[i] < 0) y[i] = 0;
      break;
    case "relu6":
      for (let i = 0; i < n; i++) y[i] = y[i] < 0 ? 0 : y[i] > 6 ? 6 : y[i];
      break;
    case "leakyrelu":
      for (let i = 0; i < n; i++) if (y[i] < 0) y[i] *= leakyAlpha;
      break;
    case "sigmoid":
      for (let i = 0; i < n; i++) y[i] = 1 / (1 + Math.exp(-y[i]));
      break;
    case "elu":
      for (let i = 0; i < n; i++) if (y[i] < 0) y[i] = Math.exp(y[i]) - 1;
      break;
  }
  return true;
}

function geom(
  xShape: number[],
  filterShape: number[],
  attrs: Record<string, unknown>,
  depthwise: boolean,
): (ConvGeom & DnnlGeom) | null {
  const fmt = attrs.dataFormat as string | undefined;
  if (fmt && fmt !== "NHWC" && fmt !== "channelsLast") return null;
  const info = tf.backend_util.computeConv2DInfo(
    xShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    attrs.strides as [number, number] | number,
    (attrs.dilations ?? 1) as [number, number] | number,
    attrs.pad as "same" | "valid",
    attrs.dimRoundingMode as "floor" | "round" | "ceil" | undefined,
    depthwise,
  );
  return info;
}

/** The compute functions of one convolution family; `mult` is the depthwise channel multiplier. */
type ConvOps = {
  forward(x: Float32Array, w: Float32Array, g: ConvGeom & DnnlGeom, mult: number, alloc: Alloc): Float32Array;
  backInput(
    dy: Float32Array,
    w: Float32Array,
    g: ConvGeom & DnnlGeom,
    mult: number,
    alloc: Alloc,
  ): Float32Array;
  backFilter(
    x: Float32Array,
    dy: Float32Array,
    g: ConvGeom & DnnlGeom,
    mult: number,
    alloc: Alloc,
  ): Float32Array;
};

/**
 * The forward, fused-forward (bias + activation), input-gradient and filter-gradient kernels of one
 * convolution family (dense or depthwise), each falling back to the cpu kernel `orig(name)` for cases it
 * does not handle (NCHW, non-float32, unsupported fused activation or bias shape).
 */
function convFamily(
  depthwise: boolean,
  names: { forward: string; fused: string; backInput: string; backFilter: string },
  ops: ConvOps,
  orig: (name: string) => KernelFn,
): Record<string, KernelFn> {
  const outShape = (g: ConvGeom) => [g.batchSize, g.outHeight, g.outWidth, g.outChannels];
  const forward: KernelFn = (args) => {
    const { x, filter } = args.inputs;
    const b = args.backend;
    const g = geom(x.shape, filter.shape, args.attrs ?? {}, depthwise);
    const xv = f32(b, x), wv = f32(b, filter);
    if (!g || !xv || !wv) return orig(names.forward)(args);
    return b.makeTensorInfo(outShape(g), "float32", ops.forward(xv, wv, g, filter.shape[3], allocOn(b)));
  };
  const fused: KernelFn = (args) => {
    const { x, filter, bias } = args.inputs;
    const attrs = args.attrs ?? {};
    const b = args.backend;
    const g = geom(x.shape, filter.shape, attrs, depthwise);
    const xv = f32(b, x), wv = f32(b, filter), bv = bias ? f32(b, bias) : null;
    const act = attrs.activation as string | undefined;
    if (!g || !xv || !wv || (bias && !bv) || !FUSABLE.includes(act)) return orig(names.fused)(args);
    const y = ops.forward(xv, wv, g, filter.shape[3], allocOn(b));
    if (!applyBiasActivation(y, g.outChannels, bv, act, attrs.leakyreluAlpha as number)) {
      return orig(names.fused)(args);
    }
    return b.makeTensorInfo(outShape(g), "float32", y);
  };
  const backInput: KernelFn = (args) => {
    const { dy, filter } = args.inputs;
    const b = args.backend;
    const attrs = args.attrs ?? {};
    const inputShape = attrs.inputShape as number[];
    const g = geom(inputShape, filter.shape, attrs, depthwise);
    const dyv = f32(b, dy), wv = f32(b, filter);
    if (!g || !dyv || !wv) return orig(names.backInput)(args);
    return b.makeTensorInfo(inputShape, "float32", ops.backInput(dyv, wv, g, filter.shape[3], allocOn(b)));
  };
  const backFilter: KernelFn = (args) => {
    const { x, dy } = args.inputs;
    const b = args.backend;
    const attrs = args.attrs ?? {};
    const filterShape = attrs.filterShape as number[];
    const g = geom(x.shape, filterShape, attrs, depthwise);
    const xv = f32(b, x), dyv = f32(b, dy);
    if (!g || !xv || !dyv) return orig(names.backFilter)(args);
    return b.makeTensorInfo(filterShape, "float32", ops.backFilter(xv, dyv, g, filterShape[3], allocOn(b)));
  };
  return {
    [names.forward]: forward,
    [names.fused]: fused,
    [names.backInput]: backInput,
    [names.backFilter]: backFilter,
  };
}

/**
 * Convolution kernel overrides: oneDNN (`dnnlOf()`: `activeDnnl` for the native engine, none for wasm)
 * first, else the GEMM lowering / JS loops of kernels/conv.ts. Shared by the `native` backend (OpenBLAS)
 * and the wasm gradient kernels (JS GEMM).
 * `orig(name)` returns the kernel to fall back to.
 */
export function convKernels(
  gemm: Gemm,
  orig: (name: string) => KernelFn,
  dnnlOf: () => Dnnl | null = () => null,
): Record<string, KernelFn> {
  const dense = convFamily(false, {
    forward: tf.Conv2D,
    fused: tf.FusedConv2D,
    backInput: tf.Conv2DBackpropInput,
    backFilter: tf.Conv2DBackpropFilter,
  }, {
    forward: (x, w, g, _m, alloc) => dnnlOf()?.forward(x, w, g, 1, alloc) ?? conv2d(x, w, g, gemm),
    backInput: (dy, w, g, _m, alloc) =>
      dnnlOf()?.backwardData(dy, w, g, 1, alloc) ?? conv2dBackpropInput(dy, w, g, gemm),
    backFilter: (x, dy, g, _m, alloc) =>
      dnnlOf()?.backwardWeights(x, dy, g, 1, alloc) ?? conv2dBackpropFilter(x, dy, g, gemm),
  }, orig);
  // Depthwise = grouped with one group per input channel.
  const depthwise = convFamily(true, {
    forward: tf.DepthwiseConv2dNative,
    fused: tf.FusedDepthwiseConv2D,
    backInput: tf.DepthwiseConv2dNativeBackpropInput,
    backFilter: tf.DepthwiseConv2dNativeBackpropFilter,
  }, {
    forward: (x, w, g, m, alloc) =>
      dnnlOf()?.forward(x, w, g, g.inChannels, alloc) ?? depthwiseConv2d(x, w, g, m),
    backInput: (dy, w, g, m, alloc) =>
      dnnlOf()?.backwardData(dy, w, g, g.inChannels, alloc) ?? depthwiseBackpropInput(dy, w, g, m),
    // oneDNN's depthwise kernel (`jit_dw`) takes filters up to 3 wide on inputs at least as tall as the filter;
    // the rest (ConvNeXt's 7×7, EfficientNet's 5×5 and its last 3×3 on 2×2 maps) it runs on its generic
    // convolution, which the WebAssembly kernel beats 2–11× (wasm/depthwise.ts)
    backFilter: (x, dy, g, m, alloc) => {
      const dnnl = dnnlOf();
      const dw = dnnl && /^jit_dw/.test(dnnl.backwardWeightsImpl(g, g.inChannels));
      return (dw ? dnnl.backwardWeights(x, dy, g, g.inChannels, alloc) : null) ??
        depthwiseFilterWasm(x, dy, g, m, alloc) ?? dnnl?.backwardWeights(x, dy, g, g.inChannels, alloc) ??
        depthwiseBackpropFilter(x, dy, g, m);
    },
  }, orig);
  return { ...dense, ...depthwise };
}

/** Batched matmul through the GEMM; returns null when shapes/dtypes are not handled. */
function batchMatMul(
  b: MathBackendCPU,
  gemm: Gemm,
  a: tf.TensorInfo,
  bt: tf.TensorInfo,
  ta: boolean,
  tb: boolean,
): { shape: number[]; values: Float32Array } | null {
  const av = f32(b, a), bv = f32(b, bt);
  if (!av || !bv || a.shape.length < 2 || bt.shape.length < 2) return null;
  const ra = a.shape.length, rb = bt.shape.length;
  const m = ta ? a.shape[ra - 1] : a.shape[ra - 2];
  const k = ta ? a.shape[ra - 2] : a.shape[ra - 1];
  const k2 = tb ? bt.shape[rb - 1] : bt.shape[rb - 2];
  const n = tb ? bt.shape[rb - 2] : bt.shape[rb - 1];
  if (k !== k2) return null;
  const batchA = a.shape.slice(0, -2), batchB = bt.shape.slice(0, -2);
  const na = batchA.reduce((p, q) => p * q, 1), nb = batchB.reduce((p, q) => p * q, 1);
  let outBatch: number[];
  try {
    outBatch = tf.broadcast_util.assertAndGetBroadcastShape(batchA, batchB);
  } catch {
    return null;
  }
  const nOut = outBatch.reduce((p, q) => p * q, 1);
  if (!((na === nOut || na === 1) && (nb === nOut || nb === 1))) return null;
  // every element is written (beta 0), except with k = 0, where a GEMM may leave C untouched
  const out = k === 0 ? zeroArray(b, nOut * m * n) : outArray(b, nOut * m * n);
  const lda = a.shape[ra - 1], ldb = bt.shape[rb - 1];
  for (let i = 0; i < nOut; i++) {
    const ao = na === 1 ? 0 : i * m * k, bo = nb === 1 ? 0 : i * k * n;
    gemm(ta, tb, m, n, k, 1, av.subarray(ao), lda, bv.subarray(bo), ldb, 0, out.subarray(i * m * n), n);
  }
  return { shape: [...outBatch, m, n], values: out };
}

/** BatchMatMul and _FusedMatMul overrides on a GEMM (fallback to `orig` otherwise). */
export function matmulKernels(gemm: Gemm, orig: (name: string) => KernelFn): Record<string, KernelFn> {
  const mm: KernelFn = (args) => {
    const { a, b } = args.inputs;
    const attrs = args.attrs ?? {};
    const r = batchMatMul(args.backend, gemm, a, b, !!attrs.transposeA, !!attrs.transposeB);
    if (!r) return orig(tf.BatchMatMul)(args);
    return args.backend.makeTensorInfo(r.shape, "float32", r.values);
  };
  const fused: KernelFn = (args) => {
    const { a, b, bias } = args.inputs;
    const attrs = args.attrs ?? {};
    const act = attrs.activation as string | undefined;
    const bv = bias ? f32(args.backend, bias) : null;
    if ((bias && !bv) || act === "prelu") return orig(tf._FusedMatMul)(args);
    const r = batchMatMul(args.backend, gemm, a, b, !!attrs.transposeA, !!attrs.transposeB);
    if (!r) return orig(tf._FusedMatMul)(args);
    const n = r.shape[r.shape.length - 1];
    if (!applyBiasActivation(r.values, n, bv, act, attrs.leakyreluAlpha as number)) {
      return orig(tf._FusedMatMul)(args);
    }
    return args.backend.makeTensorInfo(r.shape, "float32", r.values);
  };
  return { [tf.BatchMatMul]: mm, [tf._FusedMatMul]: fused };
}

let registeredWith: Blas | null = null;
/** Switch the native kernels' oneDNN routing on or off (see dnnl.ts `setDnnlEnabled`). */
export const useDnnl = setDnnlEnabled;

/** The oneDNN library the native kernels use now, or null (absent, disabled, or not loaded yet). */
export const nativeDnnl = activeDnnl;

/**
 * Register the `native` backend (idempotent). Returns the BLAS in use, or null (and registers nothing) when
 * OpenBLAS cannot be opened.
 */
export function registerNative(threads?: number): Blas | null {
  const blas = openBlas(threads);
  if (!blas) return null;
  if (registeredWith) return registeredWith;
  // Make sure the cpu backend (and its kernels) are registered: importing tfjs-backend-cpu does it.
  if (!tf.findBackendFactory("cpu")) throw new Error("native engine: the cpu backend is not registered");
  tf.registerBackend(NATIVE, () => new NativeBackend(), 3);
  const cpuKernels = tf.getKernelsForBackend("cpu");
  const byName = new Map(cpuKernels.map((k) => [k.kernelName, k.kernelFunc as unknown as KernelFn]));
  const orig = (name: string): KernelFn => {
    const k = byName.get(name);
    if (!k) throw new Error(`native engine: no cpu kernel ${name} to fall back to`);
    return k;
  };
  const gemm: Gemm = blas.sgemm;
  openDnnl(threads);
  const overrides: Record<string, KernelFn> = {
    ...convKernels(gemm, orig, activeDnnl),
    // dense layers: oneDNN's bfloat16 matmul when the precision is bfloat16 (dnnl/matmul.ts), else OpenBLAS
    ...matmulKernels((...g) => activeDnnl()?.lowGemm(...g) || gemm(...g), orig),
    ...extraKernels(orig),
    ...layoutKernels(orig),
  };
  for (const k of cpuKernels) {
    if (tf.getKernel(k.kernelName, NATIVE)) continue;
    const fn = overrides[k.kernelName] ?? k.kernelFunc;
    tf.registerKernel({ ...k, backendName: NATIVE, kernelFunc: fn as unknown as tf.KernelFunc });
  }
  for (const [name, fn] of Object.entries(overrides)) {
    if (!tf.getKernel(name, NATIVE)) {
      tf.registerKernel({
        kernelName: name,
        backendName: NATIVE,
        kernelFunc: fn as unknown as tf.KernelFunc,
      });
    }
  }
  registerFusedGrads(NATIVE);
  registerActivations(NATIVE);
  registerBatchNorm(NATIVE);
  registerLayerNorm(NATIVE);
  // TF.js-layers' batch norm, layer norm, swish and gelu call the fused kernels above (the one patch of tfjs-layers)
  routeLayersToKernels(NATIVE);
  registeredWith = blas;
  return blas;
}
