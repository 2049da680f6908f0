// Micro-benchmark of the GEMM shapes behind the reference net's convs (dev tool).
import { openBlas } from "../../lib/engine/blas.ts";
const blas = openBlas()!;
console.log(blas.path, blas.threads, blas.config);
function bench(m: number, n: number, k: number, ta = false, tb = false) {
  const a = new Float32Array(m * k).fill(0.5),
    b = new Float32Array(k * n).fill(0.25),
    c = new Float32Array(m * n);
  const lda = ta ? m : k, ldb = tb ? k : n;
  blas.sgemm(ta, tb, m, n, k, 1, a, lda, b, ldb, 0, c, n);
  const t = performance.now();
  let reps = 0;
  while (performance.now() - t < 1000) {
    blas.sgemm(ta, tb, m, n, k, 1, a, lda, b, ldb, 0, c, n);
    reps++;
  }
  const s = (performance.now() - t) / 1000;
  console.log(`${m}x${n}x${k} ta=${ta} tb=${tb}: ${(2 * m * n * k * reps / s / 1e9).toFixed(1)} GFLOP/s`);
}
bench(1024, 1024, 1024);
bench(160000, 64, 64);
bench(40000, 128, 128);
bench(10000, 256, 256);
bench(2500, 512, 512);
bench(64, 64, 160000, true, false);
bench(160000, 64, 64, false, true);
const x = new Float32Array(1 << 24).fill(1);
const t = performance.now();
for (let r = 0; r < 5; r++) {
  const y = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) y[i] = x[i] > 0 ? x[i] : 0;
}
console.log(`relu loop: ${((performance.now() - t) / 5 / x.length * 1e6).toFixed(2)} ns/elem`);
