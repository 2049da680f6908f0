/**
 * The GEMM signature the convolution and matmul kernels are written against, and a plain-JS implementation
 * of it. The kernels take the GEMM as a parameter so the same convolution code serves the `native` backend
 * (OpenBLAS) and the `wasm` gradient kernels (JS GEMM, no native library needed).
 */

/** Row-major C = alpha * op(A) * op(B) + beta * C, CBLAS argument order (views honour their byteOffset). */
export type Gemm = (
  transA: boolean,
  transB: boolean,
  m: number,
  n: number,
  k: number,
  alpha: number,
  a: Float32Array,
  lda: number,
  b: Float32Array,
  ldb: number,
  beta: number,
  c: Float32Array,
  ldc: number,
) => void;

/**
 * Straightforward JS SGEMM (i-k-j loop order so the innermost loop streams contiguous rows of B and C,
 * which V8 compiles to a tight loop; ~1 GFLOP/s). Hand-written because no maintained pure-JS BLAS exists on
 * npm that beats this for our sizes; it is only the fallback when OpenBLAS is absent.
 */
export const jsGemm: Gemm = (transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc) => {
  for (let i = 0; i < m; i++) {
    const ci = i * ldc;
    if (beta === 0) c.fill(0, ci, ci + n);
    else if (beta !== 1) { for (let j = 0; j < n; j++) c[ci + j] *= beta; }
  }
  // Materialise op(B) as a contiguous k x n row-major block so the inner loop is unit-stride.
  let bb = b;
  let ldbb = ldb;
  if (transB) {
    bb = new Float32Array(k * n);
    for (let j = 0; j < n; j++) for (let p = 0; p < k; p++) bb[p * n + j] = b[j * ldb + p];
    ldbb = n;
  }
  for (let i = 0; i < m; i++) {
    const ci = i * ldc;
    for (let p = 0; p < k; p++) {
      const av = alpha * (transA ? a[p * lda + i] : a[i * lda + p]);
      if (av === 0) continue;
      const bp = p * ldbb;
      for (let j = 0; j < n; j++) c[ci + j] += av * bb[bp + j];
    }
  }
};
