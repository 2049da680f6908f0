/**
 * ConvNeXt as timm builds it (`timm.models.convnext`, `conv_mlp=False`, patch stem), as a tfjs-layers
 * functional model; `convnext_tiny` = depths (3, 3, 9, 3), dims (96, 192, 384, 768) (the architecture of
 * `convnext_tiny.fb_in22k`).
 *
 * - Stem: conv 4x4/4 + bias, LayerNorm (eps 1e-6) over channels.
 * - Stage i > 0 starts with a downsample: LayerNorm + conv 2x2/2 + bias.
 * - Block: depthwise conv 7x7 (+ bias, symmetric padding 3), LayerNorm (channels last, eps 1e-6),
 *   Linear(C, 4C) + GELU (exact, erf), Linear(4C, C), LayerScale `gamma` (init 1e-6), stochastic depth, identity
 *   shortcut. Drop-path rates `linspace(0, drop_path_rate, sum(depths))` over all blocks.
 * - Head (timm NormMlpClassifierHead): global average pool, LayerNorm, dropout, Linear `head.fc`.
 * - Init as timm `_init_weights`: conv/linear trunc_normal(std 0.02), zero biases, LayerNorm 1/0.
 *
 * NHWC makes timm's LayerNorm2d (over channels) and channels-last LayerNorm the same tfjs LayerNormalization
 * over the last axis, and timm's Linear layers tfjs Dense layers applied to the last axis.
 * Layers are named after timm's module paths (`stem.0`, `stages.1.downsample.1`, `stages.2.blocks.3.mlp.fc1`,
 * `stages.0.blocks.0.gamma`, `head.norm`, `head.fc`), so {@link timmNameMap} maps timm state dicts.
 */

import * as tfl from "@tensorflow/tfjs-layers";
import { IMAGENET, registerModel } from "./register.ts";
import {
  checkInputShape,
  classifierHead,
  dropPath,
  Inits,
  LayerScale,
  type NameMapEntry,
  type SymTensor,
  type TimmModelOptions,
  torchNameMap,
  torchPad,
} from "./layers.ts";

/** A ConvNeXt definition. */
export interface ConvNeXtArgs {
  depths: number[];
  dims: number[];
  /** Depthwise kernel (7). */
  kernelSize?: number;
  /** MLP expansion (4). */
  mlpRatio?: number;
  /** LayerScale init (1e-6); null disables LayerScale. */
  lsInitValue?: number | null;
  /** Stem patch size (4). */
  patchSize?: number;
}

/** timm `convnext_tiny`. */
export const CONVNEXT_TINY: ConvNeXtArgs = { depths: [3, 3, 9, 3], dims: [96, 192, 384, 768] };

/** Options for building a ConvNeXt (the classifier is `head.fc`, after the head's LayerNorm). */
export type ConvNeXtOptions = TimmModelOptions;

const LN_EPS = 1e-6;

/** Builds a ConvNeXt from a definition (the same code path serves convnext_tiny and reduced test configs). */
export function convnext(args: ConvNeXtArgs, opts: ConvNeXtOptions = {}): tfl.LayersModel {
  const inputShape = checkInputShape(opts.inputShape ?? [224, 224, 3], "convnext");
  const numClasses = opts.numClasses ?? 7;
  const { depths, dims } = args;
  if (depths.length !== dims.length || depths.length === 0) {
    throw new Error(`convnext: depths and dims must have the same nonzero length`);
  }
  const kernel = args.kernelSize ?? 7;
  const mlpRatio = args.mlpRatio ?? 4;
  const ls = args.lsInitValue === undefined ? 1e-6 : args.lsInitValue;
  const patch = args.patchSize ?? 4;
  const inits = new Inits(opts.init, opts.seed);
  const w = () => inits.truncNormal(0.02);
  const ln = (x: SymTensor, name: string) =>
    tfl.layers.layerNormalization({ axis: -1, epsilon: LN_EPS, name }).apply(x) as SymTensor;

  const total = depths.reduce((a, b) => a + b, 0);
  const dpRate = opts.dropPathRate ?? 0;
  const dp = (i: number) => total > 1 ? dpRate * i / (total - 1) : 0; // torch.linspace(0, rate, total)

  const input = tfl.input({ shape: inputShape, name: "input" });
  let x = tfl.layers.conv2d({
    filters: dims[0],
    kernelSize: patch,
    strides: patch,
    padding: "valid",
    kernelInitializer: w(),
    biasInitializer: inits.zeros(),
    name: "stem.0",
  }).apply(input) as SymTensor;
  x = ln(x, "stem.1");

  let blockIdx = 0;
  for (let s = 0; s < dims.length; s++) {
    if (s > 0) {
      x = ln(x, `stages.${s}.downsample.0`);
      x = tfl.layers.conv2d({
        filters: dims[s],
        kernelSize: 2,
        strides: 2,
        padding: "valid",
        kernelInitializer: w(),
        biasInitializer: inits.zeros(),
        name: `stages.${s}.downsample.1`,
      }).apply(x) as SymTensor;
    }
    for (let j = 0; j < depths[s]; j++) {
      const pre = `stages.${s}.blocks.${j}`;
      const shortcut = x;
      const p = torchPad(x, kernel, 1, `${pre}.conv_dw.pad`);
      let y = tfl.layers.depthwiseConv2d({
        kernelSize: kernel,
        padding: p.padding,
        depthMultiplier: 1,
        useBias: true,
        depthwiseInitializer: w(),
        biasInitializer: inits.zeros(),
        name: `${pre}.conv_dw`,
      }).apply(p.x) as SymTensor;
      y = ln(y, `${pre}.norm`);
      y = tfl.layers.dense({
        units: Math.floor(mlpRatio * dims[s]),
        activation: "gelu",
        kernelInitializer: w(),
        biasInitializer: inits.zeros(),
        name: `${pre}.mlp.fc1`,
      }).apply(y) as SymTensor;
      y = tfl.layers.dense({
        units: dims[s],
        kernelInitializer: w(),
        biasInitializer: inits.zeros(),
        name: `${pre}.mlp.fc2`,
      }).apply(y) as SymTensor;
      if (ls !== null) y = new LayerScale({ initValue: ls, name: `${pre}.gamma` }).apply(y) as SymTensor;
      y = dropPath(y, dp(blockIdx), `${pre}.drop_path`);
      x = tfl.layers.add({ name: `${pre}.add` }).apply([y, shortcut]) as SymTensor;
      blockIdx++;
    }
  }

  x = tfl.layers.globalAveragePooling2d({ name: "head.global_pool" }).apply(x) as SymTensor;
  x = ln(x, "head.norm");
  x = classifierHead(x, {
    numClasses,
    dropRate: opts.dropRate ?? 0,
    dropName: "head.drop",
    fcName: "head.fc",
    kernel: w,
    headInit: opts.headInit,
    inits,
  });
  return tfl.model({ inputs: input, outputs: x, name: opts.name ?? "convnext" });
}

/** timm `convnext_tiny` (num_classes 7 by default). */
export function convnextTiny(opts: ConvNeXtOptions = {}): tfl.LayersModel {
  return convnext(CONVNEXT_TINY, { name: "convnext_tiny", ...opts });
}

/**
 * timm state-dict key -> variable map of a ConvNeXt built here (`stem.0.weight`, `stem.1.bias`,
 * `stages.1.downsample.1.weight`, `stages.0.blocks.0.conv_dw.weight`, `stages.0.blocks.0.gamma`,
 * `stages.0.blocks.0.mlp.fc1.weight`, `head.norm.weight`, `head.fc.weight`, ...) with layout conversions: the
 * generic {@link torchNameMap}, as layers are named after timm's modules.
 */
export const timmNameMap: (model: tfl.LayersModel) => NameMapEntry[] = torchNameMap;

registerModel({
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
  nameMap: timmNameMap,
  notes: "timm defaults drop_path_rate=0; fine-tuning recipes commonly use 0.1.",
  build: (o) => convnext(CONVNEXT_TINY, o),
});
