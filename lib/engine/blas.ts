/**
 * OpenBLAS through Deno FFI: locate the shared library portably, open it, and expose `sgemm` plus the thread
 * controls. OpenBLAS is used instead of hand-written GEMM because a tuned, multi-threaded SGEMM is 50-100x
 * faster than any JS loop (measured here: 55-81 GFLOP/s on one core vs ~1 GFLOP/s for JS); it is a well-kept
 * library present on every Linux distribution and in Homebrew.
 *
 * OpenBLAS picks its kernels for the CPU it finds when it loads. A release older than the CPU may not know it and
 * fall back to a generic SSE3 core ("Prescott"): Debian 12's 0.3.21 does so on a Xeon of family 6 model 207
 * (AVX-512 with BF16), where a 1024³ SGEMM on one thread then runs at 31 instead of 146 GFLOP/s
 * (`FER_THREADS=1 deno run -A tests/bench/micro.ts`, with and without `OPENBLAS_CORETYPE=Prescott`, beside two
 * training runs). So when the core OpenBLAS reports predates AVX2 although the CPU has AVX2 or AVX-512, the
 * library is reopened with `OPENBLAS_CORETYPE` set to the core that matches the CPU's instruction set
 * ({@link betterCoreType}); a `OPENBLAS_CORETYPE` set by the user is never replaced.
 */
import type { Gemm } from "./kernels/gemm.ts";

/** Row-major / no-transpose constants of the CBLAS interface. */
const CblasRowMajor = 101;
const CblasNoTrans = 111;
const CblasTrans = 112;

const SYMBOLS = {
  cblas_sgemm: {
    parameters: [
      "i32",
      "i32",
      "i32",
      "i32",
      "i32",
      "i32",
      "f32",
      "buffer",
      "i32",
      "buffer",
      "i32",
      "f32",
      "buffer",
      "i32",
    ],
    result: "void",
    // Blocking call: the GEMMs are large enough that the FFI call overhead is irrelevant, and OpenBLAS's own
    // pthreads supply the parallelism; a nonblocking call would only add a thread hop per GEMM.
    nonblocking: false,
  },
  openblas_get_num_threads: { parameters: [], result: "i32", optional: true },
  openblas_set_num_threads: { parameters: ["i32"], result: "void", optional: true },
  openblas_get_config: { parameters: [], result: "pointer", optional: true },
} as const;

/** An opened BLAS library. */
export type Blas = {
  /** Absolute path (or soname) that was opened. */
  path: string;
  /** The OpenBLAS kernel core in use (from its config string, e.g. "SkylakeX"), "" when not reported. */
  core: string;
  /** The generic core OpenBLAS chose by itself when it was replaced by {@link core} ("" when not replaced). */
  fallbackCore: string;
  /** The core that matches the CPU when OpenBLAS could not be made to use it ("" otherwise): SGEMM is slow. */
  wantedCore: string;
  /** Threads OpenBLAS uses (1 when the library does not report it). */
  threads: number;
  /** OpenBLAS build configuration string, when available. */
  config: string;
  /**
   * Row-major C = alpha * op(A) * op(B) + beta * C. `a`, `b`, `c` may be subarray views (their byte offset
   * is honoured), which is how the shifted-GEMM convolutions address a tap without copying.
   */
  sgemm: Gemm;
  /** Set the number of OpenBLAS threads (no-op when unsupported). */
  setThreads(n: number): void;
};

/**
 * Library paths to try: only `FER_BLAS_LIB` when set (an explicit choice is never silently replaced),
 * else Linux multiarch / generic Linux paths, Homebrew and MacPorts dylibs, then the bare sonames. On Linux the
 * OpenMP build (Debian's `libopenblas0-openmp`) comes first: it shares libgomp's thread pool with oneDNN, where
 * the pthread build's spinning workers competed with oneDNN's for the same cores (2 cores: ConvNeXt-style net
 * training 534 → 790 img/s, the reference net 77 → 86; `deno task bench` with `FER_BLAS_LIB` set to each).
 */
export function blasCandidates(): string[] {
  const env = Deno.env.get("FER_BLAS_LIB");
  if (env) return [env];
  const out: string[] = [];
  if (Deno.build.os === "darwin") {
    out.push(
      "/opt/homebrew/opt/openblas/lib/libopenblas.dylib",
      "/usr/local/opt/openblas/lib/libopenblas.dylib",
      "/opt/local/lib/libopenblas.dylib",
      "libopenblas.dylib",
    );
  } else if (Deno.build.os === "windows") {
    out.push("libopenblas.dll", "openblas.dll");
  } else {
    const arch = Deno.build.arch === "aarch64" ? "aarch64-linux-gnu" : "x86_64-linux-gnu";
    for (const dir of [`/usr/lib/${arch}`, "/usr/lib64", "/usr/lib", "/usr/local/lib", "/opt/OpenBLAS/lib"]) {
      out.push(
        `${dir}/openblas-openmp/libopenblas.so.0`,
        `${dir}/libopenblas.so.0`,
        `${dir}/libopenblas.so`,
        `${dir}/openblas-pthread/libopenblas.so.0`,
      );
    }
    out.push("libopenblas.so.0", "libopenblas.so");
  }
  return out;
}

/** The one-line hint printed when no OpenBLAS is found. */
export function blasInstallHint(): string {
  const how = Deno.build.os === "darwin"
    ? "brew install openblas"
    : "apt install libopenblas0-openmp (Debian/Ubuntu) or dnf install openblas (Fedora)";
  return `native engine unavailable: OpenBLAS not found (install it: ${how}; or set FER_BLAS_LIB=/path/to/libopenblas)`;
}

/** OpenBLAS cores (the names of its DYNAMIC_ARCH kernels) of x86 CPUs without AVX2. */
const PRE_AVX2_CORES = new Set([
  "Katmai",
  "Coppermine",
  "Northwood",
  "Prescott",
  "Banias",
  "Atom",
  "Core2",
  "Penryn",
  "Dunnington",
  "Nehalem",
  "Sandybridge",
  "Opteron",
  "Opteron_SSE3",
  "Barcelona",
  "Bobcat",
]);

/** The kernel core named in an OpenBLAS config string ("OpenBLAS 0.3.21 ... USE_OPENMP Prescott MAX_THREADS=64"). */
export function coreOfConfig(config: string): string {
  const words = config.trim().split(/\s+/);
  const i = words.findIndex((w) => w.startsWith("MAX_THREADS="));
  return i > 0 ? words[i - 1] : "";
}

/**
 * The OpenBLAS core to use instead of `core` on a CPU with these feature flags (`/proc/cpuinfo`), or null to keep
 * OpenBLAS's choice: only a pre-AVX2 core (a fallback) on a CPU with AVX-512 (F, CD, BW, DQ, VL: "Cooperlake"
 * with AVX512-BF16, else "SkylakeX") or AVX2 + FMA ("Haswell") is replaced.
 */
export function betterCoreType(core: string, flags: ReadonlySet<string>): string | null {
  if (!PRE_AVX2_CORES.has(core)) return null;
  if (["avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"].every((f) => flags.has(f))) {
    return flags.has("avx512_bf16") ? "Cooperlake" : "SkylakeX";
  }
  return flags.has("avx2") && flags.has("fma") ? "Haswell" : null;
}

/** The CPU's feature flags from /proc/cpuinfo (Linux); empty elsewhere or when unreadable. */
export function cpuFlags(): Set<string> {
  try {
    const line = Deno.readTextFileSync("/proc/cpuinfo").split("\n").find((l) => /^flags\s*:/.test(l));
    return new Set(line ? line.split(":")[1].trim().split(/\s+/) : []);
  } catch {
    return new Set();
  }
}

let cached: Blas | null | undefined;
let lastError = "";

/** Why the last `openBlas()` failed ("" when it succeeded or was not tried). */
export function blasError(): string {
  return lastError;
}

/**
 * Open OpenBLAS once (cached). Returns null when no candidate opens or FFI is not permitted. `threads`
 * (default env `FER_THREADS`, else the library's own default) sets the OpenBLAS thread count.
 */
export function openBlas(threads?: number): Blas | null {
  if (cached !== undefined) {
    if (cached && threads) cached.setThreads(threads);
    return cached;
  }
  const errors: string[] = [];
  for (const path of blasCandidates()) {
    if (path.startsWith("/")) {
      try {
        Deno.statSync(path);
      } catch {
        continue;
      }
    }
    let lib;
    try {
      lib = Deno.dlopen(path, SYMBOLS);
    } catch (e) {
      errors.push(`${path}: ${(e as Error).message}`);
      continue;
    }
    cached = wrap(lib, path);
    // an OpenBLAS older than the CPU: reopen it with the core that matches the CPU (see the module comment)
    const better = Deno.env.get("OPENBLAS_CORETYPE") ? null : betterCoreType(cached.core, cpuFlags());
    if (better) {
      const fallback = cached.core;
      lib.close();
      Deno.env.set("OPENBLAS_CORETYPE", better);
      lib = Deno.dlopen(path, SYMBOLS);
      cached = wrap(lib, path);
      if (cached.core === better) cached.fallbackCore = fallback;
      else cached.wantedCore = better;
    }
    const t = threads ?? Number(Deno.env.get("FER_THREADS") ?? 0);
    if (t > 0) cached.setThreads(t);
    lastError = "";
    return cached;
  }
  lastError = errors.length ? errors.join("; ") : "no candidate path exists";
  cached = null;
  return null;
}

function wrap(lib: Deno.DynamicLibrary<typeof SYMBOLS>, path: string): Blas {
  const s = lib.symbols;
  let config = "";
  if (s.openblas_get_config) {
    const p = s.openblas_get_config();
    if (p) config = new Deno.UnsafePointerView(p).getCString();
  }
  const blas: Blas = {
    path,
    core: coreOfConfig(config),
    fallbackCore: "",
    wantedCore: "",
    threads: s.openblas_get_num_threads ? s.openblas_get_num_threads() : 1,
    config,
    sgemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc) {
      if (m === 0 || n === 0) return;
      s.cblas_sgemm(
        CblasRowMajor,
        transA ? CblasTrans : CblasNoTrans,
        transB ? CblasTrans : CblasNoTrans,
        m,
        n,
        k,
        alpha,
        a,
        lda,
        b,
        ldb,
        beta,
        c,
        ldc,
      );
    },
    setThreads(n: number) {
      if (s.openblas_set_num_threads && n > 0) {
        s.openblas_set_num_threads(n);
        blas.threads = s.openblas_get_num_threads ? s.openblas_get_num_threads() : n;
      }
    },
  };
  return blas;
}
