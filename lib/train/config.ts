/**
 * The training config: every setting a run depends on, as plain values, and their defaults. Saved as
 * `config.json` in the run folder (lib/runs/).
 */
import {
  type AugmentOptions,
  type ErasingOptions,
  IMAGENET_MEAN,
  IMAGENET_STD,
  makeTransforms,
  type Transform,
} from "../data/augment.ts";
import type { Precision } from "../engine/init.ts";
import { RUNS_DIR } from "../runs/paths.ts";

/** Everything a run depends on. Plain values only; saved as config.json in the run folder. */
export type TrainConfig = {
  /** Experiment name (lib/train/experiments.ts) — informational. */
  experiment: string;
  /** Preset the config came from (`paper`, `cpu`, `smoke`), null for hand-made configs — informational. */
  preset?: string | null;
  /**
   * Identity of the train/val/test images the run used (lib/data/dataset.ts `dataIdentity`), set when the run starts;
   * a resume on different data is refused.
   */
  dataFingerprint?: string | null;
  /** Model name for `createModel` (lib/models/registry.ts) and extra options passed to it. */
  model: string;
  modelOptions?: Record<string, unknown>;
  /** Start from timm's ImageNet weights (lib/models/weights) when the model has them; false: random init. */
  pretrained: boolean;
  /** Model input: square size in pixels and channels (3 = gray expanded, ImageNet-style; 1 = gray). */
  inputSize: number;
  channels: 1 | 3;
  /** Normalize mean/std on the 0..1 scale (per channel, or one value). */
  mean: number[];
  std: number[];
  /** Size the images are decoded to before the transforms (FER2013 is 48×48). */
  dataSize: number;
  batchSize: number;
  /** Maximum number of epochs. */
  epochs: number;
  /** Optimizer: "adamw" (torch AdamW, decoupled decay; default) or "sgd" (torch SGD, coupled L2 decay). */
  optimizer?: "adamw" | "sgd";
  /** Base learning rate and weight decay of the optimizer. */
  lr: number;
  weightDecay: number;
  /** SGD momentum (default 0.9) and Nesterov (default true); ignored by AdamW. */
  momentum?: number;
  nesterov?: boolean;
  /**
   * "cosine" (default): CosineAnnealingLR stepped once per epoch (tMax in epochs; `tMax: 0` keeps the lr
   * constant). "warmup_cosine": per step, linear warm-up over `warmupEpochs` from 1 % of `lr`, then cosine to
   * `etaMin` at the end of epoch `tMax` (lib/train/optim.ts warmupCosineLr).
   */
  schedule?: "cosine" | "warmup_cosine";
  warmupEpochs?: number;
  tMax: number;
  etaMin: number;
  /** Early stopping: epochs without a better validation accuracy before stopping. */
  patience: number;
  /** "ce", "label_smoothing", "weighted_ce" (inverse class frequency of the training split) or "focal". */
  loss: "ce" | "label_smoothing" | "weighted_ce" | "focal";
  labelSmoothing: number;
  focalGamma: number;
  /** Fraction of the training folder held out (stratified) for validation. */
  valFraction: number;
  /** Seed of the weight initialisation, the batch order, augmentation, erasing and mixup. */
  seed: number;
  /**
   * Seed of the images a run sees: the validation split and the caps (lib/runs/data.ts `runSplits`); absent:
   * `seed`. `train --seed` changes `seed` only, so runs of one recipe with different seeds validate on the same
   * images, compare like with like, and can be ensembled (members must predict the same validation images).
   */
  splitSeed?: number;
  /** Augmentation settings (lib/data/augment.ts; study defaults), or false for none. */
  augment: AugmentOptions | false;
  /**
   * Crop-based training (lib/data/augment.ts): images are resized to `cropFrom` and `inputSize` crops taken
   * (random in training, the centre in evaluation); null: resize to `inputSize` (the study's pipeline).
   */
  cropFrom?: number | null;
  /** torchvision RandomErasing in training (after Normalize), or false. */
  erasing?: ErasingOptions | false;
  /** Mixup (Zhang et al. 2018) with Beta(α, α) mixing weights per batch; 0 = off. */
  mixupAlpha?: number;
  /**
   * Arithmetic of the training steps' convolutions and dense layers (lib/engine/init.ts `setPrecision`):
   * "float32" (default) or
   * "bfloat16" (bfloat16 inputs, float32 accumulation, float32 weights and optimiser state; float32 where the
   * CPU has no bfloat16 instructions). Validation and test are always float32.
   */
  precision?: Precision;
  /** Cap on training images (seeded random subset), for smoke runs; null for all. */
  maxTrainImages: number | null;
  /** Cap on validation and test images, for smoke runs; null for all. */
  maxEvalImages: number | null;
  /**
   * Dataset root. Null before a run starts: $FER2013_DIR, data/fer2013, else the committed sample. A run records
   * the root it used (relative to the project when inside it, else absolute; lib/runs/data.ts), and evaluation
   * and resume read the data from there.
   */
  dataRoot: string | null;
  /** Folder holding run folders (default checkpoints/). */
  outDir: string;
  /** Run name (folder under outDir); default `<experiment>-<timestamp>`. */
  run: string | null;
};

/** Defaults for every field (the study's baseline recipe at 224 px). */
export const DEFAULT_CONFIG: TrainConfig = {
  experiment: "custom",
  model: "efficientnet_b3",
  pretrained: true,
  inputSize: 224,
  channels: 3,
  mean: IMAGENET_MEAN,
  std: IMAGENET_STD,
  dataSize: 48,
  batchSize: 64,
  epochs: 20,
  lr: 3e-4,
  weightDecay: 0.01,
  tMax: 10,
  etaMin: 0,
  patience: 2,
  loss: "ce",
  labelSmoothing: 0,
  focalGamma: 2,
  valFraction: 0.1,
  seed: 42,
  augment: {},
  maxTrainImages: null,
  maxEvalImages: null,
  dataRoot: null,
  outDir: RUNS_DIR,
  run: null,
};

/**
 * The transform a config describes (lib/data/augment.ts): evaluation (resize — or resize to `cropFrom` and
 * centre crop —, channels, normalize) or, with `train`, the training transform with the config's augmentation
 * and random erasing (none when `augment` is false), seeded with `seed` (default the config's). Training, evaluation and prediction all build their transforms here.
 */
export function runTransform(cfg: TrainConfig, train = false, seed = cfg.seed): Transform {
  const augmented = train && cfg.augment !== false;
  return makeTransforms({
    size: [cfg.inputSize, cfg.inputSize],
    channels: cfg.channels,
    ...(cfg.cropFrom ? { cropFrom: cfg.cropFrom } : {}),
    mean: cfg.mean,
    std: cfg.std,
    train: augmented,
    ...(augmented ? { augment: cfg.augment || {}, seed, erasing: cfg.erasing ?? false } : {}),
  });
}
