/** oneDNN 2-D convolutions (dense and grouped) on NHWC data: forward, backward-data, backward-weights. */
import {
  ARG_DIFF_DST,
  ARG_DIFF_SRC,
  ARG_DIFF_WEIGHTS,
  ARG_DST,
  ARG_SRC,
  ARG_WEIGHTS,
  check,
  CONV_DIRECT,
  type DnnlGeom,
  FORWARD_TRAINING,
  OP_DESC_BYTES,
  type Prim,
  type Ptr,
  Q_DIFF_WEIGHTS,
  Q_WEIGHTS,
  TAG_ANY,
  TAG_HWIGO,
  TAG_HWIO,
  TAG_NHWC,
} from "./abi.ts";
import { type Alloc, type DnnlCore, fresh } from "./core.ts";

/** The convolution methods of the engine's oneDNN handle (each null when oneDNN refuses the case). */
export function convolutions(core: DnnlCore) {
  const { s, md, dims, memory, ptrOf, primDesc, primitive, implOf, weightReorder, cache, run, size } = core;
  const shapes = (g: DnnlGeom, groups: number) => {
    const src = [g.batchSize, g.inChannels, g.inHeight, g.inWidth];
    const dst = [g.batchSize, g.outChannels, g.outHeight, g.outWidth];
    const kh = g.filterHeight, kw = g.filterWidth;
    const wShape = groups === 1
      ? [g.outChannels, g.inChannels, kh, kw]
      : [groups, g.outChannels / groups, g.inChannels / groups, kh, kw];
    const wTag = groups === 1 ? TAG_HWIO : TAG_HWIGO;
    const wAny = md(wShape, TAG_ANY);
    return {
      src: md(src, TAG_NHWC),
      dst: md(dst, TAG_NHWC),
      w: md(wShape, wTag),
      wAny,
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
        d.src,
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
  const build = (kind: "fwd" | "bwd_data" | "bwd_weights", g: DnnlGeom, groups: number): Prim | null => {
    const key = `${kind}|${groups}|${JSON.stringify(g)}`;
    if (cache.has(key)) return cache.get(key)!;
    let p: Prim | null = null;
    try {
      const d = shapes(g, groups);
      const fwd = forwardPd(d);
      let pd = fwd, wQuery = Q_WEIGHTS;
      const mems = new Map<number, Ptr>();
      if (kind === "fwd") {
        mems.set(ARG_SRC, memory(ptrOf(d.src)));
        mems.set(ARG_DST, memory(ptrOf(d.dst)));
      } else if (kind === "bwd_data") {
        const op = new Uint8Array(OP_DESC_BYTES);
        check(
          s.dnnl_dilated_convolution_backward_data_desc_init(
            op,
            CONV_DIRECT,
            d.src,
            d.wAny,
            d.dst,
            d.strides,
            d.dilates,
            d.padL,
            d.padR,
          ),
          "convolution_backward_data_desc_init",
        );
        pd = primDesc(op, fwd);
        mems.set(ARG_DIFF_SRC, memory(ptrOf(d.src)));
        mems.set(ARG_DIFF_DST, memory(ptrOf(d.dst)));
      } else {
        const op = new Uint8Array(OP_DESC_BYTES);
        check(
          s.dnnl_dilated_convolution_backward_weights_desc_init(
            op,
            CONV_DIRECT,
            d.src,
            d.wAny,
            null,
            d.dst,
            d.strides,
            d.dilates,
            d.padL,
            d.padR,
          ),
          "convolution_backward_weights_desc_init",
        );
        pd = primDesc(op, fwd);
        wQuery = Q_DIFF_WEIGHTS;
        mems.set(ARG_SRC, memory(ptrOf(d.src)));
        mems.set(ARG_DIFF_DST, memory(ptrOf(d.dst)));
      }
      const chosen = s.dnnl_primitive_desc_query_md(pd, wQuery, 0);
      const reorder = weightReorder(d.w, chosen, kind !== "bwd_weights");
      const wArg = kind === "bwd_weights" ? ARG_DIFF_WEIGHTS : ARG_WEIGHTS;
      mems.set(wArg, memory(reorder ? chosen : ptrOf(d.w)));
      p = { prim: primitive(pd), mems, reorder, impl: implOf(pd) };
    } catch {
      p = null; // refused by oneDNN: the caller uses the OpenBLAS path
    }
    cache.set(key, p);
    return p;
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
