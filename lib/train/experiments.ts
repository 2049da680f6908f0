/**
 * Named training configurations mirroring the original study, each in three presets:
 *
 * - `paper`: the study's exact settings — 224 px, gray expanded to 3 channels, ImageNet normalization,
 *   batch 64, at most 20 epochs, AdamW with its learning rates, CosineAnnealingLR(T_max=10), its patience, the
 *   Albumentations augmentation. Needs a GPU-class machine (EfficientNet-B3 at 224 px is ~1.8 GFLOPs/image).
 * - `cpu`: finishes in well under an hour each on a 2-core machine with the native engine. Trade-offs:
 *   FER2013's native 48 px instead of 224 px (cost falls ~22x), batch 32, a seeded random subset of the
 *   training images for the large ImageNet networks (validation and test stay complete), fewer epochs with
 *   T_max shortened to match so the cosine still anneals, and the quarter-width FER-CNN. Expect accuracy well
 *   below the paper preset (pretrained ImageNet features are tuned for ~224 px objects, and far fewer images
 *   are seen; offline, without pretrained weights, these nets start from random initialisation). Measured
 *   here (`deno run -A tests/bench/profile.ts native <model>@48 32`, one training step incl. backward, 2
 *   cores, native engine with oneDNN): EfficientNet-B3 ≈ 24 img/s, ConvNeXt-Tiny ≈ 10 img/s.
 * - `scratch` (the study's three architectures only): what runs here when ImageNet weights are unavailable — an
 *   honest from-scratch recipe instead of a fine-tuning recipe applied to random weights: the full training
 *   set, 48 px, AdamW with a learning rate and linear warm-up suited to training from scratch, a per-step
 *   cosine that reaches zero at the last epoch (T_max = epochs, so the schedule completes within the run),
 *   the study's augmentation, early stopping with patience that can act before the end. The label-smoothing
 *   rerun differs from the baseline exactly as in the paper preset: dropout-head model, label smoothing 0.1,
 *   a third of the baseline's learning rate and 1.5× its patience. Resumable (`deno task train --resume`).
 *   Sizes and epochs from the measurements in docs/RECIPES.md.
 * - `smoke`: a tiny seeded subset, a small input and one short epoch from random initialisation (no weight
 *   download), to check the pipeline end to end (selected by `FER_SMOKE=1` when no preset is named).
 *
 * Validation is a stratified 10 % of the training folder (the study early-stopped on test; see lib/train/loop.ts).
 */
import { defaultConfig } from "../models/registry.ts";
import { DEFAULT_CONFIG, type TrainConfig } from "./config.ts";

/** Preset names. */
export const PRESETS = ["paper", "cpu", "smoke", "scratch"] as const;
/** A preset name. */
export type Preset = (typeof PRESETS)[number];

/** An experiment: a description and the config of each preset (over {@link DEFAULT_CONFIG}); `scratch` only
 * for the study's architectures. */
export type Experiment = {
  description: string;
  presets: Record<Exclude<Preset, "scratch">, Partial<TrainConfig>> & { scratch?: Partial<TrainConfig> };
};

/** Settings shared by the study's ImageNet-pretrained runs (paper preset). */
const STUDY: Partial<TrainConfig> = {
  inputSize: 224,
  channels: 3,
  batchSize: 64,
  epochs: 20,
  tMax: 10,
  etaMin: 0,
  weightDecay: 0.01, // torch.optim.AdamW's default, which the study left unchanged
  loss: "ce",
  augment: {},
  pretrained: true, // timm ImageNet weights (lib/weights resolves or downloads them)
};

/** The smoke preset on top of an experiment's cpu preset. */
function smoke(cpu: Partial<TrainConfig>, inputSize: number): Partial<TrainConfig> {
  return {
    ...cpu,
    inputSize,
    batchSize: 32,
    epochs: 1,
    maxTrainImages: 64,
    maxEvalImages: 64,
    pretrained: false, // a pipeline check: no weight download
  };
}

const effB3Cpu: Partial<TrainConfig> = {
  ...STUDY,
  model: "efficientnet_b3",
  lr: 3e-4,
  patience: 2,
  inputSize: 48,
  batchSize: 32,
  maxTrainImages: 6000,
  epochs: 4,
  tMax: 4,
};

const effB3LsCpu: Partial<TrainConfig> = {
  ...effB3Cpu,
  model: "efficientnet_b3_dropout_head", // Dropout(0.3) + Linear head (timm drop_rate 0.3)
  loss: "label_smoothing",
  labelSmoothing: 0.1,
  lr: 1e-4,
  weightDecay: 1e-2,
  patience: 3,
};

const convnextCpu: Partial<TrainConfig> = {
  ...STUDY,
  model: "convnext_tiny",
  lr: 3e-4,
  patience: 3,
  inputSize: 48,
  batchSize: 32,
  maxTrainImages: 4000,
  epochs: 3,
  tMax: 3,
};

/**
 * The from-scratch CNN (not in the study). Khaireddin & Chen (2021) trained their VGG-style FER net with SGD
 * + Nesterov momentum for hundreds of epochs; we keep one optimizer for every run (AdamW, lr 1e-3, decoupled
 * weight decay 0.01) with a cosine over the whole run, which converges in tens of epochs — a documented
 * departure. Input: FER2013's native 48×48 gray, one channel, normalized with mean 0.5 / std 0.5 (the model's
 * normalisation, lib/models/fer_cnn.ts).
 */
const ferCnnPaper: Partial<TrainConfig> = {
  model: "fer_cnn",
  pretrained: false,
  inputSize: 48,
  channels: 1,
  batchSize: 64,
  epochs: 40,
  lr: 1e-3,
  weightDecay: 0.01,
  tMax: 40,
  etaMin: 0,
  patience: 6,
  loss: "ce",
  augment: {},
};

const ferCnnCpu: Partial<TrainConfig> = {
  ...ferCnnPaper,
  model: "fer_cnn_small", // width 0.25 (16/32/64/128 filters): a small fraction of fer_cnn's compute
  epochs: 8,
  tMax: 8,
  patience: 3,
};

// ---- from scratch (ImageNet weights unavailable): the study's architectures ---------------------------------

/** Shared by the three `scratch` presets: full data, 48 px, AdamW + warm-up + per-step cosine over the run. */
const SCRATCH: Partial<TrainConfig> = {
  ...STUDY,
  pretrained: false,
  inputSize: 48,
  batchSize: 64,
  optimizer: "adamw",
  schedule: "warmup_cosine",
  warmupEpochs: 2,
  etaMin: 0,
  weightDecay: 0.05,
  maxTrainImages: null,
};

/**
 * EfficientNet-B3 from scratch: 64 px (at 48 px its last stages see 2×2 and 3×3 maps; the 64 px trial learned
 * faster per epoch, docs/RECIPES.md) and a zero-initialised classifier, so training starts at loss ln 7 instead
 * of timm's init's 4.8, which the first full run never recovered from in three epochs. Stochastic depth 0.2,
 * as in EfficientNet-B3's own from-scratch training (timm's defaults, 0, are for fine-tuning): the from-scratch
 * ConvNeXt-Tiny run here overfitted from its tenth epoch (train 0.66 against validation 0.52 at the fifteenth).
 */
const effB3Scratch: Partial<TrainConfig> = {
  ...SCRATCH,
  model: "efficientnet_b3",
  inputSize: 64,
  modelOptions: { headInit: "zeros", dropPathRate: 0.2 },
  lr: 1e-3,
  epochs: 30,
  tMax: 30,
  patience: 5,
};

/** The rerun's one difference, as in the paper preset: dropout head + label smoothing, lr / 3, patience × 1.5. */
const effB3LsScratch: Partial<TrainConfig> = {
  ...effB3Scratch,
  model: "efficientnet_b3_dropout_head",
  loss: "label_smoothing",
  labelSmoothing: 0.1,
  lr: effB3Scratch.lr! / 3,
  patience: 8,
};

/**
 * ConvNeXt-Tiny from scratch: 80 px, stochastic depth 0.4, 30 epochs. The first full run (48 px, drop path 0.1,
 * 20 epochs, `convnext_tiny-scratch`) reached only ~0.54 validation accuracy and overfitted from its tenth epoch
 * (training 0.70 against validation 0.535 at the seventeenth); at 48 px its patchify stem and three
 * downsamplings leave the last stage a 1×1 map (64 px: 2×2), and the EfficientNet-B3 trial gained 6 points from
 * 48 to 64 px. The second (64 px, drop path 0.3, 20 epochs, `convnext_tiny-scratch-64px`) overfitted far less
 * (training 0.581 against validation 0.529 at the fourteenth epoch) and was still gaining a point an epoch
 * there: under-trained rather than over-fitted, so the budget became EfficientNet-B3's 30 epochs. The third
 * (64 px, drop path 0.3, 30 epochs, `convnext_tiny-scratch-30ep`) peaked at validation 0.561 at its 24th epoch
 * while training accuracy kept rising (0.755 there, 0.787 at the 29th): over-fitted now, and a 4×4 patch of
 * the stem still spans 3×3 pixels of the 48 px face. So the fourth run sees 80 px (a 4×4 patch spans 2.4 pixels;
 * a training step costs 1.2× the 64 px one, `FER_THREADS=2 deno run -A tests/bench/precision.ts
 * convnext_tiny@80 64 2`) with stochastic depth 0.4.
 */
const convnextScratch: Partial<TrainConfig> = {
  ...SCRATCH,
  model: "convnext_tiny",
  inputSize: 80,
  modelOptions: { dropPathRate: 0.4 },
  lr: 5e-4,
  epochs: 30,
  tMax: 30,
  patience: 5,
};

// ---- from-scratch recipes for 48 px gray faces (issue 11) ------------------------------------------------------

/**
 * The crop recipe of the FER2013 from-scratch literature, sized for a CPU: random 44 px crops of the 48 px face
 * plus the study's flips / shift-scale-rotate / jitter and RandomErasing(p 0.5); SGD with Nesterov momentum 0.9,
 * weight decay 5e-4 (coupled, as torch.optim.SGD), a 2-epoch linear warm-up to lr 0.05 and a per-step cosine to
 * zero at the last epoch; label smoothing 0.1; batch 64; evaluated with the centre crop (ten-crop TTA at
 * `deno task evaluate --tta 10crop`). Patience is long (the cosine decides the end; early stopping only
 * guards against a collapse).
 */
const CROP_RECIPE: Partial<TrainConfig> = {
  pretrained: false,
  inputSize: 44,
  cropFrom: 48,
  channels: 1,
  batchSize: 64,
  optimizer: "sgd",
  momentum: 0.9,
  nesterov: true,
  lr: 0.05,
  weightDecay: 5e-4,
  schedule: "warmup_cosine",
  warmupEpochs: 2,
  etaMin: 0,
  loss: "label_smoothing",
  labelSmoothing: 0.1,
  augment: {},
  erasing: { p: 0.5 },
  mixupAlpha: 0,
};

function cropRecipe(model: string, epochs: number): Partial<TrainConfig> {
  return { ...CROP_RECIPE, model, epochs, tMax: epochs, patience: Math.max(8, Math.ceil(epochs / 4)) };
}

/** The experiments, by name. */
export const EXPERIMENTS: Record<string, Experiment> = {
  efficientnet_b3: {
    description: "Baseline: ImageNet EfficientNet-B3 fine-tuned with cross-entropy (study notebook 1)",
    presets: {
      paper: { ...STUDY, model: "efficientnet_b3", lr: 3e-4, patience: 2 },
      cpu: effB3Cpu,
      smoke: smoke(effB3Cpu, 32),
      scratch: effB3Scratch,
    },
  },
  efficientnet_b3_label_smoothing: {
    description: "EfficientNet-B3 with dropout 0.3 + linear head and label smoothing 0.1 (study rerun)",
    presets: {
      paper: {
        ...STUDY,
        model: "efficientnet_b3_dropout_head",
        loss: "label_smoothing",
        labelSmoothing: 0.1,
        lr: 1e-4,
        weightDecay: 1e-2,
        patience: 3,
      },
      cpu: effB3LsCpu,
      smoke: smoke(effB3LsCpu, 32),
      scratch: effB3LsScratch,
    },
  },
  convnext_tiny: {
    description: "ImageNet ConvNeXt-Tiny fine-tuned with cross-entropy (study notebook 3)",
    presets: {
      paper: { ...STUDY, model: "convnext_tiny", lr: 3e-4, patience: 3 },
      cpu: convnextCpu,
      smoke: smoke(convnextCpu, 32),
      scratch: convnextScratch,
    },
  },
  fer_cnn: {
    description:
      "From-scratch CNN for 48×48 gray faces (not in the study; AdamW + cosine, see lib/train/experiments.ts)",
    presets: {
      paper: ferCnnPaper,
      cpu: ferCnnCpu,
      smoke: smoke(ferCnnCpu, 48),
    },
  },
  vgg_fer: {
    description:
      "Compact VGG (4.7 M) from scratch: 44 px crops, erasing, SGD Nesterov, warm-up + cosine, LS 0.1",
    presets: {
      paper: cropRecipe("vgg_fer", 100),
      cpu: cropRecipe("vgg_fer", 40),
      smoke: smoke(cropRecipe("vgg_fer", 40), 44),
    },
  },
  vgg_fer_half: {
    description: "vgg_fer at half width (1.2 M), the same recipe: a quarter of the compute per image",
    presets: {
      paper: cropRecipe("vgg_fer_half", 100),
      cpu: cropRecipe("vgg_fer_half", 60),
      smoke: smoke(cropRecipe("vgg_fer_half", 60), 44),
    },
  },
  resnet_fer: {
    description: "Half-width ResNet-18 (2.8 M) from scratch, the vgg_fer recipe",
    presets: {
      paper: cropRecipe("resnet_fer", 100),
      cpu: cropRecipe("resnet_fer", 40),
      smoke: smoke(cropRecipe("resnet_fer", 40), 44),
    },
  },
};

/** The preset used when none is named: `smoke` when FER_SMOKE=1, else `cpu`. */
export function defaultPreset(env: { get(k: string): string | undefined } = Deno.env): Preset {
  return env.get("FER_SMOKE") === "1" ? "smoke" : "cpu";
}

/** The full config of an experiment in a preset (the experiment name is recorded in the config). */
export function experimentConfig(name: string, preset: Preset = defaultPreset()): TrainConfig {
  const exp = EXPERIMENTS[name];
  if (!exp) {
    throw new Error(`unknown experiment "${name}"; known: ${Object.keys(EXPERIMENTS).join(", ")}`);
  }
  if (!PRESETS.includes(preset)) throw new Error(`unknown preset "${preset}"; known: ${PRESETS.join(", ")}`);
  const p = exp.presets[preset];
  if (!p) {
    const have = PRESETS.filter((k) => exp.presets[k]).join(", ");
    throw new Error(`experiment "${name}" has no ${preset} preset (it has ${have})`);
  }
  const cfg = { ...DEFAULT_CONFIG, ...p, experiment: name, preset };
  // normalisation comes from the model's config only (ImageNet statistics for the timm models, 0.5 / 0.5 gray)
  const { mean, std } = defaultConfig(cfg.model).normalization;
  return { ...cfg, mean, std };
}

/** One line per experiment: name and description. */
export function listExperiments(): { name: string; description: string }[] {
  return Object.entries(EXPERIMENTS).map(([name, e]) => ({ name, description: e.description }));
}

/**
 * Applies `--seed N`: a new seed for the weights, batch order and augmentation; the validation split and caps
 * keep the config's (`splitSeed`), so the run validates on the same images as the recipe's other runs.
 */
export function withSeed(cfg: TrainConfig, seed: number): TrainConfig {
  return { ...cfg, splitSeed: cfg.splitSeed ?? cfg.seed, seed };
}

/**
 * Applies `--epochs N` / `--t-max T` to an experiment's config. When the preset's cosine spans its whole run
 * (T_max equal to its epochs, as in every `cpu` preset), T_max follows N so the schedule still anneals to
 * eta_min by the last epoch; a preset with its own T_max (the study's 20 epochs with T_max 10) keeps it, and
 * an explicit `tMax` always wins. Returns the config and a note on what T_max is and why ("" when unchanged).
 */
export function withEpochs(
  cfg: TrainConfig,
  epochs?: number,
  tMax?: number,
): { cfg: TrainConfig; note: string } {
  const out = { ...cfg };
  if (epochs !== undefined) out.epochs = epochs;
  if (tMax !== undefined) {
    out.tMax = tMax;
    return { cfg: out, note: `T_max ${tMax} (--t-max)` };
  }
  if (epochs !== undefined && cfg.tMax === cfg.epochs && epochs !== cfg.epochs) {
    out.tMax = epochs;
    return {
      cfg: out,
      note:
        `T_max ${epochs}: follows --epochs so the cosine schedule finishes (the ${cfg.preset ?? ""} preset ` +
        `had T_max = epochs = ${cfg.epochs}; --t-max sets it explicitly)`,
    };
  }
  if (epochs !== undefined && epochs !== cfg.epochs && cfg.tMax > 0) {
    return { cfg: out, note: `T_max ${cfg.tMax} kept from the preset (--t-max changes it)` };
  }
  return { cfg: out, note: "" };
}

/**
 * The `deno task train` command that trains a run's recipe again as run `run`, from its saved config: the
 * experiment and preset, with the seed, epochs and T_max where they differ from the preset's (all three when
 * the experiment or preset is no longer known).
 */
export function retrainCommand(cfg: TrainConfig, run: string): string {
  let base: TrainConfig | null = null;
  try {
    if (cfg.preset) base = experimentConfig(cfg.experiment, cfg.preset as Preset);
  } catch { /* an experiment or preset this version no longer knows: every setting is spelled out */ }
  const parts = [`deno task train ${cfg.experiment}`];
  if (cfg.preset) parts.push(`--preset ${cfg.preset}`);
  if (!base || cfg.seed !== base.seed) parts.push(`--seed ${cfg.seed}`);
  if (!base || cfg.epochs !== base.epochs) parts.push(`--epochs ${cfg.epochs}`);
  if (!base || cfg.tMax !== withEpochs(base, cfg.epochs).cfg.tMax) parts.push(`--t-max ${cfg.tMax}`);
  if (cfg.precision && cfg.precision !== "float32") parts.push(`--precision ${cfg.precision}`);
  return [...parts, `--run ${run}`].join(" ");
}
