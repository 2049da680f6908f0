/**
 * Model registry: every architecture by name, with its default configuration — a lookup in the table the
 * architecture files fill when loaded (lib/models/register.ts), not a switch. Registered:
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
// Each architecture file registers its configurations when loaded (in this order: the listing order).
import "./efficientnet.ts";
import "./convnext.ts";
import "./fer_cnn.ts";
import "./vgg_fer.ts";
import "./resnet_fer.ts";
import { countTrainableParams } from "./layers.ts";
import { type ModelConfig, type ModelOptions, registeredModels } from "./register.ts";
import { loadPretrained } from "./weights/convert.ts";

export type { ModelConfig, ModelOptions, Normalization } from "./register.ts";

function find(name: string): ModelConfig {
  const cfg = registeredModels().find((c) => c.name === name);
  if (!cfg) {
    throw new Error(`unknown model "${name}"; registered: ${modelNames().join(", ")}`);
  }
  return cfg;
}

/** Names of all registered models. */
export function modelNames(): string[] {
  return registeredModels().map((c) => c.name);
}

/** The default configuration of a registered model (a copy). Throws for an unknown name. */
export function defaultConfig(name: string): ModelConfig {
  const { nameMap, build, ...rest } = find(name);
  return { ...structuredClone(rest), nameMap, build };
}

/** Options of a model started from pretrained weights (see {@link createModel}). */
export interface PretrainedModelOptions extends ModelOptions {
  /** Load timm's ImageNet weights when the model has a pretrained tag (the classifier stays fresh). */
  pretrained: boolean;
  /** Where to say which weights were loaded (default console.log). */
  log?: (line: string) => void;
}

/** An error loading a model's pretrained weights; the message says how to train without them. */
export class PretrainedError extends Error {
  override name = "PretrainedError";
}

/**
 * Builds a registered model by name; options override the defaults of {@link defaultConfig}. With a `pretrained`
 * option it returns a promise, and with `pretrained: true` loads timm's ImageNet weights into the model when it
 * has a pretrained tag (found locally, in the Hugging Face cache, or downloaded: lib/models/weights/). The random
 * initialisation happens before the promise is returned, synchronously, in both forms.
 */
export function createModel(name: string, opts?: ModelOptions): tfl.LayersModel;
export function createModel(name: string, opts: PretrainedModelOptions): Promise<tfl.LayersModel>;
export function createModel(
  name: string,
  opts: ModelOptions | PretrainedModelOptions = {},
): tfl.LayersModel | Promise<tfl.LayersModel> {
  const model = buildModel(name, opts);
  if (!("pretrained" in opts)) return model;
  return opts.pretrained ? withPretrained(model, name, opts.log ?? console.log) : Promise.resolve(model);
}

async function withPretrained(
  model: tfl.LayersModel,
  name: string,
  log: (line: string) => void,
): Promise<tfl.LayersModel> {
  const mc = find(name);
  if (!mc.pretrained || !mc.nameMap) return model;
  try {
    const r = await loadPretrained(model, mc.pretrained, { nameMap: mc.nameMap });
    log(`pretrained: ${mc.pretrained} from ${r.path}${r.classifierReinitialized ? " (new classifier)" : ""}`);
    return model;
  } catch (e) {
    model.dispose();
    throw new PretrainedError(
      `${(e as Error).message}\n(to train ${name} from random initialisation instead, set pretrained: false)`,
    );
  }
}

function buildModel(name: string, opts: ModelOptions): tfl.LayersModel {
  const cfg = find(name);
  return cfg.build({
    ...opts,
    name,
    numClasses: opts.numClasses ?? cfg.numClasses,
    inputShape: opts.inputShape ?? cfg.input,
    dropRate: opts.dropRate ?? cfg.dropRate,
    dropPathRate: opts.dropPathRate ?? cfg.dropPathRate,
  });
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
  return registeredModels().map((c) => ({ name: c.name, params: modelParams(c.name), input: [...c.input] }));
}
