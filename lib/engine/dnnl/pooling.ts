/**
 * oneDNN pooling on NHWC data: spatial means as one average window, and 2-D max pooling forward and the input gradient through the forward's workspace (the
 * position of each window's maximum).
 *
 * TF.js's MaxPoolGrad receives the input, not the forward's argmax, so the backward kernel runs the forward
 * again (with workspace) before the backward primitive; both are memory-bound and together cost a fraction of
 * the JS loops they replace. oneDNN keeps the first maximum of each window in row-major order (it replaces the
 * running maximum only on a strictly greater value), the tie rule of TF.js's cpu kernel, so gradients land on
 * the same input as there (tested with ReLU outputs full of ties in tests/engine/kernels_test.ts).
 */
import {
  ARG_DIFF_DST,
  ARG_DIFF_SRC,
  ARG_DST,
  ARG_SRC,
  ARG_WORKSPACE,
  check,
  type DnnlGeom,
  FORWARD_INFERENCE,
  FORWARD_TRAINING,
  OP_DESC_BYTES,
  POOLING_AVG,
  POOLING_MAX,
  type Prim,
  type Ptr,
  Q_WORKSPACE,
  TAG_NHWC,
} from "./abi.ts";
import { type Alloc, type DnnlCore, fresh } from "./core.ts";

/** A pooling window geometry: the fields of TF.js's `computePool2DInfo` that oneDNN needs (dilation 1). */
export type PoolGeom = Pick<
  DnnlGeom,
  | "batchSize"
  | "inHeight"
  | "inWidth"
  | "inChannels"
  | "outHeight"
  | "outWidth"
  | "filterHeight"
  | "filterWidth"
  | "strideHeight"
  | "strideWidth"
  | "padInfo"
>;

/** The pooling methods of the engine's oneDNN handle (each null when oneDNN refuses the case). */
export function poolingPrimitives(core: DnnlCore) {
  const { s, md, dims, memory, ptrOf, primDesc, primitive, implOf, cache, run, size, plain } = core;
  const descs = (g: PoolGeom) => ({
    src: md([g.batchSize, g.inChannels, g.inHeight, g.inWidth], TAG_NHWC),
    dst: md([g.batchSize, g.inChannels, g.outHeight, g.outWidth], TAG_NHWC),
    strides: dims([g.strideHeight, g.strideWidth]),
    kernel: dims([g.filterHeight, g.filterWidth]),
    padL: dims([g.padInfo.top, g.padInfo.left]),
    padR: dims([g.padInfo.bottom, g.padInfo.right]),
  });
  const forwardPd = (d: ReturnType<typeof descs>, prop: number): Ptr => {
    const op = new Uint8Array(OP_DESC_BYTES);
    check(
      s.dnnl_pooling_forward_desc_init(
        op,
        prop,
        POOLING_MAX,
        d.src,
        d.dst,
        d.strides,
        d.kernel,
        d.padL,
        d.padR,
      ),
      "pooling_forward_desc_init",
    );
    return primDesc(op, null);
  };
  /** The cached primitives of one geometry: inference forward, or training forward + backward + workspace. */
  type Pool = { fwd: Prim; bwd?: Prim; y?: Float32Array; ws?: Float32Array };
  const pools = new Map<string, Pool | null>();
  const build = (g: PoolGeom, training: boolean): Pool | null => {
    const key = `maxpool|${training}|${JSON.stringify(g)}`;
    if (pools.has(key)) return pools.get(key)!;
    let p: Pool | null = null;
    try {
      const d = descs(g);
      const fpd = forwardPd(d, training ? FORWARD_TRAINING : FORWARD_INFERENCE);
      const mems = new Map<number, Ptr>([[ARG_SRC, memory(ptrOf(d.src))], [ARG_DST, memory(ptrOf(d.dst))]]);
      let bwd: Prim | undefined, y: Float32Array | undefined, wsBuf: Float32Array | undefined;
      if (training) {
        const ws = s.dnnl_primitive_desc_query_md(fpd, Q_WORKSPACE, 0);
        // scratch of the forward pass inside the backward kernel, kept per geometry
        wsBuf = new Float32Array(Math.ceil(Number(s.dnnl_memory_desc_get_size(ws)) / 4));
        y = new Float32Array(size([g.batchSize, g.outHeight, g.outWidth, g.inChannels]));
        const wsMem = memory(ws);
        mems.set(ARG_WORKSPACE, wsMem);
        const op = new Uint8Array(OP_DESC_BYTES);
        check(
          s.dnnl_pooling_backward_desc_init(
            op,
            POOLING_MAX,
            d.src,
            d.dst,
            d.strides,
            d.kernel,
            d.padL,
            d.padR,
          ),
          "pooling_backward_desc_init",
        );
        const bpd = primDesc(op, fpd);
        bwd = {
          prim: primitive(bpd),
          mems: new Map([
            [ARG_DIFF_DST, memory(ptrOf(d.dst))],
            [ARG_WORKSPACE, wsMem],
            [ARG_DIFF_SRC, memory(ptrOf(d.src))],
          ]),
          reorder: null,
          impl: implOf(bpd),
        };
        cache.set(`${key}|bwd`, bwd); // listed by impls()
      }
      const fwd = { prim: primitive(fpd), mems, reorder: null, impl: implOf(fpd) };
      cache.set(key, fwd);
      p = { fwd, bwd, y, ws: wsBuf };
    } catch {
      p = null;
    }
    pools.set(key, p);
    return p;
  };
  return {
    /**
     * Mean over the spatial axes of NHWC x[N,H,W,C] (global average pooling, squeeze-excite) as one average-pooling
     * window: y[N,C]. Float32 accumulation (TF.js's Mean sums in float64): equal to rounding, not bit for bit.
     */
    spatialMean(x: Float32Array, shape: number[], alloc: Alloc = fresh): Float32Array | null {
      const [n, h, w, c] = shape;
      const p = plain(`avgpool|${shape}`, () => {
        const src = md([n, c, h, w], TAG_NHWC), dst = md([n, c, 1, 1], TAG_NHWC);
        const one = dims([1, 1]), win = dims([h, w]), zero = dims([0, 0]);
        return {
          init: (op) =>
            s.dnnl_pooling_forward_desc_init(
              op,
              FORWARD_INFERENCE,
              POOLING_AVG,
              src,
              dst,
              one,
              win,
              zero,
              zero,
            ),
          args: [[ARG_SRC, src], [ARG_DST, dst]],
        };
      });
      if (!p) return null;
      const y = alloc(n * c);
      run(p, new Map([[ARG_SRC, x], [ARG_DST, y]]));
      return y;
    },
    /** Max pooling forward: y[N,OH,OW,C] from x[N,H,W,C] (every element of the output is written). */
    maxPool(x: Float32Array, g: PoolGeom, alloc: Alloc = fresh): Float32Array | null {
      const p = build(g, false);
      if (!p) return null;
      const y = alloc(size([g.batchSize, g.outHeight, g.outWidth, g.inChannels]));
      run(p.fwd, new Map([[ARG_SRC, x], [ARG_DST, y]]));
      return y;
    },
    /** Max pooling input gradient: dx[N,H,W,C] from x and dy (forward with workspace, then backward). */
    maxPoolBackward(
      x: Float32Array,
      dy: Float32Array,
      g: PoolGeom,
      alloc: Alloc = fresh,
    ): Float32Array | null {
      const p = build(g, true);
      if (!p || !p.bwd || !p.y || !p.ws) return null;
      const ws = p.ws;
      run(p.fwd, new Map([[ARG_SRC, x], [ARG_DST, p.y], [ARG_WORKSPACE, ws]]));
      const dx = alloc(x.length);
      run(p.bwd, new Map([[ARG_DIFF_DST, dy], [ARG_WORKSPACE, ws], [ARG_DIFF_SRC, dx]]));
      return dx;
    },
  };
}
