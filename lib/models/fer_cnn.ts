/**
 * FER-CNN: the VGG-style network of Khaireddin & Chen 2021 ("Facial Emotion Recognition: State of the Art
 * Performance on FER2013", arXiv:2105.03588) for native 48x48 grayscale faces, trained from scratch.
 *
 * 4 stages of [conv 3x3 (+bias) -> BN -> ReLU] x 2 followed by 2x2 max pooling, widths 64/128/256/512; then
 * flatten, two hidden Linear layers (4096) each followed by dropout and ReLU, and a Linear classifier (the
 * authors' code applies `relu(drop(lin(x)))`, the same as dropout after ReLU). A width multiplier scales every
 * conv and hidden width so small members train quickly on a CPU. BN eps 1e-5 / momentum 0.1 (PyTorch
 * defaults); He-normal conv init and Glorot-uniform dense init (tfjs-style; the paper gives none).
 *
 * Layer names follow the authors' module names (`conv1a`, `bn1a`, ..., `lin1`, `lin2`, `lin3`). No torch name
 * map is provided: torch flattens NCHW, so `lin1` would need a row permutation to import torch weights.
 */

import * as tfl from "@tensorflow/tfjs-layers";
import { checkInputShape, type InitMode, Inits, type SymTensor } from "./layers.ts";
import { type BuildOptions, GRAY, registerModel } from "./register.ts";

/** A FER-CNN definition. */
export interface FerCnnArgs {
  /** Conv widths per stage before the multiplier (64, 128, 256, 512). */
  widths: number[];
  /** Convs per stage (2). */
  convsPerStage: number;
  /** Hidden dense widths before the multiplier ([4096, 4096]). */
  hidden: number[];
  /** Width multiplier for convs and hidden layers (1). */
  widthMultiplier: number;
}

/** The paper's network. */
export const FER_CNN: FerCnnArgs = {
  widths: [64, 128, 256, 512],
  convsPerStage: 2,
  hidden: [4096, 4096],
  widthMultiplier: 1,
};

/** Quarter width (16/32/64/128, hidden 1024): ~1/16 of the compute, for quick CPU training. */
export const FER_CNN_SMALL: FerCnnArgs = { ...FER_CNN, widthMultiplier: 0.25 };

/** Options for building a FER-CNN. */
export interface FerCnnOptions {
  /** Default 7. */
  numClasses?: number;
  /** `[h, w, c]`, default [48, 48, 1]. */
  inputShape?: [number, number, number];
  /** Dropout after each hidden dense layer (default 0.2, the authors' default). */
  dropRate?: number;
  /** Overrides the definition's width multiplier. */
  widthMultiplier?: number;
  name?: string;
  init?: InitMode;
  seed?: number;
}

/** Builds a FER-CNN. */
export function ferCnn(args: FerCnnArgs = FER_CNN, opts: FerCnnOptions = {}): tfl.LayersModel {
  const inputShape = checkInputShape(opts.inputShape ?? [48, 48, 1], "fer_cnn");
  const mult = opts.widthMultiplier ?? args.widthMultiplier;
  const scale = (c: number) => Math.max(1, Math.round(c * mult));
  const numClasses = opts.numClasses ?? 7;
  const dropRate = opts.dropRate ?? 0.2;
  const inits = new Inits(opts.init, opts.seed);
  let size = Math.min(inputShape[0], inputShape[1]);
  for (let s = 0; s < args.widths.length; s++) size = Math.floor(size / 2);
  if (size < 1) {
    throw new Error(
      `fer_cnn: input ${inputShape[0]}x${inputShape[1]} is too small for ${args.widths.length} pools`,
    );
  }

  const input = tfl.input({ shape: inputShape, name: "input" });
  let x: SymTensor = input;
  args.widths.forEach((w, s) => {
    for (let j = 0; j < args.convsPerStage; j++) {
      const id = `${s + 1}${String.fromCharCode(97 + j)}`; // 1a, 1b, 2a, ...
      x = tfl.layers.conv2d({
        filters: scale(w),
        kernelSize: 3,
        padding: "same",
        kernelInitializer: inits.varianceScaling(2, "fanIn", "normal"),
        biasInitializer: inits.zeros(),
        name: `conv${id}`,
      }).apply(x) as SymTensor;
      x = tfl.layers.batchNormalization({ axis: -1, epsilon: 1e-5, momentum: 0.9, name: `bn${id}` })
        .apply(x) as SymTensor;
      x = tfl.layers.reLU({ name: `relu${id}` }).apply(x) as SymTensor;
    }
    x = tfl.layers.maxPooling2d({ poolSize: 2, strides: 2, name: `pool${s + 1}` }).apply(x) as SymTensor;
  });
  x = tfl.layers.flatten({ name: "flatten" }).apply(x) as SymTensor;
  args.hidden.forEach((h, i) => {
    x = tfl.layers.dense({
      units: scale(h),
      activation: "relu",
      kernelInitializer: inits.varianceScaling(1, "fanIn", "uniform"),
      biasInitializer: inits.zeros(),
      name: `lin${i + 1}`,
    }).apply(x) as SymTensor;
    if (dropRate > 0) x = tfl.layers.dropout({ rate: dropRate, name: `drop${i + 1}` }).apply(x) as SymTensor;
  });
  x = tfl.layers.dense({
    units: numClasses,
    kernelInitializer: inits.varianceScaling(1, "fanIn", "uniform"),
    biasInitializer: inits.zeros(),
    name: `lin${args.hidden.length + 1}`,
  }).apply(x) as SymTensor;
  return tfl.model({ inputs: input, outputs: x, name: opts.name ?? "fer_cnn" });
}

const FER = {
  family: "fer_cnn",
  input: [48, 48, 1] as [number, number, number],
  numClasses: 7,
  dropRate: 0.2,
  dropPathRate: 0,
  normalization: GRAY,
  pretrained: null,
  nameMap: null,
};
registerModel({
  ...FER,
  name: "fer_cnn",
  description: "VGG-style FER-CNN (Khaireddin & Chen 2021), 48x48 grayscale, from scratch",
  arch: FER_CNN,
  build: (o: BuildOptions) => ferCnn(FER_CNN, o),
});
registerModel({
  ...FER,
  name: "fer_cnn_small",
  description: "FER-CNN at width 0.25 (16/32/64/128, hidden 1024) for quick CPU training",
  arch: FER_CNN_SMALL,
  build: (o: BuildOptions) => ferCnn(FER_CNN_SMALL, o),
});
