/**
 * Seeded pseudo-random numbers. Hand-written because the generator must be tiny, fast and reproducible across
 * runs and processes (resume depends on it); Math.random cannot be seeded.
 */

/** A seeded generator of floats in [0, 1) whose `state()` restarts it: `mulberry32(r.state())` continues `r`. */
export type SeededRandom = (() => number) & { state(): number };

/** A mulberry32 generator: returns a function yielding floats in [0, 1), with its state (see {@link SeededRandom}). */
export function mulberry32(seed: number): SeededRandom {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return Object.assign(next, { state: () => a });
}

/** Mixes several integers into one 32-bit seed (e.g. base seed and epoch). */
export function mixSeed(...parts: number[]): number {
  let h = 0x811c9dc5;
  for (const p of parts) {
    h = Math.imul(h ^ (p >>> 0), 0x01000193) >>> 0;
    h = Math.imul(h ^ (h >>> 13), 0x5bd1e995) >>> 0;
  }
  return h >>> 0;
}

/** Fisher–Yates shuffle in place with the given generator; returns the array. */
export function shuffleInPlace<T extends { length: number; [i: number]: unknown }>(
  arr: T,
  rand: () => number,
): T {
  for (let i = arr.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    const t = arr[i];
    arr[i] = arr[j];
    arr[j] = t;
  }
  return arr;
}

/**
 * The random streams of a training run, all derived from its one seed. Each is a pure function of (seed,
 * purpose, epoch), so a resumed run redraws exactly what an uninterrupted one would. (The augmentation and the
 * validation split take the seed itself: lib/data/augment.ts, lib/data/dataset.ts.)
 */
export class RunRandom {
  constructor(readonly seed: number) {}
  /** Weight initialisation. */
  init(): () => number {
    return mulberry32(mixSeed(this.seed, 0x6d6f64));
  }
  /** The seed of an epoch's batch order (for `batches`). */
  orderSeed(epoch: number): number {
    return mixSeed(this.seed, epoch);
  }
  /**
   * The draws tfjs makes inside an epoch's training steps (dropout masks); `state`, a `state()` of this stream
   * saved inside the epoch, continues it from there (a resume in the middle of an epoch).
   */
  steps(epoch: number, state?: number): SeededRandom {
    return mulberry32(state ?? mixSeed(this.seed, epoch, 0x64726f70));
  }
  /** The seed of a training step's mixup draw (lib/train/mixup.ts). */
  mixupSeed(epoch: number, step: number): number {
    return mixSeed(this.seed, epoch, step, 0x6d6978);
  }
}

/**
 * Runs `fn` with `Math.random` replaced by `rand` and restores it when `fn` (or the promise it returns) settles,
 * also on failure. This is the one place the global is swapped: tfjs draws its unseeded randomness (initialisers
 * without a seed, dropout masks through `tf.randomUniform`) from `Math.random`, and its layers take no generator
 * per call. While an asynchronous `fn` awaits, other code would draw from `rand` too, so the caller must not run
 * anything random concurrently (the training loop runs alone).
 */
export function withRandom<T>(rand: () => number, fn: () => T): T {
  const real = Math.random;
  Math.random = rand;
  let result: T;
  try {
    result = fn();
  } catch (e) {
    Math.random = real;
    throw e;
  }
  if (result instanceof Promise) {
    return result.finally(() => {
      if (Math.random === rand) Math.random = real;
    }) as T;
  }
  Math.random = real;
  return result;
}
