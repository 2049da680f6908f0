/** oneDNN element-wise primitives (ReLU, SiLU, exact GELU, sigmoid) over flat arrays, forward and backward. */
import {
  ARG_DIFF_DST,
  ARG_DIFF_SRC,
  ARG_DST,
  ARG_SRC,
  ELTWISE,
  type EltwiseAlg,
  FORWARD_TRAINING,
} from "./abi.ts";
import { type Alloc, type DnnlCore, fresh } from "./core.ts";

/** The element-wise methods of the engine's oneDNN handle (each null when oneDNN refuses the case). */
export function eltwisePrimitives(core: DnnlCore) {
  const { s, plain, flat, pdOf, run } = core;
  const eltwiseFwd = (alg: EltwiseAlg, d: Uint8Array) => (op: Uint8Array) =>
    s.dnnl_eltwise_forward_desc_init(op, FORWARD_TRAINING, ELTWISE[alg], d, alg === "swish" ? 1 : 0, 0);

  return {
    /** Element-wise forward over a flat array (multi-threaded, vectorized). */
    eltwise(alg: EltwiseAlg, x: Float32Array, alloc: Alloc = fresh): Float32Array | null {
      const n = x.length;
      const p = plain(`eltwise|${alg}|${n}`, () => {
        const d = flat(n);
        return { init: eltwiseFwd(alg, d), args: [[ARG_SRC, d], [ARG_DST, d]] };
      });
      if (!p) return null;
      const y = alloc(n);
      run(p, new Map([[ARG_SRC, x], [ARG_DST, y]]));
      return y;
    },
    /** Element-wise backward: dx from x and dy. */
    eltwiseBackward(
      alg: EltwiseAlg,
      x: Float32Array,
      dy: Float32Array,
      alloc: Alloc = fresh,
    ): Float32Array | null {
      const n = x.length;
      const p = plain(`eltwise_bwd|${alg}|${n}`, () => {
        const d = flat(n);
        return {
          init: (op) => s.dnnl_eltwise_backward_desc_init(op, ELTWISE[alg], d, d, alg === "swish" ? 1 : 0, 0),
          args: [[ARG_SRC, d], [ARG_DIFF_DST, d], [ARG_DIFF_SRC, d]],
          hint: pdOf(eltwiseFwd(alg, d)),
        };
      });
      if (!p) return null;
      const dx = alloc(n);
      run(p, new Map([[ARG_SRC, x], [ARG_DIFF_DST, dy], [ARG_DIFF_SRC, dx]]));
      return dx;
    },
  };
}
