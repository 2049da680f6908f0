/**
 * oneDNN 2-D convolutions (dense and grouped) on NHWC data: forward, backward-data, backward-weights; in float32,
 * or in bfloat16 where the CPU has bfloat16 instructions (see {@link convolutions}' `setPrecision`).
 */
import {
  ARG_DIFF_DST,
  ARG_DIFF_SRC,
  ARG_DIFF_WEIGHTS,
  ARG_DST,
  ARG_SRC,
  ARG_WEIGHTS,
  BF16,
  check,
  CONV_DIRECT,
  type DnnlGeom,
  F32,
  FORWARD_TRAINING,
  OP_DESC_BYTES,
  type Prim,
  type Ptr,
  Q_DIFF_WEIGHTS,
  Q_WEIGHTS,
  type Reorder,
  TAG_ANY,
  TAG_HWIGO,
  TAG_HWIO,
  TAG_NHWC,
} from "./abi.ts";
import { type Alloc, type DnnlCore, fresh, type Precision } from "./core.ts";

/** Whether a oneDNN implementation name is a hardware bfloat16 kernel (AMX or AVX-512 BF16), not a reference. */
export function isBf16Kernel(impl: string): boolean {
  return /bf16/.test(impl) && !/^ref/.test(impl);
}

/**
 * The convolution methods of the engine's oneDNN handle (each null when oneDNN refuses the case).
 *
 * In `bfloat16` (`setPrecision`) the inputs of each direction — activations, weights, output gradients — are
 * rounded to bfloat16 (oneDNN reorders) and the products accumulate in float32; outputs and weight gradients
 * stay float32, and so do the weights the optimiser updates (mixed precision as PyTorch's CPU autocast does
 * it). Why: on a CPU with AMX (Xeon, one thread, beside two training runs) a training step of vgg_fer at 44 px
 * ran 2.0× faster, resnet_fer 1.6×, vgg_fer_half 1.9×, ConvNeXt-Tiny at 64 px 1.15× with its dense layers in
 * bfloat16 too (matmul.ts) (`FER_THREADS=1 deno run -A tests/bench/precision.ts <model>@<size>`).
 * Grouped (depthwise) convolutions, and a geometry oneDNN has no hardware bfloat16 kernel for, stay float32.
 */
export function convolutions(core: DnnlCore) {
  const {
    s,
    md,
    dims,
    memory,
    ptrOf,
    primDesc,
    primitive,
    implOf,
    weightReorder,
    inputCast,
    cache,
    run,
    size,
  } = core;
  const shapes = (g: DnnlGeom, groups: number, low: boolean) => {
    const src = [g.batchSize, g.inChannels, g.inHeight, g.inWidth];
    const dst = [g.batchSize, g.outChannels, g.outHeight, g.outWidth];
    const kh = g.filterHeight, kw = g.filterWidth;
    const wShape = groups === 1
      ? [g.outChannels, g.inChannels, kh, kw]
      : [groups, g.outChannels / groups, g.inChannels / groups, kh, kw];
    const wTag = groups === 1 ? TAG_HWIO : TAG_HWIGO;
    const dt = low ? BF16 : F32;
    return {
      src: md(src, TAG_NHWC),
      dst: md(dst, TAG_NHWC),
      w: md(wShape, wTag),
      wAny: md(wShape, TAG_ANY, dt),
      /** float32 weight gradients in the layout oneDNN picks */
      dwAny: md(wShape, TAG_ANY),
      /** the inputs as the primitive reads them: bfloat16 copies when `low`, else the float32 ones */
      srcIn: md(src, TAG_NHWC, dt),
      dstIn: md(dst, TAG_NHWC, dt),
      strides: dims([g.strideHeight, g.strideWidth]),
      dilates: dims([g.dilationHeight - 1, g.dilationWidth - 1]),
      padL: dims([g.padInfo.top, g.padInfo.left]),
      padR: dims([g.padInfo.bottom, g.padInfo.right]),
    };
  };
  const forwardPd = (d: ReturnType<typeof shapes>): Ptr => {
    const op = new Uint8Array(OP_DESC_BYTES);
    check(
      s.dnnl_dilated_convolution_forward_desc_init(
        op,
        FORWARD_TRAINING,
        CONV_DIRECT,
        d.srcIn,
        d.wAny,
        null,
        d.dst,
        d.strides,
        d.dilates,
        d.padL,
        d.padR,
      ),
      "convolution_forward_desc_init",
    );
    return primDesc(op, null);
  };
  type Kind = "fwd" | "bwd_data" | "bwd_weights";
  /** The primitive for one direction and geometry in the current precision (float32 where bfloat16 has none). */
  const build = (kind: Kind, g: DnnlGeom, groups: number): Prim | null => {
    // grouped (depthwise) convolutions stay float32: they are bound by memory, and oneDNN's bfloat16 kernel for
    // their weight gradient ran 2× slower than float32 (ConvNeXt-Tiny, PROF_PRECISION in tests/bench/profile.ts)
    if (core.precision() === "float32" || groups !== 1) return buildIn(kind, g, groups, false);
    const low = buildIn(kind, g, groups, true);
    return low && isBf16Kernel(low.impl) ? low : buildIn(kind, g, groups, false);
  };
  const buildIn = (kind: Kind, g: DnnlGeom, groups: number, low: boolean): Prim | null => {
    const key = `${kind}|${groups}|${low ? "bf16|" : ""}${JSON.stringify(g)}`;
    if (cache.has(key)) return cache.get(key)!;
    let p: Prim | null = null;
    try {
      const d = shapes(g, groups, low);
      const fwd = forwardPd(d);
      let pd = fwd, wQuery = Q_WEIGHTS;
      const mems = new Map<number, Ptr>();
      const casts = new Map<number, Reorder>();
      if (kind === "fwd") {
        mems.set(ARG_SRC, memory(ptrOf(d.srcIn)));
        mems.set(ARG_DST, memory(ptrOf(d.dst)));
        if (low) casts.set(ARG_SRC, inputCast(d.src, d.srcIn));
      } else if (kind === "bwd_data") {
        const op = new Uint8Array(OP_DESC_BYTES);
        check(
          s.dnnl_dilated_convolution_backward_data_desc_init(
            op,
            CONV_DIRECT,
            d.src,
            d.wAny,
            d.dstIn,
            d.strides,
            d.dilates,
            d.padL,
            d.padR,
          ),
          "convolution_backward_data_desc_init",
        );
        pd = primDesc(op, fwd);
        mems.set(ARG_DIFF_SRC, memory(ptrOf(d.src)));
        mems.set(ARG_DIFF_DST, memory(ptrOf(d.dstIn)));
        if (low) casts.set(ARG_DIFF_DST, inputCast(d.dst, d.dstIn));
      } else {
        const op = new Uint8Array(OP_DESC_BYTES);
        check(
          s.dnnl_dilated_convolution_backward_weights_desc_init(
            op,
            CONV_DIRECT,
            d.srcIn,
            d.dwAny,
            null,
            d.dstIn,
            d.strides,
            d.dilates,
            d.padL,
            d.padR,
          ),
          "convolution_backward_weights_desc_init",
        );
        pd = primDesc(op, fwd);
        wQuery = Q_DIFF_WEIGHTS;
        mems.set(ARG_SRC, memory(ptrOf(d.srcIn)));
        mems.set(ARG_DIFF_DST, memory(ptrOf(d.dstIn)));
        if (low) {
          casts.set(ARG_SRC, inputCast(d.src, d.srcIn));
          casts.set(ARG_DIFF_DST, inputCast(d.dst, d.dstIn));
        }
      }
      const chosen = s.dnnl_primitive_desc_query_md(pd, wQuery, 0);
      const reorder = weightReorder(d.w, chosen, kind !== "bwd_weights");
      const wArg = kind === "bwd_weights" ? ARG_DIFF_WEIGHTS : ARG_WEIGHTS;
      mems.set(wArg, memory(reorder ? chosen : ptrOf(d.w)));
      p = { prim: primitive(pd), mems, reorder, ...(casts.size ? { casts } : {}), impl: implOf(pd) };
    } catch {
      p = null; // refused by oneDNN: the caller uses the OpenBLAS path
    }
    cache.set(key, p);
    return p;
  };
  let bf16: boolean | undefined;
  /** Whether oneDNN has a hardware bfloat16 kernel here: probed once on a small 3×3 convolution's directions. */
  const bf16Available = (): boolean => {
    if (bf16 !== undefined) return bf16;
    const g: DnnlGeom = {
      batchSize: 4,
      inHeight: 8,
      inWidth: 8,
      inChannels: 32,
      outHeight: 8,
      outWidth: 8,
      outChannels: 32,
      filterHeight: 3,
      filterWidth: 3,
      strideHeight: 1,
      strideWidth: 1,
      dilationHeight: 1,
      dilationWidth: 1,
      padInfo: { top: 1, bottom: 1, left: 1, right: 1 },
    };
    const kinds: Kind[] = ["fwd", "bwd_data", "bwd_weights"];
    return bf16 = kinds.every((k) => isBf16Kernel(buildIn(k, g, 1, true)?.impl ?? ""));
  };
  const wSize = (g: DnnlGeom, groups: number) =>
    g.filterHeight * g.filterWidth * (g.inChannels / groups) * g.outChannels;
  /** One direction: the cached primitive, a fresh output of `outLen`, the two inputs bound to their args. */
  const direction = (
    kind: "fwd" | "bwd_data" | "bwd_weights",
    g: DnnlGeom,
    groups: number,
    inputs: [number, Float32Array][],
    outArg: number,
    outLen: number,
    alloc: Alloc,
  ): Float32Array | null => {
    const p = build(kind, g, groups);
    if (!p) return null;
    const out = alloc(outLen);
    const wArg = kind === "bwd_weights" ? ARG_DIFF_WEIGHTS : ARG_WEIGHTS;
    run(p, new Map([...inputs, [outArg, out]]), wArg, kind !== "bwd_weights");
    return out;
  };

  return {
    /**
     * Sets the arithmetic of the convolutions and matmuls (matmul.ts) that follow; returns whether it is in
     * effect: `bfloat16` needs oneDNN's hardware bfloat16 kernels (AMX or AVX-512 BF16), else they stay float32.
     */
    setPrecision(p: Precision): boolean {
      const ok = p === "float32" || bf16Available();
      core.usePrecision(ok ? p : "float32");
      return ok;
    },
    /** The arithmetic the convolutions and matmuls use now. */
    precision(): Precision {
      return core.precision();
    },
    /**
     * NHWC forward: y[N,OH,OW,O] from x[N,H,W,C] and w (TF.js layout [kh, kw, C/groups, O]); each method takes
     * its output from `alloc` (every element is written).
     */
    forward(
      x: Float32Array,
      w: Float32Array,
      g: DnnlGeom,
      groups: number,
      alloc = fresh,
    ): Float32Array | null {
      const n = size([g.batchSize, g.outHeight, g.outWidth, g.outChannels]);
      return direction("fwd", g, groups, [[ARG_SRC, x], [ARG_WEIGHTS, w]], ARG_DST, n, alloc);
    },
    /** dx[N,H,W,C] from dy and w. */
    backwardData(
      dy: Float32Array,
      w: Float32Array,
      g: DnnlGeom,
      groups: number,
      alloc = fresh,
    ): Float32Array | null {
      const n = size([g.batchSize, g.inHeight, g.inWidth, g.inChannels]);
      return direction("bwd_data", g, groups, [[ARG_DIFF_DST, dy], [ARG_WEIGHTS, w]], ARG_DIFF_SRC, n, alloc);
    },
    /** The oneDNN implementation of the weight gradient for this geometry (e.g. `jit_dw:avx512_core`), "" if none. */
    backwardWeightsImpl(g: DnnlGeom, groups: number): string {
      return build("bwd_weights", g, groups)?.impl ?? "";
    },
    /** dw (TF.js layout) from x and dy. */
    backwardWeights(
      x: Float32Array,
      dy: Float32Array,
      g: DnnlGeom,
      groups: number,
      alloc = fresh,
    ): Float32Array | null {
      const inputs: [number, Float32Array][] = [[ARG_SRC, x], [ARG_DIFF_DST, dy]];
      return direction("bwd_weights", g, groups, inputs, ARG_DIFF_WEIGHTS, wSize(g, groups), alloc);
    },
  };
}
