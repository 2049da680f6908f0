/**
 * The WebGPU engine: TensorFlow.js's `webgpu` backend (`@tensorflow/tfjs-backend-webgpu`, which registers the
 * gradient kernels the study's models need) on Deno's built-in `navigator.gpu` (wgpu: Vulkan, Metal, DX12 or
 * GL underneath; `DENO_WEBGPU_BACKEND` picks one).
 *
 * On the webgpu backend, synchronous reads (`dataSync`, `arraySync`) of tensors that live on the GPU fail
 * under Deno (tfjs reads through OffscreenCanvas): code that may run here reads with `await t.data()`, and only
 * where values leave the device (metrics, checkpoints).
 *
 * The backend package is imported only when this engine is asked for: importing it registers `webgpu` with a
 * higher priority than every other backend.
 */
import * as tf from "@tensorflow/tfjs-core";
import { registerWebgpuGrads } from "./webgpu_grads.ts";

/** What {@link probeAdapter} found. */
export type GpuAdapter = {
  /** Adapter name, e.g. "NVIDIA H200" or "llvmpipe (LLVM 15.0.6, 256 bits)". */
  description: string;
  vendor: string;
  architecture: string;
  /** True for a software adapter (Mesa llvmpipe / lavapipe, WARP): correct, but far slower than a GPU. */
  fallback: boolean;
  /** The graphics API wgpu uses: `DENO_WEBGPU_BACKEND` when set, else wgpu's own choice. */
  api: string;
  /** The limits that bound the tensors and kernels tfjs can run. */
  limits: {
    maxBufferSize: number;
    maxStorageBufferBindingSize: number;
    maxComputeInvocationsPerWorkgroup: number;
    maxComputeWorkgroupStorageSize: number;
  };
};

let probed: Promise<GpuAdapter | null> | null = null;

/**
 * The adapter tfjs's webgpu backend will get (it asks for `high-performance`), or null when Deno has no
 * `navigator.gpu` or it offers no adapter. Probed once per process.
 */
export function probeAdapter(): Promise<GpuAdapter | null> {
  probed ??= (async () => {
    const gpu = (navigator as Navigator & { gpu?: GPU }).gpu;
    if (!gpu) return null;
    let adapter: GPUAdapter | null = null;
    try {
      adapter = await gpu.requestAdapter({ powerPreference: "high-performance" });
    } catch {
      return null;
    }
    if (!adapter) return null;
    const info = adapter.info as GPUAdapterInfo & { isFallbackAdapter?: boolean };
    const legacy = (adapter as GPUAdapter & { isFallbackAdapter?: boolean }).isFallbackAdapter;
    const l = adapter.limits;
    return {
      description: info.description || `vendor ${info.vendor} device ${info.device}`,
      vendor: info.vendor,
      architecture: info.architecture,
      fallback: Boolean(info.isFallbackAdapter ?? legacy),
      api: Deno.env.get("DENO_WEBGPU_BACKEND") || "wgpu default",
      limits: {
        maxBufferSize: l.maxBufferSize,
        maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
        maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
        maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
      },
    };
  })();
  return probed;
}

let probedIsolated: Promise<GpuAdapter | null> | null = null;

/**
 * {@link probeAdapter} in a child process: what the adapter is, without creating one in this process. The
 * automatic engine choice uses it, because an adapter, once made, stays in the process — and Mesa's software
 * GL adapter (llvmpipe, all that a machine without a GPU driver offers) crashed the process later in unrelated
 * code (SIGSEGV in the wasm backend after a GC-heavy run; reproduced with tests/engine/init_test.ts,
 * train_test.ts and wasm_test.ts in one `deno test`). Only a hardware adapter is then made in this process.
 * Costs one short-lived `deno` start (~0.3 s) when `navigator.gpu` exists; probed once per process.
 */
export function probeAdapterIsolated(): Promise<GpuAdapter | null> {
  probedIsolated ??= (async () => {
    if (!(navigator as Navigator & { gpu?: GPU }).gpu) return null;
    const code = `import { probeAdapter } from ${JSON.stringify(import.meta.url)};\n` +
      "console.log(JSON.stringify(await probeAdapter()));";
    try {
      const o = await new Deno.Command(Deno.execPath(), {
        args: ["eval", "--config", new URL("../../deno.json", import.meta.url).pathname, code],
        stdout: "piped",
        stderr: "null",
        signal: AbortSignal.timeout(60_000),
      }).output();
      if (!o.success) return null;
      const lines = new TextDecoder().decode(o.stdout).trim().split("\n");
      return JSON.parse(lines[lines.length - 1]) as GpuAdapter | null;
    } catch {
      return null;
    }
  })();
  return probedIsolated;
}

const mib = (n: number) => `${Math.round(n / 2 ** 20)} MiB`;

/** One line naming the adapter, the API, whether it is a software fallback, and its key limits. */
export function describeAdapter(a: GpuAdapter): string {
  return `${a.description} (${a.api}; ${a.fallback ? "software fallback adapter" : "hardware adapter"}; ` +
    `max buffer ${mib(a.limits.maxBufferSize)}, storage binding ${
      mib(a.limits.maxStorageBufferBindingSize)
    }, ` +
    `${a.limits.maxComputeInvocationsPerWorkgroup} invocations and ` +
    `${a.limits.maxComputeWorkgroupStorageSize / 1024} KiB shared memory per workgroup)`;
}

/**
 * Makes `webgpu` the current tfjs backend. `auto`: only on a hardware adapter (a software one is slower than
 * the CPU engines); forced: on any adapter, with a warning for a software one. Returns the adapter, or null
 * (with the reason) when the engine cannot be used.
 */
export async function setWebgpuBackend(
  { auto = false, warn = console.warn }: { auto?: boolean; warn?: (s: string) => void } = {},
): Promise<{ adapter: GpuAdapter | null; reason: string }> {
  // automatic choice: look from a child process first, so that no software adapter is made in this one
  const seen = auto ? await probeAdapterIsolated() : undefined;
  if (seen === null) {
    return {
      adapter: null,
      reason: "navigator.gpu offers no adapter (no GPU driver / Vulkan loader; see README, GPU engine)",
    };
  }
  if (seen?.fallback) return { adapter: null, reason: `${seen.description} is a software adapter` };
  const adapter = await probeAdapter();
  if (!adapter) {
    return {
      adapter: null,
      reason: "navigator.gpu offers no adapter (no GPU driver / Vulkan loader; see README, GPU engine)",
    };
  }
  if (auto && adapter.fallback) {
    return { adapter: null, reason: `${adapter.description} is a software adapter` };
  }
  await import("@tensorflow/tfjs-backend-webgpu");
  registerWebgpuGrads(); // filter gradients on the backend's matmul and reductions (lib/engine/webgpu_grads.ts)
  if (!(await tf.setBackend("webgpu"))) {
    return { adapter: null, reason: "the tfjs webgpu backend failed to initialise" };
  }
  await tf.ready();
  if (adapter.fallback) {
    warn(
      `webgpu engine: ${adapter.description} is a software adapter (runs on the CPU, much slower than the ` +
        "native engine); fine for correctness checks, not for training",
    );
  }
  return { adapter, reason: "" };
}

/** Whether the current backend keeps tensors in JS memory, where synchronous reads are cheap and safe. */
export function hostBackend(name = tf.getBackend()): boolean {
  return name === "cpu" || name === "native" || name === "wasm";
}
