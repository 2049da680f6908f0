/**
 * Mixup (Zhang et al. 2018): each training batch is replaced by `λ·x + (1 − λ)·x[perm]` and the loss by
 * `λ·L(ŷ, y) + (1 − λ)·L(ŷ, y[perm])`, with λ ~ Beta(α, α). The draw of a step comes from a generator seeded by
 * the run's mixup stream (lib/util/rng.ts `RunRandom.mixupSeed`), so a resumed run redraws it exactly.
 */
import * as tf from "@tensorflow/tfjs-core";
import { randomBeta } from "d3-random";
import { mulberry32, shuffleInPlace } from "../util/rng.ts";

/** One batch's mixup draw: the weight λ ~ Beta(α, α) and the partner permutation. */
export type MixupDraw = { lambda: number; perm: Int32Array };

/** Draws λ (d3-random's Beta sampler) and a permutation from a generator seeded with `seed`. */
export function mixupDraw(b: number, alpha: number, seed: number): MixupDraw {
  const rand = mulberry32(seed);
  const lambda = randomBeta.source(rand)(alpha, alpha)();
  const perm = shuffleInPlace(Int32Array.from({ length: b }, (_, i) => i), rand);
  return { lambda, perm };
}

/** `λ·x + (1 − λ)·x[perm]` along the batch axis (a new tensor; `x` is not disposed). */
export function mixBatch(x: tf.Tensor4D, mix: MixupDraw): tf.Tensor4D {
  return tf.tidy(() =>
    tf.add(tf.mul(x, mix.lambda), tf.mul(tf.gather(x, mix.perm), 1 - mix.lambda)) as tf.Tensor4D
  );
}
