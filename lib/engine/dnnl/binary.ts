/**
 * oneDNN binary primitives (add, sub, mul) on row-major arrays, the second operand broadcast over size-1 dims.
 *
 * Float32 add, sub and mul are correctly rounded in oneDNN's vector code, and so are TF.js's (a float64 result
 * of two float32 operands rounded once to float32 equals the correctly rounded float32 result, since 53 >=
 * 2·24 + 2), so these give bit for bit the JS kernels' values, multi-threaded and vectorized. Division is left
 * to JS (vector code may multiply by a reciprocal).
 */
import { ARG_DST, ARG_SRC, BINARY, type BinaryAlg } from "./abi.ts";
import { type Alloc, type DnnlCore, fresh } from "./core.ts";

/** oneDNN's ARG_SRC_1 (ARG_SRC is ARG_SRC_0). */
const ARG_SRC_1 = 2;
/** Plain row-major format tags by rank (dnnl_a .. dnnl_abcdef). */
const PLAIN_TAG = [0, 2, 3, 4, 5, 6, 7];

/** The binary methods of the engine's oneDNN handle (null when oneDNN refuses the case). */
export function binaryPrimitives(core: DnnlCore) {
  const { s, md, plain, run } = core;
  return {
    /**
     * dst = a (op) b, with `aDims` the full shape and `bDims` the same rank with 1 where b is broadcast
     * (rank 1–6); every element of the output is written.
     */
    binary(
      alg: BinaryAlg,
      a: Float32Array,
      aDims: number[],
      b: Float32Array,
      bDims: number[],
      alloc: Alloc = fresh,
    ): Float32Array | null {
      const r = aDims.length;
      if (r < 1 || r > 6 || bDims.length !== r) return null;
      const p = plain(`binary|${alg}|${aDims}|${bDims}`, () => {
        const da = md(aDims, PLAIN_TAG[r]), db = md(bDims, PLAIN_TAG[r]);
        return {
          init: (op) => s.dnnl_binary_desc_init(op, BINARY[alg], da, db, da),
          args: [[ARG_SRC, da], [ARG_SRC_1, db], [ARG_DST, da]],
        };
      });
      if (!p) return null;
      const y = alloc(a.length);
      run(p, new Map([[ARG_SRC, a], [ARG_SRC_1, b], [ARG_DST, y]]));
      return y;
    },
  };
}
