/**
 * oneDNN (libdnnl, the library PyTorch's CPU convolutions run on) through Deno FFI: 2-D convolutions forward,
 * backward-data and backward-weights, dense or grouped (depthwise), on TF.js's NHWC tensors.
 *
 * Why: with convolutions lowered to OpenBLAS GEMMs (kernels/conv.ts) the reference net trained at 0.28x
 * PyTorch; the convolutions were still ~70% of a step. oneDNN's JIT convolutions (AVX2/AVX-512, blocked
 * weights, OpenMP threads) are what PyTorch itself measures with, and they need no im2col buffers. The
 * OpenBLAS path stays as the fallback when libdnnl is absent or a shape is refused.
 *
 * ABI: oneDNN 2.x C API (Debian/Ubuntu `libdnnl2`, soname libdnnl.so.2); the enum values below are those of
 * its `dnnl_types.h`. oneDNN 3.x changed the descriptor API and is not used. Activations stay NHWC (`nhwc`
 * tag, no reorder); weights are TF.js's [kh, kw, in, out] (`hwio`, grouped `hwigo`) and are reordered to the
 * layout oneDNN picks (`any`) on each call, which is cheap next to the convolution.
 *
 * Split by primitive: the ABI (`dnnl/abi.ts`), the shared context (`dnnl/core.ts`), convolutions
 * (`dnnl/conv.ts`), element-wise ops (`dnnl/eltwise.ts`), batch norm (`dnnl/batchnorm.ts`), layer norm (`dnnl/layernorm.ts`), max pooling
 * and spatial means (`dnnl/pooling.ts`), binary add / sub / mul (`dnnl/binary.ts`) and bfloat16 matmul
 * (`dnnl/matmul.ts`); this module
 * opens the library and hands out the handle.
 */
import { type Lib, SYMBOLS } from "./dnnl/abi.ts";
import { batchNormPrimitives } from "./dnnl/batchnorm.ts";
import { binaryPrimitives } from "./dnnl/binary.ts";
import { layerNormPrimitives } from "./dnnl/layernorm.ts";
import { matmulPrimitives } from "./dnnl/matmul.ts";
import { convolutions } from "./dnnl/conv.ts";
import { createCore } from "./dnnl/core.ts";
import { eltwisePrimitives } from "./dnnl/eltwise.ts";
import { poolingPrimitives } from "./dnnl/pooling.ts";

export { type BinaryAlg, type DnnlGeom, ELTWISE, type EltwiseAlg } from "./dnnl/abi.ts";

/** Library paths to try: only `FER_DNNL_LIB` when set, else the usual Linux locations, then the soname. */
export function dnnlCandidates(): string[] {
  const env = Deno.env.get("FER_DNNL_LIB");
  if (env) return [env];
  if (Deno.build.os !== "linux") return ["libdnnl.2.dylib", "libdnnl.so.2"];
  const arch = Deno.build.arch === "aarch64" ? "aarch64-linux-gnu" : "x86_64-linux-gnu";
  return [
    `/usr/lib/${arch}/libdnnl.so.2`,
    "/usr/lib64/libdnnl.so.2",
    "/usr/local/lib/libdnnl.so.2",
    "libdnnl.so.2",
  ];
}

/**
 * The engine's oneDNN handle: convolutions (dnnl/conv.ts), element-wise ops (dnnl/eltwise.ts) and batch norm
 * (dnnl/batchnorm.ts); each method returns null when oneDNN refuses the case (the caller falls back).
 */
export type Dnnl =
  & {
    path: string;
    version: string;
    /** Implementation oneDNN chose for each primitive created so far (e.g. `brg:avx512_core`). */
    impls(): string[];
    /** Cache keys (kind and geometry) of the primitives created so far. */
    primitives(): string[];
  }
  & ReturnType<typeof convolutions>
  & ReturnType<typeof eltwisePrimitives>
  & ReturnType<typeof batchNormPrimitives>
  & ReturnType<typeof poolingPrimitives>
  & ReturnType<typeof binaryPrimitives>
  & ReturnType<typeof layerNormPrimitives>
  & ReturnType<typeof matmulPrimitives>;

let cached: Dnnl | null | undefined;
let lastError = "";
let enabled = true;

/**
 * Route the native engine's kernels through oneDNN (default) or force their OpenBLAS / JS paths (tests use
 * this to cover both; `FER_DNNL=0` keeps the library from loading at all).
 */
export function setDnnlEnabled(on: boolean): void {
  enabled = on;
}

/** The oneDNN library kernels should use now: loaded by {@link openDnnl} and not switched off; else null. */
export function activeDnnl(): Dnnl | null {
  return enabled && cached ? cached : null;
}

/** Why the last {@link openDnnl} failed ("" when it succeeded or was not tried). */
export function dnnlError(): string {
  return lastError;
}

/**
 * Open oneDNN once (cached); null when unavailable or `FER_DNNL=0`. `threads` (else `FER_THREADS`) sets
 * OMP_NUM_THREADS (and, unless set, OMP_WAIT_POLICY=PASSIVE) before the library loads (its OpenMP runtime reads
 * them once).
 */
export function openDnnl(threads?: number): Dnnl | null {
  if (cached !== undefined) return cached;
  if (Deno.env.get("FER_DNNL") === "0") {
    lastError = "disabled by FER_DNNL=0";
    return cached = null;
  }
  const t = threads ?? Number(Deno.env.get("FER_THREADS") ?? 0);
  if (t > 0 && !Deno.env.get("OMP_NUM_THREADS")) Deno.env.set("OMP_NUM_THREADS", String(t));
  // Idle OpenMP workers sleep instead of spinning: between oneDNN calls the cores are needed by JS kernels and
  // OpenBLAS's own threads, and spinning workers stalled them (ConvNeXt-style net inference, 2 cores:
  // 0.3–0.5 s per batch of 256 with spinning, 0.09–0.12 s passive; tests/bench/overhead.ts).
  if (!Deno.env.get("OMP_WAIT_POLICY") && !Deno.env.get("GOMP_SPINCOUNT")) {
    Deno.env.set("OMP_WAIT_POLICY", "PASSIVE");
  }
  const errors: string[] = [];
  for (const path of dnnlCandidates()) {
    if (path.startsWith("/")) {
      try {
        Deno.statSync(path);
      } catch {
        continue;
      }
    }
    try {
      const lib = Deno.dlopen(path, SYMBOLS);
      cached = create(lib.symbols, path);
      lastError = "";
      return cached;
    } catch (e) {
      errors.push(`${path}: ${(e as Error).message}`);
    }
  }
  lastError = errors.length
    ? errors.join("; ")
    : "libdnnl.so.2 not found (Debian/Ubuntu: apt install libdnnl2)";
  return cached = null;
}

/** The engine's oneDNN handle: one context shared by the primitive modules, one per primitive family. */
function create(s: Lib, path: string): Dnnl {
  const core = createCore(s);
  return {
    path,
    version: core.version,
    ...convolutions(core),
    ...eltwisePrimitives(core),
    ...batchNormPrimitives(core),
    ...poolingPrimitives(core),
    ...binaryPrimitives(core),
    ...layerNormPrimitives(core),
    ...matmulPrimitives(core),
    impls: core.impls,
    primitives: core.primitives,
  };
}
