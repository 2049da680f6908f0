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
