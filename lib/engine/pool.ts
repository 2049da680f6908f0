/**
 * Output buffers recycled between kernels and steps (the `native` backend's memory reuse).
 *
 * Why: a training step allocates the same few hundred activation and gradient arrays every time, and every
 * fresh `Float32Array` of a few megabytes costs page faults that, on the virtual machines this project runs on,
 * were measured at 10–40× the cost of the convolution writing into it (a 1×1 convolution 24 → 144 channels on
 * 32×24×24: 15–21 ms into a fresh array, 0.4 ms into a reused one; `tests/bench/micro_conv.ts`). TF.js's cpu
 * backend has no allocator to hook, so the native backend keeps the arrays of disposed tensors here, by exact
 * length, and its kernels take their outputs from here.
 *
 * Safety: only arrays this pool handed out are ever recycled, and only when the backend drops the last tensor
 * that holds them. An array that leaves the backend — read by `dataSync()` / `data()` / `bufferSync()`, or
 * registered under two tensors — is forgotten for good, so user code never sees its data change. Arrays taken
 * from the pool hold stale values: kernels that accumulate must ask for {@link BufferPool.zeros}.
 */

import * as tf from "@tensorflow/tfjs-core";

/** Arrays shorter than this are left to V8 (small allocations are cheap and would only crowd the pool). */
export const MIN_POOLED = 4096;

/**
 * Default cap on idle pooled bytes: half the machine's memory, at most 16 GiB; `FER_POOL_MB` sets it,
 * `FER_POOL=0` turns pooling off. At the end of a step every activation and gradient is idle, so the cap must
 * hold a whole step's working set, or the next step allocates afresh what was evicted. EfficientNet-B3 at
 * 224 px, batch 16, two threads (`deno run -A tests/bench/step_split.ts efficientnet_b3@224 16 6`, 2026-11-30):
 * with a 5.9 GB cap 74 arrays a step were fresh, steps took 2.0–3.0 s and RSS grew 6.8 → 7.4 GB (the arrays
 * that are not reused fragment the malloc heap); with 12 GB none were, steps took 1.5–1.7 s and RSS stayed
 * at 6.8 GB. Idle arrays are memory the process touched anyway; the cap only bounds arrays of lengths that stop
 * recurring (other batch sizes), and those go first: eviction takes the least recently released length.
 */
function defaultCap(): number {
  let cap = 16 * 2 ** 30;
  try {
    if (Deno.env.get("FER_POOL") === "0") return 0;
    const mb = Number(Deno.env.get("FER_POOL_MB") ?? "");
    if (Number.isFinite(mb) && mb >= 0 && Deno.env.get("FER_POOL_MB")) return mb * 2 ** 20;
    cap = Math.min(cap, Deno.systemMemoryInfo().total / 2);
  } catch {
    // no env / sys permission: the default
  }
  return cap;
}

/** A pool of float32 arrays keyed by length (see the module comment for when an array may be reused). */
export class BufferPool {
  #free = new Map<number, Float32Array[]>();
  #owned = new WeakSet<Float32Array>();
  #live = new WeakSet<Float32Array>();
  #idleBytes = 0;
  /** Counters for tests and the bench: arrays handed out fresh / reused, released, forgotten, evicted by the cap. */
  readonly stats = { fresh: 0, reused: 0, released: 0, escaped: 0, evicted: 0 };

  /** Most idle bytes kept (0 disables pooling: every take is a fresh array). */
  capBytes: number;
  /** Fill every reused array with NaN before handing it out (tests: a kernel that reads its output is caught). */
  poison = false;

  constructor(capBytes = defaultCap()) {
    this.capBytes = capBytes;
  }

  /** An array of length `n` with unspecified contents (stale values of an earlier tensor when reused). */
  take(n: number): Float32Array {
    return this.#take(n)[0];
  }

  /** An array of length `n` filled with zeros (a fresh array already is; a reused one is cleared). */
  zeros(n: number): Float32Array {
    const [a, reused] = this.#take(n);
    return reused ? a.fill(0) : a;
  }

  #take(n: number): [Float32Array, boolean] {
    if (this.capBytes === 0 || n < MIN_POOLED) return [new Float32Array(n), false];
    const list = this.#free.get(n);
    const a = list?.pop();
    if (list && !list.length) this.#free.delete(n); // eviction below never meets an empty length
    if (a) {
      this.#idleBytes -= a.byteLength;
      this.stats.reused++;
      if (this.poison) a.fill(NaN);
    } else {
      this.stats.fresh++;
    }
    const out = a ?? new Float32Array(n);
    this.#owned.add(out);
    return [out, a !== undefined];
  }

  /** A tensor now holds `values` (backend `write` / `move`); a second holder makes the array escape. */
  held(values: unknown): void {
    if (!(values instanceof Float32Array) || !this.#owned.has(values)) return;
    if (this.#live.has(values)) this.escape(values);
    else this.#live.add(values);
  }

  /** `values` left the backend (read by user code, or shared): never recycle it. */
  escape(values: unknown): void {
    if (!(values instanceof Float32Array) || !this.#owned.has(values)) return;
    this.#owned.delete(values);
    this.#live.delete(values);
    this.stats.escaped++;
  }

  /**
   * The last tensor holding `values` was disposed: keep the array for reuse. Over the cap, the least recently
   * released lengths are evicted first (the oldest array of that length), so a step's recurring arrays stay.
   */
  release(values: unknown): void {
    if (!(values instanceof Float32Array) || !this.#live.has(values)) return;
    this.#live.delete(values);
    if (values.byteLength > this.capBytes) {
      this.#owned.delete(values);
      return;
    }
    // re-insert the length so that Map order is least recently released first
    const list = this.#free.get(values.length) ?? [];
    this.#free.delete(values.length);
    list.push(values);
    this.#free.set(values.length, list);
    this.#idleBytes += values.byteLength;
    this.stats.released++;
    while (this.#idleBytes > this.capBytes) {
      const [n, oldest] = this.#free.entries().next().value!;
      const gone = oldest.shift();
      if (!oldest.length) this.#free.delete(n);
      if (!gone) continue;
      this.#owned.delete(gone);
      this.#idleBytes -= gone.byteLength;
      this.stats.evicted++;
    }
  }

  /** Give a scratch array from {@link take} straight back (it never became a tensor). */
  recycle(values: Float32Array): void {
    if (!this.#owned.has(values) || this.#live.has(values)) return;
    this.#live.add(values);
    this.release(values);
  }

  /** Idle bytes held now. */
  get idleBytes(): number {
    return this.#idleBytes;
  }

  /** Drop every idle array (pooling goes on; set {@link capBytes} to 0 to stop it). */
  clear(): void {
    this.#free.clear();
    this.#idleBytes = 0;
  }
}

/** A backend that may carry a pool (the native backend does). */
type MaybePooled = { pool?: BufferPool };

/** An output array of length `n` for a kernel on `backend`: from its pool when it has one; contents unspecified. */
export function outArray(backend: unknown, n: number): Float32Array {
  const pool = (backend as MaybePooled | null)?.pool;
  return pool ? pool.take(n) : new Float32Array(n);
}

/** A zero-filled output array of length `n` for a kernel on `backend` (from its pool when it has one). */
export function zeroArray(backend: unknown, n: number): Float32Array {
  const pool = (backend as MaybePooled | null)?.pool;
  return pool ? pool.zeros(n) : new Float32Array(n);
}

/** The output allocator the oneDNN primitives take (`Alloc` in dnnl/core.ts) for a kernel on `backend`. */
export function allocOn(backend: unknown): (n: number) => Float32Array {
  return (n) => outArray(backend, n);
}

/** Return a scratch array taken with {@link outArray} straight to `backend`'s pool (no-op without one). */
export function recycleOn(backend: unknown, values: Float32Array): void {
  (backend as MaybePooled | null)?.pool?.recycle(values);
}

/**
 * The float32 values of `t`, to read right now (a host-side optimizer reading gradients and weights). On a
 * pooled backend this is the tensor's own array, not a copy, and unlike `dataSync()` it stays in the pool's
 * reach: do not keep it past `t`'s disposal and never write to it. Elsewhere, or for another dtype, it is
 * `dataSync()`.
 *
 * Why: the optimizer reads every gradient and weight once per step. Through `dataSync()` each of those arrays
 * escaped the pool, so every step allocated all of them afresh (tens of megabytes of first-touch memory).
 */
export function readView(t: tf.Tensor): Float32Array {
  const backend = tf.engine().backend as unknown as MaybePooled & {
    data?: { get(id: object): { values?: unknown } | undefined };
  };
  if (backend.pool && t.dtype === "float32" && !t.isDisposed) {
    const v = backend.data?.get(t.dataId)?.values;
    if (v instanceof Float32Array && v.length === t.size) return v;
  }
  return t.dataSync() as Float32Array;
}
