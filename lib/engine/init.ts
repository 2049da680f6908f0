/**
 * Compute-engine selection: picks the fastest TF.js backend available and makes it current.
 *
 * Order: `tensorflow` (tfjs-node-gpu, then tfjs-node: optional, loaded by guarded dynamic import and never
 * required), `webgpu` (tfjs-backend-webgpu on Deno's navigator.gpu, lib/engine/webgpu.ts; chosen automatically
 * only on a hardware GPU adapter), `native` (cpu backend + oneDNN convolutions and OpenBLAS GEMMs through Deno
 * FFI, lib/engine/native.ts; oneDNN is optional), `wasm` (XNNPACK, plus the JS gradient kernels it lacks,
 * lib/engine/wasm_grads.ts), then `cpu`. Env `FER_BACKEND`
 * or the `name` argument forces one; `FER_THREADS` sets the thread count where the engine supports it.
 */
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import { blasError, blasInstallHint, openBlas } from "./blas.ts";
import { NATIVE, nativeDnnl, registerNative } from "./native.ts";
import { dnnlError } from "./dnnl.ts";
import type { Precision } from "./dnnl/core.ts";
import { registerWasmGrads } from "./wasm_grads.ts";
import { describeAdapter, setWebgpuBackend } from "./webgpu.ts";
import { provisionNative } from "./provision.ts";

/** Engine names in order of preference. */
export const ENGINES = ["tensorflow", "webgpu", "native", "wasm", "cpu"] as const;

/** What {@link describeEngine} reports. */
export type EngineInfo = {
  name: string;
  threads: number;
  /** Shared library behind the engine (OpenBLAS path for native), "" when none. */
  library: string;
  /** Extra detail (OpenBLAS config, wasm flavour), "" when none. */
  detail: string;
};

let current: EngineInfo | null = null;
let hinted = false;

function envThreads(): number | undefined {
  const t = Number(Deno.env.get("FER_THREADS") ?? "");
  return Number.isFinite(t) && t > 0 ? t : undefined;
}

async function tryTensorflow(): Promise<EngineInfo | null> {
  // Specifiers are built at run time so nothing resolves or installs them unless this branch runs; both
  // packages need a native TensorFlow install and are optional.
  // Only packages already installed are tried, so an absent one is never fetched from the registry.
  const root = new URL("../../node_modules/", import.meta.url);
  for (const pkg of ["@tensorflow/tfjs-node-gpu", "@tensorflow/tfjs-node"]) {
    try {
      Deno.statSync(new URL(pkg, root));
      await import(["npm:", pkg].join(""));
      if (tf.findBackendFactory("tensorflow") && (await tf.setBackend("tensorflow"))) {
        return { name: "tensorflow", threads: navigator.hardwareConcurrency ?? 1, library: pkg, detail: "" };
      }
    } catch {
      // not installed / cannot load: try the next engine
    }
  }
  return null;
}

let hintedDnnl = false;
let hintedCore = false;

async function tryNative(): Promise<EngineInfo | null> {
  await provisionNative(); // installs or unpacks OpenBLAS/oneDNN when missing (FER_NO_PROVISION=1: off)
  let blas;
  try {
    blas = registerNative(envThreads());
  } catch (e) {
    console.warn(`native engine unavailable: ${(e as Error).message}`);
    return null;
  }
  if (!blas) {
    if (!hinted) console.warn(blasInstallHint());
    hinted = true;
    return null;
  }
  if (!(await tf.setBackend(NATIVE))) return null;
  const dnnl = nativeDnnl();
  if (!dnnl && !hintedDnnl && Deno.env.get("FER_DNNL") !== "0") {
    console.warn(
      `native engine: convolutions on OpenBLAS (oneDNN not loaded: ${dnnlError()}; ` +
        "apt install libdnnl2 for PyTorch's convolution kernels)",
    );
    hintedDnnl = true;
  }
  if (blas.wantedCore && !hintedCore) {
    console.warn(
      `native engine: OpenBLAS uses its generic ${blas.core} kernels on a CPU with ${blas.wantedCore}'s ` +
        `instructions (SGEMM several times slower); set OPENBLAS_CORETYPE=${blas.wantedCore} before starting`,
    );
    hintedCore = true;
  }
  // the OpenBLAS core when it is not OpenBLAS's own choice (lib/engine/blas.ts: a CPU newer than the library)
  const core = blas.fallbackCore ? ` (${blas.core} kernels, not the fallback ${blas.fallbackCore})` : "";
  const library = dnnl ? `${blas.path}${core}, oneDNN ${dnnl.version} ${dnnl.path}` : `${blas.path}${core}`;
  return { name: NATIVE, threads: blas.threads, library, detail: blas.config };
}

/** Directory holding the tfjs-backend-wasm binaries (node_modules, deno.json has nodeModulesDir auto). */
export function wasmDir(): string {
  const env = Deno.env.get("FER_WASM_DIR");
  if (env) return env.endsWith("/") ? env : env + "/";
  const root = new URL("../../", import.meta.url);
  return new URL("node_modules/@tensorflow/tfjs-backend-wasm/dist/", root).pathname;
}

async function tryWasm(): Promise<EngineInfo | null> {
  try {
    const wasm = await import("@tensorflow/tfjs-backend-wasm");
    if (!tf.findBackend("wasm")) {
      try {
        wasm.setWasmPaths(wasmDir());
      } catch {
        // already initialised: paths are fixed
      }
    }
    registerWasmGrads();
    if (!(await tf.setBackend("wasm"))) return null;
    await tf.ready();
    return { name: "wasm", threads: 1, library: wasmDir(), detail: "" };
  } catch (e) {
    console.warn(`wasm engine unavailable: ${(e as Error).message}`);
    return null;
  }
}

async function tryCpu(): Promise<EngineInfo | null> {
  await tf.setBackend("cpu");
  return { name: "cpu", threads: 1, library: "", detail: "" };
}

/** WebGPU: forced (`FER_BACKEND=webgpu`) on any adapter; automatic only on a hardware one (quietly skipped). */
async function tryWebgpu(forced: boolean): Promise<EngineInfo | null> {
  const { adapter, reason } = await setWebgpuBackend({ auto: !forced });
  if (!adapter) {
    if (forced) console.warn(`webgpu engine unavailable: ${reason}`);
    return null;
  }
  return {
    name: "webgpu",
    threads: 1,
    library: describeAdapter(adapter),
    detail: adapter.fallback ? "software" : "",
  };
}

const TRY: Record<string, (forced: boolean) => Promise<EngineInfo | null>> = {
  tensorflow: tryTensorflow,
  webgpu: tryWebgpu,
  native: tryNative,
  wasm: tryWasm,
  cpu: tryCpu,
};

/**
 * Pick and activate the engine: `name` (or env `FER_BACKEND`) forces one (an unknown name is an error; an
 * unavailable one falls back down the list with a warning); otherwise the first available of
 * tensorflow, webgpu (hardware adapters only), native, wasm, cpu. Returns its name and thread count.
 */
export async function initEngine(name?: string): Promise<{ name: string; threads: number }> {
  const want = (name ?? Deno.env.get("FER_BACKEND") ?? "").trim().toLowerCase();
  let order: string[] = [...ENGINES];
  if (want) {
    if (!(want in TRY)) {
      throw new Error(
        `unknown engine "${want}" (FER_BACKEND / --engine): expected one of ${ENGINES.join(", ")}`,
      );
    }
    order = [want, ...ENGINES.slice(ENGINES.indexOf(want as typeof ENGINES[number]) + 1)];
  }
  for (const e of order) {
    const info = await TRY[e](e === want);
    if (info) {
      // The cpu backend (and ours, which extends it) prints a "you are running TensorFlow.js in Node.js"
      // banner on first use that points to tfjs-node; the engine line printed by callers replaces it.
      const b = tf.backend() as unknown as { firstUse?: boolean };
      if (b.firstUse) b.firstUse = false;
      if (want && e !== want) console.warn(`engine "${want}" unavailable; using "${e}"`);
      current = info;
      return { name: info.name, threads: info.threads };
    }
  }
  throw new Error("no TF.js engine could be initialised");
}

/** The active engine (after {@link initEngine}): name, threads, library path, detail. */
export function describeEngine(): EngineInfo {
  if (current && tf.getBackend() === current.name) return { ...current };
  const name = tf.getBackend();
  return { name, threads: 1, library: "", detail: "" };
}

/** One line for logs, e.g. `native (2 threads, /usr/lib/x86_64-linux-gnu/libopenblas.so.0)`. */
export function engineSummary(): string {
  const e = describeEngine();
  if (e.name === "webgpu") return `webgpu on ${e.library}`;
  return `${e.name} (${e.threads} thread${e.threads === 1 ? "" : "s"}${e.library ? `, ${e.library}` : ""})`;
}

/** Arithmetic of training steps: float32, or bfloat16 convolutions and dense layers (lib/engine/dnnl/). */
export type { Precision };
/** The precisions a run may ask for. */
export const PRECISIONS: readonly Precision[] = ["float32", "bfloat16"];

/**
 * Sets the arithmetic of the active engine's convolutions and dense layers: `bfloat16` runs them with bfloat16
 * inputs and float32 accumulation where the native engine has oneDNN's hardware bfloat16 kernels (AMX or
 * AVX-512 BF16; depthwise convolutions excepted, lib/engine/dnnl/conv.ts); everything else stays float32.
 * Returns the precision in effect and, when it is not the one asked for, why.
 */
export function setPrecision(p: Precision): { precision: Precision; reason: string } {
  if (p === "float32") {
    nativeDnnl()?.setPrecision("float32"); // whichever engine is active now: nothing stays in bfloat16
    return { precision: p, reason: "" };
  }
  const dnnl = tf.getBackend() === NATIVE ? nativeDnnl() : null;
  if (!dnnl) {
    const reason = tf.getBackend() === NATIVE
      ? "oneDNN is not loaded (the native engine's bfloat16 kernels are oneDNN's)"
      : `the ${tf.getBackend()} engine computes in float32 only`;
    return { precision: "float32", reason };
  }
  if (!dnnl.setPrecision(p)) {
    return {
      precision: "float32",
      reason: "oneDNN has no hardware bfloat16 kernels on this CPU (no AMX or AVX-512 BF16)",
    };
  }
  return { precision: p, reason: "" };
}

/** Whether OpenBLAS can be opened (for tests that need it), and why not. */
export function nativeAvailable(): { ok: boolean; reason: string } {
  const b = openBlas();
  return b ? { ok: true, reason: "" } : { ok: false, reason: `${blasInstallHint()} [${blasError()}]` };
}
