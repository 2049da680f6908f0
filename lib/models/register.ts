/**
 * The model table (timm-style): each architecture file registers its named configurations here when it is
 * loaded, with their defaults and a builder; lib/models/registry.ts loads every architecture file and looks
 * models up by name. Also the one definition of the input normalisations (ImageNet, gray).
 */
import type * as tfl from "@tensorflow/tfjs-layers";
import type { InitMode, NameMapEntry } from "./layers.ts";

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
  /** EfficientNet, ConvNeXt: `zeros` starts the classifier at zero (from-scratch runs); default the architecture's. */
  headInit?: "default" | "zeros";
  /** Seed for reproducible initialization. */
  seed?: number;
}

/** What a builder receives: the options with the registered defaults filled in, and the model's name. */
export type BuildOptions = ModelOptions & {
  name: string;
  numClasses: number;
  inputShape: [number, number, number];
  dropRate: number;
  dropPathRate: number;
};

/** Input normalization a model expects, applied to pixels scaled to [0, 1]: `(x - mean) / std` per channel. */
export interface Normalization {
  mean: number[];
  std: number[];
}

/** ImageNet statistics (timm / torchvision / Albumentations defaults): the one definition in the project. */
export const IMAGENET: Normalization = { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] };
/** Gray images scaled to [-1, 1]. */
export const GRAY: Normalization = { mean: [0.5], std: [0.5] };

/** A registered model's default configuration. */
export interface ModelConfig {
  name: string;
  family: string;
  description: string;
  /** Default input `[h, w, c]`. */
  input: [number, number, number];
  numClasses: number;
  dropRate: number;
  dropPathRate: number;
  /** Architecture definition (stages / depths & dims / widths), for display. */
  arch: unknown;
  normalization: Normalization;
  /** timm pretrained tag (for lib/models/weights), null when trained from scratch. */
  pretrained: string | null;
  /** timm state-dict name map, null when none (FER-CNN). */
  nameMap: ((model: tfl.LayersModel) => NameMapEntry[]) | null;
  /** Hyper-parameters timm's authors recommend for training (informational). */
  notes?: string;
  /** Builds the model. */
  build: (opts: BuildOptions) => tfl.LayersModel;
}

const TABLE = new Map<string, ModelConfig>();

/** Registers a model configuration under its name (once; a second registration of a name is an error). */
export function registerModel(cfg: ModelConfig): void {
  if (TABLE.has(cfg.name)) throw new Error(`model "${cfg.name}" is registered twice`);
  TABLE.set(cfg.name, cfg);
}

/** The registered configurations, in registration order. */
export function registeredModels(): ModelConfig[] {
  return [...TABLE.values()];
}
