/**
 * Model registry: every architecture by name, with its default configuration.
 *
 * - `efficientnet_b3`: timm `efficientnet_b3` (pretrained tag `efficientnet_b3.ra2_in1k`).
 * - `efficientnet_b3_dropout_head`: the seed's rerun head: the B3 backbone (no classifier), dropout 0.3 and a
 *   linear layer. Structurally this is timm `efficientnet_b3` with `drop_rate=0.3` (same `classifier` names).
 * - `convnext_tiny`: timm `convnext_tiny` (pretrained tag `convnext_tiny.fb_in22k`).
 * - `fer_cnn`, `fer_cnn_small`: the VGG-style FER-CNN at width 1 and 0.25, 48x48 grayscale, from scratch.
 * - `vgg_fer`, `vgg_fer_half`: the compact VGG trunk with a pooled head (~4.7 M / ~1.2 M parameters), 44 px gray.
 * - `resnet_fer`: a half-width ResNet-18 with a CIFAR-style stem (~2.8 M parameters), 44 px gray.
 *
 * Parameter counts are trainable parameters (what PyTorch/timm count; BN running statistics are buffers).
 */

import type * as tfl from "@tensorflow/tfjs-layers";
import { convnext, CONVNEXT_TINY, type ConvNeXtArgs, timmNameMap as convnextNameMap } from "./convnext.ts";
import {
  efficientnet,
  EFFICIENTNET_B3,
  type EfficientNetArgs,
  timmNameMap as efficientnetNameMap,
} from "./efficientnet.ts";
import { FER_CNN, FER_CNN_SMALL, ferCnn, type FerCnnArgs } from "./fer_cnn.ts";
import { RESNET_FER, resnetFer, type ResNetFerArgs } from "./resnet_fer.ts";
import { VGG_FER, vggFer, type VggFerArgs } from "./vgg_fer.ts";
import { countTrainableParams, type InitMode, type NameMapEntry } from "./layers.ts";

/** Options accepted by every model (architecture-specific extras are ignored by the others). */
export interface ModelOptions {
  /** Classifier outputs (default 7); 0 drops the classifier where the architecture allows it. */
  numClasses?: number;
  /** `[h, w, c]` (default: the model's `input`). */
  inputShape?: [number, number, number];
  /** Dropout before the classifier (FER-CNN: after each hidden layer). */
  dropRate?: number;
  /** Stochastic depth rate (EfficientNet, ConvNeXt). */
  dropPathRate?: number;
  /** FER-CNN width multiplier. */
  widthMultiplier?: number;
  /** `zeros` skips random init (fast; for counting or before loading weights). Default `random`. */
  init?: InitMode;
  /** Seed for reproducible initialization. */
  seed?: number;
}

/** Input normalization a model expects, applied to pixels scaled to [0, 1]: `(x - mean) / std` per channel. */
export interface Normalization {
  mean: number[];
  std: number[];
}

/** A registered model's default configuration. */
export interface ModelConfig {
  name: string;
  family: "efficientnet" | "convnext" | "fer_cnn" | "vgg_fer" | "resnet_fer";
  description: string;
  /** Default input `[h, w, c]`. */
  input: [number, number, number];
  numClasses: number;
  dropRate: number;
  dropPathRate: number;
  /** Architecture definition (stages / depths & dims / widths). */
  arch: EfficientNetArgs | ConvNeXtArgs | FerCnnArgs | VggFerArgs | ResNetFerArgs;
  normalization: Normalization;
  /** timm pretrained tag (for lib/weights), null when trained from scratch. */
  pretrained: string | null;
  /** timm state-dict name map, null when none (FER-CNN). */
  nameMap: ((model: tfl.LayersModel) => NameMapEntry[]) | null;
  /** Hyper-parameters timm's authors recommend for training (informational). */
  notes?: string;
}

const IMAGENET: Normalization = { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] };
const GRAY: Normalization = { mean: [0.5], std: [0.5] };

const CONFIGS: ModelConfig[] = [
  {
    name: "efficientnet_b3",
    family: "efficientnet",
    description: "timm efficientnet_b3 (SiLU, SE, stochastic depth; PyTorch padding)",
    input: [224, 224, 3],
    numClasses: 7,
    dropRate: 0,
    dropPathRate: 0,
    arch: EFFICIENTNET_B3,
    normalization: IMAGENET,
    pretrained: "efficientnet_b3.ra2_in1k",
    nameMap: efficientnetNameMap,
    notes: "timm defaults drop_rate=0, drop_path_rate=0; its training recipe used 0.3 / 0.2. " +
      "timm's pretrained cfg uses 288x288 (test 320).",
  },
  {
    name: "efficientnet_b3_dropout_head",
    family: "efficientnet",
    description: "efficientnet_b3 backbone + dropout 0.3 + linear (the seed's rerun head)",
    input: [224, 224, 3],
    numClasses: 7,
    dropRate: 0.3,
    dropPathRate: 0,
    arch: EFFICIENTNET_B3,
    normalization: IMAGENET,
    pretrained: "efficientnet_b3.ra2_in1k",
    nameMap: efficientnetNameMap,
  },
  {
    name: "convnext_tiny",
    family: "convnext",
    description: "timm convnext_tiny (LayerScale 1e-6, LN eps 1e-6, GELU)",
    input: [224, 224, 3],
    numClasses: 7,
    dropRate: 0,
    dropPathRate: 0,
    arch: CONVNEXT_TINY,
    normalization: IMAGENET,
    pretrained: "convnext_tiny.fb_in22k",
    nameMap: convnextNameMap,
    notes: "timm defaults drop_path_rate=0; fine-tuning recipes commonly use 0.1.",
  },
  {
    name: "fer_cnn",
    family: "fer_cnn",
    description: "VGG-style FER-CNN (Khaireddin & Chen 2021), 48x48 grayscale, from scratch",
    input: [48, 48, 1],
    numClasses: 7,
    dropRate: 0.2,
    dropPathRate: 0,
    arch: FER_CNN,
    normalization: GRAY,
    pretrained: null,
    nameMap: null,
  },
  {
    name: "fer_cnn_small",
    family: "fer_cnn",
    description: "FER-CNN at width 0.25 (16/32/64/128, hidden 1024) for quick CPU training",
    input: [48, 48, 1],
    numClasses: 7,
    dropRate: 0.2,
    dropPathRate: 0,
    arch: FER_CNN_SMALL,
    normalization: GRAY,
    pretrained: null,
    nameMap: null,
  },
  {
    name: "vgg_fer",
    family: "vgg_fer",
    description: "compact VGG trunk (Khaireddin & Chen-like 64..512 x2 convs) + pooled head, 44 px gray",
    input: [44, 44, 1],
    numClasses: 7,
    dropRate: 0.5,
    dropPathRate: 0,
    arch: VGG_FER,
    normalization: GRAY,
    pretrained: null,
    nameMap: null,
  },
  {
    name: "vgg_fer_half",
    family: "vgg_fer",
    description: "vgg_fer at half width (32..256), a quarter of the compute",
    input: [44, 44, 1],
    numClasses: 7,
    dropRate: 0.5,
    dropPathRate: 0,
    arch: { ...VGG_FER, widthMultiplier: 0.5 },
    normalization: GRAY,
    pretrained: null,
    nameMap: null,
  },
  {
    name: "resnet_fer",
    family: "resnet_fer",
    description: "ResNet-18 layout at half width (32..256), 3x3 stride-1 stem, 44 px gray",
    input: [44, 44, 1],
    numClasses: 7,
    dropRate: 0.2,
    dropPathRate: 0,
    arch: RESNET_FER,
    normalization: GRAY,
    pretrained: null,
    nameMap: null,
  },
];

function find(name: string): ModelConfig {
  const cfg = CONFIGS.find((c) => c.name === name);
  if (!cfg) {
    throw new Error(`unknown model "${name}"; registered: ${CONFIGS.map((c) => c.name).join(", ")}`);
  }
  return cfg;
}

/** Names of all registered models. */
export function modelNames(): string[] {
  return CONFIGS.map((c) => c.name);
}

/** The default configuration of a registered model (a copy). Throws for an unknown name. */
export function defaultConfig(name: string): ModelConfig {
  const { nameMap, ...rest } = find(name);
  return { ...structuredClone(rest), nameMap };
}

/** Builds a registered model by name; options override the defaults of {@link defaultConfig}. */
export function createModel(name: string, opts: ModelOptions = {}): tfl.LayersModel {
  const cfg = find(name);
  const common = {
    numClasses: opts.numClasses ?? cfg.numClasses,
    inputShape: opts.inputShape ?? cfg.input,
    dropRate: opts.dropRate ?? cfg.dropRate,
    init: opts.init,
    seed: opts.seed,
    name,
  };
  switch (cfg.family) {
    case "efficientnet":
      return efficientnet(cfg.arch as EfficientNetArgs, {
        ...common,
        dropPathRate: opts.dropPathRate ?? cfg.dropPathRate,
      });
    case "convnext":
      return convnext(cfg.arch as ConvNeXtArgs, {
        ...common,
        dropPathRate: opts.dropPathRate ?? cfg.dropPathRate,
      });
    case "fer_cnn":
      return ferCnn(cfg.arch as FerCnnArgs, { ...common, widthMultiplier: opts.widthMultiplier });
    case "vgg_fer":
      return vggFer(cfg.arch as VggFerArgs, { ...common, widthMultiplier: opts.widthMultiplier });
    case "resnet_fer":
      return resnetFer(cfg.arch as ResNetFerArgs, common);
  }
}

/** A row of {@link listModels}. */
export interface ModelInfo {
  name: string;
  /** Trainable parameters with 7 classes at the default input. */
  params: number;
  input: [number, number, number];
}

const paramCache = new Map<string, number>();

/** Trainable parameter count of a registered model (built once with zero init, then cached). */
export function modelParams(
  name: string,
  opts: Pick<ModelOptions, "numClasses" | "inputShape"> = {},
): number {
  const key = JSON.stringify([name, opts.numClasses ?? 7, opts.inputShape ?? null]);
  let n = paramCache.get(key);
  if (n === undefined) {
    const model = createModel(name, { ...opts, init: "zeros" });
    try {
      n = countTrainableParams(model);
    } finally {
      model.dispose();
    }
    paramCache.set(key, n);
  }
  return n;
}

/** Every registered model with its trainable parameter count (7 classes) and default input size. */
export function listModels(): ModelInfo[] {
  return CONFIGS.map((c) => ({ name: c.name, params: modelParams(c.name), input: [...c.input] }));
}
