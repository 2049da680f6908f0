/**
 * Slice and PadV2 for the `native` backend. The cpu kernels copy a non-contiguous slice element by element
 * through a multi-index (`TensorBuffer.get`), and pad the same way; EfficientNet's stride-2 convolutions pad
 * explicitly (PyTorch's symmetric padding) and the gradient of each pad is a slice, so at 48 px these two
 * were ~48% of a training step. Here both are one block copy whose innermost contiguous run is a single
 * `TypedArray.set`.
 */
import * as tf from "@tensorflow/tfjs-core";
import type { MathBackendCPU } from "@tensorflow/tfjs-backend-cpu";

type KernelArgs = {
  inputs: Record<string, tf.TensorInfo>;
  backend: MathBackendCPU;
  attrs?: Record<string, unknown>;
};
type KernelFn = (args: KernelArgs) => tf.TensorInfo | tf.TensorInfo[];

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

function like(v: Numeric, n: number): Numeric {
  return v instanceof Float32Array
    ? new Float32Array(n)
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
    const out = like(xv, n);
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
    const out = like(xv, shape.reduce((p, q) => p * q, 1));
    if (value !== 0) out.fill(value);
    copyBox(xv, x.shape, new Array(x.shape.length).fill(0), out, shape, paddings.map((p) => p[0]), x.shape);
    return args.backend.makeTensorInfo(shape, x.dtype, out);
  };
}

/** Slice and PadV2 overrides. */
export function layoutKernels(orig: (name: string) => KernelFn): Record<string, KernelFn> {
  return { [tf.Slice]: sliceKernel(orig), [tf.PadV2]: padKernel(orig) };
}
