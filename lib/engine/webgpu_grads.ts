/**
 * Filter gradients for the `webgpu` backend, composed from the backend's own fast kernels.
 *
 * tfjs-backend-webgpu 4.22 computes `Conv2DBackpropFilter` and `DepthwiseConv2dNativeBackpropFilter` with one
 * GPU thread per filter weight, each summing over every batch position: a few thousand threads, each looping
 * over N·H·W products. Measured on an NVIDIA H200 through Vulkan, a training step of the reference VGG net
 * (batch 64, 48×48) took 13 s against 46 ms for its forward pass, and on Mesa's llvmpipe
 * `tools/webgpu_profile.ts` put 13.3 of a step's 22.0 s of kernel time in `Conv2DBackpropFilter` (README,
 * "GPU engine").
 *
 * The same sums, written per kernel offset (kh, kw): the input window that offset sees is a strided slice of
 * the padded input, and
 *   conv:      dW[kh, kw] = window(kh, kw)ᵀ · dY            ([N·OH·OW, Ci]ᵀ × [N·OH·OW, Co], one matmul)
 *   depthwise: dW[kh, kw] = Σ_{n, oh, ow} window(kh, kw) ⊙ dY   (a product and a sum over three axes)
 * so every step runs on the backend's tiled matmul, elementwise and reduction kernels, which spread the work
 * over the whole GPU. Kernels are composed through the kernel registry (`tf.getKernel`), as the backends
 * compose their own; intermediates are freed as soon as they are used. Cases outside NHWC with unit dilation
 * keep the backend's own kernel. tests/engine/webgpu_test.ts checks the gradients against the cpu backend.
 *
 * When each sum is short the backend's own kernel is kept: the composed form costs 2–3 dispatches per kernel
 * offset, which on llvmpipe made a small EfficientNet-B3 step (32 px, batch 2: at most 512 batch positions per
 * sum) slower, 69 s against 49 s (`tools/webgpu_profile.ts efficientnet_b3 32 2`), while it made the reference
 * net's (48 px, batch 2: up to 4,608) faster. So the default (`auto`) composes from
 * {@link COMPOSE_MIN_POSITIONS} batch positions (N·OH·OW) up: every layer of the study's nets at batch 64 and
 * 44–64 px but the last stages. The threshold is set from those llvmpipe runs and the one-thread-per-weight
 * design, not yet from GPU timings. `FER_WEBGPU_GRADS=auto|composed|naive`
 * (or {@link setFilterGradMode}) picks the behaviour.
 */
import * as tf from "@tensorflow/tfjs-core";

type Info = tf.TensorInfo;
type Backend = { disposeData(dataId: unknown): void };
type Args = { inputs: Record<string, Info>; backend: Backend; attrs: Record<string, unknown> };

/** Runs the registered `webgpu` kernel `name` (its output: one tensor info). */
function run(
  name: string,
  backend: Backend,
  inputs: Record<string, Info>,
  attrs: Record<string, unknown> = {},
) {
  const k = tf.getKernel(name, "webgpu");
  if (!k) throw new Error(`webgpu engine: no ${name} kernel`);
  return k.kernelFunc({ inputs, backend, attrs } as unknown as Parameters<tf.KernelFunc>[0]) as Info;
}

/**
 * The windows of `x` ([N, H, W, C]) that each kernel offset of a convolution sees, as [N, OH, OW, C] infos, in
 * (kh, kw) order; `use(window)` consumes each before the next is made (the window is freed after it).
 */
function forEachWindow(
  backend: Backend,
  x: Info,
  info: tf.backend_util.Conv2DInfo,
  use: (window: Info) => void,
): void {
  const { padInfo: p, strideHeight: sh, strideWidth: sw, outHeight: oh, outWidth: ow } = info;
  const [kh, kw] = [info.filterHeight, info.filterWidth];
  const padded = p.top || p.bottom || p.left || p.right
    ? run(tf.PadV2, backend, { x }, {
      paddings: [[0, 0], [p.top, p.bottom], [p.left, p.right], [0, 0]],
      constantValue: 0,
    })
    : null;
  const src = padded ?? x;
  try {
    for (let i = 0; i < kh; i++) {
      for (let j = 0; j < kw; j++) {
        const window = run(tf.StridedSlice, backend, { x: src }, {
          begin: [0, i, j, 0],
          end: [src.shape[0], i + (oh - 1) * sh + 1, j + (ow - 1) * sw + 1, src.shape[3]],
          strides: [1, sh, sw, 1],
          beginMask: 0,
          endMask: 0,
          ellipsisMask: 0,
          newAxisMask: 0,
          shrinkAxisMask: 0,
        });
        try {
          use(window);
        } finally {
          backend.disposeData(window.dataId);
        }
      }
    }
  } finally {
    if (padded) backend.disposeData(padded.dataId);
  }
}

/** Stacks per-offset gradients ([1, …] each) into the filter gradient of `shape`, freeing the parts. */
function stack(backend: Backend, parts: Info[], shape: number[]): Info {
  try {
    // Concat takes its inputs as a list
    const all = parts.length === 1
      ? parts[0]
      : run(tf.Concat, backend, parts as unknown as Record<string, Info>, { axis: 0 });
    try {
      return run(tf.Reshape, backend, { x: all }, { shape });
    } finally {
      if (all !== parts[0]) backend.disposeData(all.dataId);
    }
  } finally {
    for (const t of parts) backend.disposeData(t.dataId);
  }
}

/** The convolution geometry of a filter-gradient call, or null for the cases left to the backend's kernel. */
function geometry(x: Info, filterShape: number[], attrs: Record<string, unknown>, depthwise: boolean) {
  if ((attrs.dataFormat ?? "NHWC") !== "NHWC") return null;
  const dilations = attrs.dilations ?? 1;
  if (!(dilations === 1 || (Array.isArray(dilations) && dilations.every((d) => d === 1)))) return null;
  return tf.backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number],
    filterShape as [number, number, number, number],
    attrs.strides as number | [number, number],
    1,
    attrs.pad as "valid" | "same" | number,
    attrs.dimRoundingMode as "floor" | "round" | "ceil" | undefined,
    depthwise,
  );
}

/** Batch positions per sum (N·OH·OW) from which `auto` composes the filter gradients. */
export const COMPOSE_MIN_POSITIONS = 4096;

/** How the filter gradients are computed: composed, tfjs's own, or composed for long sums only. */
export type FilterGradMode = "auto" | "composed" | "naive";

let mode: FilterGradMode = (() => {
  let env: string | undefined;
  try {
    env = Deno.env.get("FER_WEBGPU_GRADS");
  } catch { /* no --allow-env: the default */ }
  return env === "composed" || env === "naive" ? env : "auto";
})();

/** Sets how the `webgpu` filter gradients are computed (tests and comparisons); returns the previous mode. */
export function setFilterGradMode(m: FilterGradMode): FilterGradMode {
  const prev = mode;
  mode = m;
  return prev;
}

/** Whether a filter gradient summing over `positions` batch positions (N·OH·OW) is composed in mode `m`. */
export function composesAt(positions: number, m: FilterGradMode = mode): boolean {
  return m === "composed" || (m === "auto" && positions >= COMPOSE_MIN_POSITIONS);
}

/** Whether a filter gradient with this geometry is composed (else the backend's own kernel runs). */
function composes(info: tf.backend_util.Conv2DInfo | null): info is tf.backend_util.Conv2DInfo {
  return info !== null && composesAt(info.batchSize * info.outHeight * info.outWidth);
}

/** `Conv2DBackpropFilter` (inputs x, dy; attrs strides, pad, filterShape, …) as one matmul per kernel offset. */
function conv2DBackpropFilter(args: Args, fallback: tf.KernelFunc): Info {
  const { x, dy } = args.inputs;
  const filterShape = args.attrs.filterShape as number[];
  const info = geometry(x, filterShape, args.attrs, false);
  if (!composes(info)) return fallback(args as unknown as Parameters<tf.KernelFunc>[0]) as Info;
  const b = args.backend;
  const [n, oh, ow, co] = dy.shape;
  const ci = x.shape[3];
  const rows = n * oh * ow;
  const dy2 = run(tf.Reshape, b, { x: dy }, { shape: [1, rows, co] });
  const parts: Info[] = [];
  try {
    forEachWindow(b, x, info, (window) => {
      const w2 = run(tf.Reshape, b, { x: window }, { shape: [1, rows, ci] });
      try {
        parts.push(run(tf.BatchMatMul, b, { a: w2, b: dy2 }, { transposeA: true, transposeB: false }));
      } finally {
        b.disposeData(w2.dataId);
      }
    });
  } catch (e) {
    for (const t of parts) b.disposeData(t.dataId);
    throw e;
  } finally {
    b.disposeData(dy2.dataId);
  }
  return stack(b, parts, filterShape);
}

/** `DepthwiseConv2dNativeBackpropFilter` as a product and a sum over batch and positions per kernel offset. */
function depthwiseBackpropFilter(args: Args, fallback: tf.KernelFunc): Info {
  const { x, dy } = args.inputs;
  const filterShape = args.attrs.filterShape as number[];
  const info = geometry(x, filterShape, args.attrs, true);
  // channel multipliers other than 1 keep the backend's kernel (the study's models use 1)
  if (!composes(info) || filterShape[3] !== 1) {
    return fallback(args as unknown as Parameters<tf.KernelFunc>[0]) as Info;
  }
  const b = args.backend;
  const parts: Info[] = [];
  try {
    forEachWindow(b, x, info, (window) => {
      const prod = run(tf.Multiply, b, { a: window, b: dy });
      try {
        parts.push(run(tf.Sum, b, { x: prod }, { axis: [0, 1, 2], keepDims: true }));
      } finally {
        b.disposeData(prod.dataId);
      }
    });
  } catch (e) {
    for (const t of parts) b.disposeData(t.dataId);
    throw e;
  }
  return stack(b, parts, filterShape);
}

/** The kernels {@link registerWebgpuGrads} replaces. */
export const WEBGPU_GRAD_KERNELS = [tf.Conv2DBackpropFilter, tf.DepthwiseConv2dNativeBackpropFilter] as const;

let registered = false;
const composed = new Set<unknown>();

/** Whether the `webgpu` kernel `name` is this module's wrapper (composing or delegating: {@link composesAt}). */
export function isComposed(name: string): boolean {
  return composed.has(tf.getKernel(name, "webgpu")?.kernelFunc);
}

/**
 * Wraps the `webgpu` backend's filter-gradient kernels so that they compute as {@link setFilterGradMode} says
 * (call after the backend package is imported; idempotent).
 */
export function registerWebgpuGrads(): void {
  if (registered) return;
  const impl = {
    [tf.Conv2DBackpropFilter]: conv2DBackpropFilter,
    [tf.DepthwiseConv2dNativeBackpropFilter]: depthwiseBackpropFilter,
  };
  for (const name of WEBGPU_GRAD_KERNELS) {
    const own = tf.getKernel(name, "webgpu");
    if (!own) continue;
    const kernelFunc = ((args: Args) => impl[name](args, own.kernelFunc)) as unknown as tf.KernelFunc;
    tf.unregisterKernel(name, "webgpu");
    tf.registerKernel({ kernelName: name, backendName: "webgpu", kernelFunc });
    composed.add(kernelFunc);
  }
  registered = true;
}
