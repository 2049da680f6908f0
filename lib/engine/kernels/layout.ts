/**
 * Slice and PadV2 for the `native` backend. The cpu kernels copy a non-contiguous slice element by element
 * through a multi-index (`TensorBuffer.get`), and pad the same way; EfficientNet's stride-2 convolutions pad
 * explicitly (PyTorch's symmetric padding) and the gradient of each pad is a slice, so at 48 px these two
 * were ~48% of a training step. Here both are one block copy whose innermost contiguous run is a single
 * `TypedArray.set`. Transpose likewise walks the output once with merged dims and a strided inner loop (the
 * cpu kernel computes a multi-index per element; it was 55% of a ConvNeXt-Tiny step at 48 px).
 */
import * as tf from "@tensorflow/tfjs-core";
import type { MathBackendCPU } from "@tensorflow/tfjs-backend-cpu";
import { type KernelFn } from "./types.ts";
import { outArray, zeroArray } from "../pool.ts";

type Numeric = Float32Array | Int32Array | Uint8Array;

/** Row-major strides of a shape. */
function strides(shape: number[]): number[] {
  const s = new Array(shape.length).fill(1);
  for (let i = shape.length - 2; i >= 0; i--) s[i] = s[i + 1] * shape[i + 1];
  return s;
}

/**
 * Copy the box `size` starting at `srcStart` in `src` (shape `srcShape`) to `dstStart` in `dst` (shape
 * `dstShape`). Trailing dims the box covers fully in both arrays are merged into one contiguous run.
 */
export function copyBox(
  src: Numeric,
  srcShape: number[],
  srcStart: number[],
  dst: Numeric,
  dstShape: number[],
  dstStart: number[],
  size: number[],
): void {
  const r = size.length;
  if (size.some((s) => s === 0)) return;
  // Innermost dim index `inner` such that dims inner+1.. are copied whole in both arrays.
  let inner = r - 1;
  while (inner > 0 && size[inner] === srcShape[inner] && size[inner] === dstShape[inner]) inner--;
  const ss = strides(srcShape), ds = strides(dstShape);
  const run = size[inner] * ss[inner];
  let so = 0, dO = 0;
  for (let i = 0; i < r; i++) {
    so += srcStart[i] * ss[i];
    dO += dstStart[i] * ds[i];
  }
  const idx = new Array(inner).fill(0);
  for (;;) {
    dst.set(src.subarray(so, so + run), dO);
    let d = inner - 1;
    for (; d >= 0; d--) {
      idx[d]++;
      so += ss[d];
      dO += ds[d];
      if (idx[d] < size[d]) break;
      so -= size[d] * ss[d];
      dO -= size[d] * ds[d];
      idx[d] = 0;
    }
    if (d < 0) return;
  }
}

function numeric(b: MathBackendCPU, t: tf.TensorInfo): Numeric | null {
  const v = b.data.get(t.dataId).values;
  return v instanceof Float32Array || v instanceof Int32Array || v instanceof Uint8Array ? v : null;
}

/** An output array of `v`'s type; float32 ones come from `backend`'s pool (zeroed when `zero`). */
function like(v: Numeric, n: number, backend: unknown = null, zero = false): Numeric {
  return v instanceof Float32Array
    ? (zero ? zeroArray(backend, n) : outArray(backend, n))
    : v instanceof Int32Array
    ? new Int32Array(n)
    : new Uint8Array(n);
}

/** Slice: falls back to the cpu kernel for strings and complex. */
function sliceKernel(orig: (n: string) => KernelFn): KernelFn {
  return (args) => {
    const { x } = args.inputs;
    const xv = numeric(args.backend, x);
    if (!xv || x.shape.length === 0) return orig(tf.Slice)(args);
    const [begin, size] = tf.slice_util.parseSliceParams(
      x as unknown as tf.Tensor,
      args.attrs!.begin as number[],
      args.attrs!.size as number[],
    );
    const n = size.reduce((p, q) => p * q, 1);
    const out = like(xv, n, args.backend);
    copyBox(xv, x.shape, begin, out, size, new Array(size.length).fill(0), size);
    return args.backend.makeTensorInfo(size, x.dtype, out);
  };
}

/** PadV2 (constant padding). */
function padKernel(orig: (n: string) => KernelFn): KernelFn {
  return (args) => {
    const { x } = args.inputs;
    const xv = numeric(args.backend, x);
    if (!xv || x.shape.length === 0) return orig(tf.PadV2)(args);
    const paddings = args.attrs!.paddings as [number, number][];
    const value = (args.attrs!.constantValue as number) ?? 0;
    const shape = x.shape.map((s, i) => paddings[i][0] + s + paddings[i][1]);
    const n = shape.reduce((p, q) => p * q, 1);
    const out = value !== 0 ? like(xv, n, args.backend).fill(value) : like(xv, n, args.backend, true);
    copyBox(xv, x.shape, new Array(x.shape.length).fill(0), out, shape, paddings.map((p) => p[0]), x.shape);
    return args.backend.makeTensorInfo(shape, x.dtype, out);
  };
}

/**
 * Permute `x` (shape `shape`) by `perm` into a new array: dims the permutation keeps adjacent are merged
 * first, then the output is walked in order with the source offset advanced by per-dim strides.
 */
export function transpose(x: Numeric, shape: number[], perm: number[], backend: unknown = null): Numeric {
  const n = x.length;
  const out = like(x, n, backend);
  // Merge runs of output dims that are consecutive in the input too.
  const dims: number[] = [], src: number[] = [];
  for (let i = 0; i < perm.length; i++) {
    if (shape[perm[i]] === 1) continue;
    const last = src.length - 1;
    if (last >= 0 && src[last] + 1 === perm[i] && shape.slice(src[last] + 1, perm[i]).every((d) => d === 1)) {
      dims[last] *= shape[perm[i]];
      src[last] = perm[i];
    } else {
      dims.push(shape[perm[i]]);
      src.push(perm[i]);
    }
  }
  if (dims.length <= 1) {
    out.set(x);
    return out;
  }
  // Stride in the input of each merged output dim: product of input dims after its last member.
  const inStride = src.map((d) => shape.slice(d + 1).reduce((p, q) => p * q, 1));
  const r = dims.length;
  const inner = dims[r - 1], innerStride = inStride[r - 1];
  const idx = new Array(r - 1).fill(0);
  let so = 0;
  for (let o = 0; o < n; o += inner) {
    for (let j = 0, s = so; j < inner; j++, s += innerStride) out[o + j] = x[s];
    for (let d = r - 2; d >= 0; d--) {
      idx[d]++;
      so += inStride[d];
      if (idx[d] < dims[d]) break;
      so -= dims[d] * inStride[d];
      idx[d] = 0;
    }
  }
  return out;
}

function transposeKernel(orig: (n: string) => KernelFn): KernelFn {
  return (args) => {
    const { x } = args.inputs;
    const xv = numeric(args.backend, x);
    if (!xv) return orig(tf.Transpose)(args);
    const perm = args.attrs!.perm as number[];
    const shape = perm.map((p) => x.shape[p]);
    return args.backend.makeTensorInfo(shape, x.dtype, transpose(xv, x.shape, perm, args.backend));
  };
}

/** Slice, PadV2 and Transpose overrides. */
export function layoutKernels(orig: (name: string) => KernelFn): Record<string, KernelFn> {
  return {
    [tf.Slice]: sliceKernel(orig),
    [tf.PadV2]: padKernel(orig),
    [tf.Transpose]: transposeKernel(orig),
  };
}
