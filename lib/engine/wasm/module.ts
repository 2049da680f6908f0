/** Compiling the engine's WebAssembly SIMD modules (optim.ts, depthwise.ts) from their committed bytes. */

/** The module whose bytes are `base64`, or null where WebAssembly SIMD is unavailable. */
export function simdModule(base64: string): WebAssembly.Module | null {
  try {
    const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
    return WebAssembly.validate(bytes) ? new WebAssembly.Module(bytes) : null;
  } catch {
    return null;
  }
}
