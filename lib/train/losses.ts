/**
 * Classification losses on logits [b, C] and int32 labels [b], each returning a scalar (mean over the batch).
 * Written with tfjs ops (tfjs-layers' losses take one-hot targets and probabilities, and have no class weights
 * or focal loss); every formula is checked against torch in tests/train/losses_test.ts.
 */
import * as tf from "@tensorflow/tfjs-core";

/** A loss function: (logits [b, C], labels int32 [b]) -> scalar. */
export type LossFn = (logits: tf.Tensor, labels: tf.Tensor) => tf.Scalar;

/** Plain cross-entropy from logits, mean over the batch (torch `F.cross_entropy`). */
export function crossEntropy(logits: tf.Tensor, labels: tf.Tensor): tf.Scalar {
  return tf.tidy(() => {
    const logp = tf.logSoftmax(logits as tf.Tensor2D);
    const oh = tf.oneHot(tf.cast(labels, "int32") as tf.Tensor1D, logits.shape[1]!);
    return tf.neg(tf.mean(tf.sum(tf.mul(oh, logp), 1))) as tf.Scalar;
  });
}

/**
 * Cross-entropy against smoothed targets as the original study's LabelSmoothingLoss defines them: `1 - s` on
 * the true class and `s / (C - 1)` on every other class. This differs from torch's `label_smoothing=s`
 * (which puts `s / C` on every class, including the true one, so the true class gets `1 - s + s / C`).
 */
export function labelSmoothingCrossEntropy(
  logits: tf.Tensor,
  labels: tf.Tensor,
  smoothing: number,
): tf.Scalar {
  if (!(smoothing >= 0 && smoothing < 1)) {
    throw new RangeError(`label smoothing must be in [0, 1): ${smoothing}`);
  }
  return tf.tidy(() => {
    const c = logits.shape[1]!;
    const logp = tf.logSoftmax(logits as tf.Tensor2D);
    const oh = tf.oneHot(tf.cast(labels, "int32") as tf.Tensor1D, c);
    const off = smoothing / (c - 1);
    const target = tf.add(tf.mul(oh, 1 - smoothing - off), off);
    return tf.neg(tf.mean(tf.sum(tf.mul(target, logp), 1))) as tf.Scalar;
  });
}

/**
 * Class-weighted cross-entropy, normalized as torch's `F.cross_entropy(weight=w)` with mean reduction:
 * `sum_i w[y_i] * nll_i / sum_i w[y_i]`.
 */
export function weightedCrossEntropy(
  logits: tf.Tensor,
  labels: tf.Tensor,
  weights: ArrayLike<number>,
): tf.Scalar {
  const c = logits.shape[1]!;
  if (weights.length !== c) throw new RangeError(`${weights.length} class weights for ${c} classes`);
  return tf.tidy(() => {
    const logp = tf.logSoftmax(logits as tf.Tensor2D);
    const oh = tf.oneHot(tf.cast(labels, "int32") as tf.Tensor1D, c);
    const nll = tf.neg(tf.sum(tf.mul(oh, logp), 1));
    const w = tf.gather(tf.tensor1d(Array.from(weights), "float32"), tf.cast(labels, "int32"));
    return tf.div(tf.sum(tf.mul(w, nll)), tf.sum(w)) as tf.Scalar;
  });
}

/**
 * Focal loss (Lin et al. 2017) for multi-class logits: `mean_i( -alpha[y_i] (1 - p_i)^gamma log p_i )` where
 * `p_i` is the softmax probability of the true class. `alpha` is one weight per class, a single number for all
 * classes, or absent (1). With gamma 0 and no alpha this is plain cross-entropy.
 */
export function focalLoss(
  logits: tf.Tensor,
  labels: tf.Tensor,
  gamma = 2,
  alpha?: number | ArrayLike<number>,
): tf.Scalar {
  const c = logits.shape[1]!;
  if (alpha !== undefined && typeof alpha !== "number" && alpha.length !== c) {
    throw new RangeError(`${alpha.length} focal alpha values for ${c} classes`);
  }
  return tf.tidy(() => {
    const logp = tf.logSoftmax(logits as tf.Tensor2D);
    const oh = tf.oneHot(tf.cast(labels, "int32") as tf.Tensor1D, c);
    const logpt = tf.sum(tf.mul(oh, logp), 1);
    const pt = tf.exp(logpt);
    let loss = tf.mul(tf.neg(tf.pow(tf.sub(1, pt), gamma)), logpt);
    if (typeof alpha === "number") loss = tf.mul(loss, alpha);
    else if (alpha !== undefined) {
      loss = tf.mul(loss, tf.gather(tf.tensor1d(Array.from(alpha), "float32"), tf.cast(labels, "int32")));
    }
    return tf.mean(loss) as tf.Scalar;
  });
}

/**
 * Inverse-frequency class weights `n / (C * n_c)` (scikit-learn's "balanced"); a class with no samples gets 0.
 */
export function inverseFrequencyWeights(labels: ArrayLike<number>, numClasses: number): number[] {
  const counts = new Array(numClasses).fill(0);
  for (let i = 0; i < labels.length; i++) counts[labels[i]]++;
  return counts.map((n) => (n > 0 ? labels.length / (numClasses * n) : 0));
}

/** Loss settings as they appear in a training config. */
export type LossConfig = {
  /** "ce" (default), "label_smoothing", "weighted_ce" or "focal". */
  kind: "ce" | "label_smoothing" | "weighted_ce" | "focal";
  /** For "label_smoothing" (the study used 0.1). */
  smoothing?: number;
  /** For "weighted_ce" (e.g. from {@link inverseFrequencyWeights}) and optionally "focal" (as alpha). */
  weights?: number[];
  /** For "focal" (default 2). */
  gamma?: number;
};

/** Builds the loss function a config names. */
export function makeLoss(cfg: LossConfig): LossFn {
  switch (cfg.kind) {
    case "ce":
      return crossEntropy;
    case "label_smoothing": {
      const s = cfg.smoothing ?? 0.1;
      return (l, y) => labelSmoothingCrossEntropy(l, y, s);
    }
    case "weighted_ce": {
      if (!cfg.weights) throw new Error(`loss "weighted_ce" needs class weights`);
      const w = cfg.weights;
      return (l, y) => weightedCrossEntropy(l, y, w);
    }
    case "focal": {
      const g = cfg.gamma ?? 2;
      const a = cfg.weights;
      return (l, y) => focalLoss(l, y, g, a);
    }
    default:
      throw new Error(
        `unknown loss "${(cfg as { kind: string }).kind}" (ce, label_smoothing, weighted_ce, focal)`,
      );
  }
}
