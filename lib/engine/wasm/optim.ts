/**
 * The optimizers' updates on WebAssembly SIMD: each parameter's state (AdamW's moments, SGD's momentum buffer)
 * lives in the module's memory, the weights and gradients are copied in and the new weights out, and four
 * float32 lanes are updated per instruction.
 *
 * Why hand-written: the host loops in lib/train/optim.ts are torch 1.13's updates with every operation rounded
 * to float32 (`Math.fround`); V8 runs them as scalar double code, AdamW at about 9 ns a parameter, which was
 * 230–260 ms of a 1.3 s ConvNeXt-Tiny step on one thread. WebAssembly's f32x4 add / mul / div / sqrt are the
 * same correctly rounded float32 operations, in the same order, so the results are bit for bit the host
 * loops' (tests/engine/wasm_optim_test.ts), four lanes at a time. No library provides these updates; oneDNN
 * has no optimizer, and a chain of its element-wise primitives would read and write every array ten times.
 *
 * The module is `optim.wat` in this folder, compiled with wabt (`npm:wabt`); the test recompiles it and checks
 * the bytes below.
 */
import { simdModule } from "./module.ts";

/** `optim.wat` compiled (wabt 1.0.37, `parseWat(…, { simd: true }).toBinary({})`), base64. */
export const OPTIM_WASM_BASE64 =
  "AGFzbQEAAAABHwJgDn9/f39/f319fX19fX19AGAKf39/f399fX19fwADAwIAAQUDAQABBxgDBm1lbW9yeQIABWFkYW13AAADc2dkAAEKnAMC6AECAn8MeyAG/RMhECAH/RMhESAI/RMhEiAJ/RMhEyAK/RMhFCAL/RMhFSAM/RMhFiAN/RMhFyAFQQJ0IQ9BACEOAkADQCAOIA9PDQEgASAOav0ABAAhGCACIA5q/QAEACAR/eYBIBggEv3mAf3kASEZIAMgDmr9AAQAIBP95gEgGCAY/eYBIBT95gH95AEhGiACIA5qIBn9CwQAIAMgDmogGv0LBAAgGv3jASAV/ecBIBb95AEhGyAEIA5qIAAgDmr9AAQAIBD95gEgGSAb/ecBIBf95gH95AH9CwQAIA5BEGohDgwACwsLrwECAn8HeyAF/RMhDCAG/RMhDSAH/RMhDiAI/RMhDyAEQQJ0IQtBACEKAkADQCAKIAtPDQEgACAKav0ABAAhECABIApq/QAEACAQIAz95gH95AEhESACIApq/QAEACAN/eYBIBEgDv3mAf3kASESIAIgCmogEv0LBAAgCQR7IBEgEiAN/eYB/eQBBSASCyERIAMgCmogECARIA/95gH95AH9CwQAIApBEGohCgwACwsL";

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

/** The float32 factors of one SGD step after the first (weight decay and momentum non-zero). */
export interface SgdFactors {
  wd: number;
  mom: number;
  keep: number;
  negLr: number;
  nesterov: boolean;
}

type Exports = {
  memory: WebAssembly.Memory;
  adamw: (...args: number[]) => void;
  sgd: (...args: number[]) => void;
};

/** Most bytes the module's memory may take (wasm32 addresses 4 GiB; stay well below). */
const MAX_BYTES = 2 ** 31;

const round4 = (n: number) => (n + 3) & ~3;

/** An environment variable, or undefined without env permission. */
function envVar(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined;
  }
}

let compiled: WebAssembly.Module | null | undefined;

/** The compiled module, or null where WebAssembly SIMD is unavailable. */
function module(): WebAssembly.Module | null {
  if (compiled === undefined) compiled = simdModule(OPTIM_WASM_BASE64);
  return compiled;
}

/**
 * Per-parameter optimizer state in WebAssembly memory (`slots` float32 arrays per parameter, zero at first)
 * and the updates over it. `slot(k, i)` is a view of parameter i's k-th state array (AdamW: 0 = m, 1 = v;
 * SGD: 0 = momentum buffer), valid for the object's life.
 */
export class WasmOptimState {
  readonly #x: Exports;
  readonly #f32: Float32Array;
  readonly #off: number[][] = []; // [slot][param], in floats
  readonly #sizes: number[];
  readonly #w: number;
  readonly #g: number;
  readonly #out: number;

  /**
   * State for parameters of these sizes, or null: no SIMD, more memory than wasm32 allows, or `FER_WASM_OPTIM=0`
   * (the optimizers then keep their JS loops).
   */
  static create(sizes: number[], slots: number): WasmOptimState | null {
    if (envVar("FER_WASM_OPTIM") === "0") return null;
    const mod = module();
    if (!mod) return null;
    const total = sizes.reduce((s, n) => s + slots * round4(n), 0) + 3 * round4(Math.max(0, ...sizes));
    if (total * 4 > MAX_BYTES) return null;
    return new WasmOptimState(mod, sizes, slots, total);
  }

  private constructor(mod: WebAssembly.Module, sizes: number[], slots: number, totalFloats: number) {
    this.#x = new WebAssembly.Instance(mod).exports as unknown as Exports;
    const mem = this.#x.memory;
    const have = mem.buffer.byteLength / 65536;
    const pages = Math.ceil((totalFloats * 4) / 65536);
    if (pages > have) mem.grow(pages - have);
    this.#f32 = new Float32Array(mem.buffer);
    this.#sizes = sizes;
    let at = 0;
    for (let k = 0; k < slots; k++) {
      this.#off.push(sizes.map((n) => {
        const o = at;
        at += round4(n);
        return o;
      }));
    }
    const scratch = round4(Math.max(0, ...sizes));
    [this.#w, this.#g, this.#out] = [at, at + scratch, at + 2 * scratch];
  }

  /** Parameter i's k-th state array (a view of the module's memory). */
  slot(k: number, i: number): Float32Array {
    return this.#f32.subarray(this.#off[k][i], this.#off[k][i] + this.#sizes[i]);
  }

  /** Copies weights and gradient in; returns the padded length. */
  #load(i: number, w: Float32Array, g: Float32Array): number {
    const n = this.#sizes[i];
    this.#f32.set(w.subarray(0, n), this.#w);
    this.#f32.set(g.subarray(0, n), this.#g);
    return round4(n);
  }

  #unload(i: number, out: Float32Array): void {
    out.set(this.#f32.subarray(this.#out, this.#out + this.#sizes[i]));
  }

  /** One AdamW update of parameter i (slots 0, 1 = m, v): `w`, `g` in, the new weights into `out`. */
  adamw(i: number, w: Float32Array, g: Float32Array, out: Float32Array, k: AdamWFactors): void {
    const n = this.#load(i, w, g);
    const [m, v] = [this.#off[0][i], this.#off[1][i]];
    this.#x.adamw(
      this.#w * 4,
      this.#g * 4,
      m * 4,
      v * 4,
      this.#out * 4,
      n,
      k.decay,
      k.b1,
      k.a1,
      k.b2,
      k.a2,
      k.bc2Sqrt,
      k.eps,
      k.negStep,
    );
    this.#unload(i, out);
  }

  /** One SGD update of parameter i after its first (slot 0 = momentum buffer). */
  sgd(i: number, w: Float32Array, g: Float32Array, out: Float32Array, k: SgdFactors): void {
    const n = this.#load(i, w, g);
    this.#x.sgd(
      this.#w * 4,
      this.#g * 4,
      this.#off[0][i] * 4,
      this.#out * 4,
      n,
      k.wd,
      k.mom,
      k.keep,
      k.negLr,
      k.nesterov ? 1 : 0,
    );
    this.#unload(i, out);
  }
}
