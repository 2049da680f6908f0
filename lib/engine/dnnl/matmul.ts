/**
 * oneDNN matmul in bfloat16: the native engine's dense layers (BatchMatMul, _FusedMatMul) when the precision is
 * bfloat16 (conv.ts `setPrecision`). In float32 they stay on OpenBLAS, which is as fast as oneDNN's float32
 * matmul; bfloat16 needs oneDNN's AMX / AVX-512 BF16 kernels, which OpenBLAS 0.3.21 does not use for SGEMM.
 */
import {
  ARG_DST,
  ARG_SRC,
  ARG_WEIGHTS,
  BF16,
  check,
  OP_DESC_BYTES,
  type Prim,
  type Ptr,
  TAG_AB,
} from "./abi.ts";
import type { Gemm } from "../kernels/gemm.ts";
import type { DnnlCore } from "./core.ts";
import { isBf16Kernel } from "./conv.ts";

/** The matmul method of the engine's oneDNN handle. */
export function matmulPrimitives(core: DnnlCore) {
  const { s, md, strided, memory, ptrOf, primDesc, primitive, implOf, inputCast, cache, run } = core;
  /** The bfloat16 matmul for one GEMM shape (row-major, transposes as strides), or null when oneDNN has none. */
  const build = (
    ta: boolean,
    tb: boolean,
    m: number,
    n: number,
    k: number,
    lda: number,
    ldb: number,
    ldc: number,
  ) => {
    const key = `matmul|bf16|${+ta}${+tb}|${m},${n},${k}|${lda},${ldb},${ldc}`;
    if (cache.has(key)) return cache.get(key)!;
    let p: Prim | null = null;
    try {
      const aUser = strided([m, k], ta ? [1, lda] : [lda, 1]),
        bUser = strided([k, n], tb ? [1, ldb] : [ldb, 1]);
      const aLow = md([m, k], TAG_AB, BF16), bLow = md([k, n], TAG_AB, BF16);
      const c = strided([m, n], [ldc, 1]);
      const op = new Uint8Array(OP_DESC_BYTES);
      check(s.dnnl_matmul_desc_init(op, aLow, bLow, null, c), "matmul_desc_init");
      const pd: Ptr = primDesc(op, null);
      const impl = implOf(pd);
      if (isBf16Kernel(impl)) {
        const mems = new Map<number, Ptr>([
          [ARG_SRC, memory(ptrOf(aLow))],
          [ARG_WEIGHTS, memory(ptrOf(bLow))],
          [ARG_DST, memory(ptrOf(c))],
        ]);
        const casts = new Map([[ARG_SRC, inputCast(aUser, aLow)], [ARG_WEIGHTS, inputCast(bUser, bLow)]]);
        p = { prim: primitive(pd), mems, reorder: null, casts, impl };
      }
    } catch {
      p = null; // refused by oneDNN: the caller's GEMM runs
    }
    cache.set(key, p);
    return p;
  };
  return {
    /**
     * Row-major C = op(A)·op(B) (the {@link Gemm} signature) in bfloat16 with float32
     * accumulation, when the precision is bfloat16; returns false without touching C when it does not run it
     * (float32 precision, alpha ≠ 1, beta ≠ 0, an empty product, or no bfloat16 kernel for the shape).
     */
    lowGemm(...gemm: Parameters<Gemm>): boolean {
      const [transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc] = gemm;
      if (core.precision() !== "bfloat16" || alpha !== 1 || beta !== 0 || m * n * k === 0) return false;
      const p = build(transA, transB, m, n, k, lda, ldb, ldc);
      if (!p) return false;
      run(p, new Map([[ARG_SRC, a], [ARG_WEIGHTS, b], [ARG_DST, c]]));
      return true;
    },
  };
}
