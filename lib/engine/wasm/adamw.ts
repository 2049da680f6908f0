/**
 * The AdamW update on WebAssembly SIMD: the moments live in the module's memory, the weights and gradients are
 * copied in and the new weights out, and four float32 lanes are updated per instruction.
 *
 * Why hand-written: AdamW's host loop (lib/train/optim.ts) is the torch 1.13 update with every operation
 * rounded to float32 (`Math.fround`); V8 runs it as scalar double code at about 9 ns a parameter, which was
 * 230–260 ms of a 1.3 s ConvNeXt-Tiny step on one thread. WebAssembly's f32x4 add / mul / div / sqrt are the
 * same correctly rounded float32 operations, in the same order, so the result is bit for bit the host loop's
 * (tests/engine/wasm_adamw_test.ts), four lanes at a time. No library provides this update; oneDNN has no
 * optimizer, and a chain of its element-wise primitives would read and write every array ten times.
 *
 * The module is `adamw.wat` in this folder, compiled with wabt (`npm:wabt`); the test recompiles it and checks
 * the bytes below.
 */

/** `adamw.wat` compiled (wabt 1.0.37, `parseWat(…, { simd: true }).toBinary({})`), base64. */
export const ADAMW_WASM_BASE64 =
  "AGFzbQEAAAABEgFgDn9/f39/f319fX19fX19AAMCAQAFAwEAAQcSAgZtZW1vcnkCAAVhZGFtdwAACusBAegBAgJ/DHsgBv0TIRAgB/0TIREgCP0TIRIgCf0TIRMgCv0TIRQgC/0TIRUgDP0TIRYgDf0TIRcgBUECdCEPQQAhDgJAA0AgDiAPTw0BIAEgDmr9AAQAIRggAiAOav0ABAAgEf3mASAYIBL95gH95AEhGSADIA5q/QAEACAT/eYBIBggGP3mASAU/eYB/eQBIRogAiAOaiAZ/QsEACADIA5qIBr9CwQAIBr94wEgFf3nASAW/eQBIRsgBCAOaiAAIA5q/QAEACAQ/eYBIBkgG/3nASAX/eYB/eQB/QsEACAOQRBqIQ4MAAsLCw==";

/** The float32 factors of one AdamW step (as lib/train/optim.ts computes them). */
export interface AdamWFactors {
  decay: number;
  b1: number;
  a1: number;
  b2: number;
  a2: number;
  bc2Sqrt: number;
  eps: number;
  negStep: number;
}

type AdamWFn = (
  w: number,
  g: number,
  m: number,
  v: number,
  out: number,
  n: number,
  decay: number,
  b1: number,
  a1: number,
  b2: number,
  a2: number,
  bc2Sqrt: number,
  eps: number,
  negStep: number,
) => void;

/** Most bytes the module's memory may take (wasm32 addresses 4 GiB; stay well below). */
const MAX_BYTES = 2 ** 31;

const round4 = (n: number) => (n + 3) & ~3;

let compiled: WebAssembly.Module | null | undefined;

/** The compiled module, or null where WebAssembly SIMD is unavailable. */
function module(): WebAssembly.Module | null {
  if (compiled !== undefined) return compiled;
  try {
    const bytes = Uint8Array.from(atob(ADAMW_WASM_BASE64), (c) => c.charCodeAt(0));
    compiled = WebAssembly.validate(bytes) ? new WebAssembly.Module(bytes) : null;
  } catch {
    compiled = null;
  }
  return compiled;
}

/**
 * The moments of a list of parameters in WebAssembly memory and the update over them. `m(i)` / `v(i)` are
 * views of parameter i's moments (zero at first), valid for the object's life.
 */
export class WasmAdamW {
  readonly #fn: AdamWFn;
  readonly #f32: Float32Array;
  readonly #mOff: number[] = [];
  readonly #vOff: number[] = [];
  readonly #sizes: number[];
  readonly #w: number;
  readonly #g: number;
  readonly #out: number;

  /** The update for parameters of these sizes, or null (no SIMD, or more memory than wasm32 allows). */
  static create(sizes: number[]): WasmAdamW | null {
    const mod = module();
    if (!mod) return null;
    const total = sizes.reduce((s, n) => s + 2 * round4(n), 0) + 3 * round4(Math.max(0, ...sizes));
    if (total * 4 > MAX_BYTES) return null;
    return new WasmAdamW(mod, sizes, total);
  }

  private constructor(mod: WebAssembly.Module, sizes: number[], totalFloats: number) {
    const inst = new WebAssembly.Instance(mod);
    const mem = inst.exports.memory as WebAssembly.Memory;
    const pages = Math.ceil((totalFloats * 4) / 65536);
    if (pages > mem.buffer.byteLength / 65536) mem.grow(pages - mem.buffer.byteLength / 65536);
    this.#fn = inst.exports.adamw as unknown as AdamWFn;
    this.#f32 = new Float32Array(mem.buffer);
    this.#sizes = sizes;
    let at = 0; // in floats
    for (const n of sizes) {
      this.#mOff.push(at);
      at += round4(n);
      this.#vOff.push(at);
      at += round4(n);
    }
    const scratch = round4(Math.max(0, ...sizes));
    [this.#w, this.#g, this.#out] = [at, at + scratch, at + 2 * scratch];
  }

  /** Parameter i's first moment (a view of the module's memory). */
  m(i: number): Float32Array {
    return this.#f32.subarray(this.#mOff[i], this.#mOff[i] + this.#sizes[i]);
  }

  /** Parameter i's second moment (a view of the module's memory). */
  v(i: number): Float32Array {
    return this.#f32.subarray(this.#vOff[i], this.#vOff[i] + this.#sizes[i]);
  }

  /** One update of parameter i: weights `w` and gradient `g` in, the new weights written to `out`. */
  step(i: number, w: Float32Array, g: Float32Array, out: Float32Array, k: AdamWFactors): void {
    const n = this.#sizes[i];
    this.#f32.set(w.subarray(0, n), this.#w);
    this.#f32.set(g.subarray(0, n), this.#g);
    this.#fn(
      this.#w * 4,
      this.#g * 4,
      this.#mOff[i] * 4,
      this.#vOff[i] * 4,
      this.#out * 4,
      round4(n),
      k.decay,
      k.b1,
      k.a1,
      k.b2,
      k.a2,
      k.bc2Sqrt,
      k.eps,
      k.negStep,
    );
    out.set(this.#f32.subarray(this.#out, this.#out + n));
  }
}
