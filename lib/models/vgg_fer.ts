/**
 * VGG-FER: a compact VGG-style network for 40–48 px grayscale faces, trained from scratch — the trunk of
 * Khaireddin & Chen 2021 (arXiv:2105.03588; 4 stages of two 3×3 conv -> BN -> ReLU, then 2×2 max pooling,
 * widths 64/128/256/512) with their 36 M-parameter fully connected head replaced by global average pooling,
 * dropout and one linear layer: ~4.7 M parameters, almost all in the convolutions (compact VGG trunks of this
 * size are reported at ~72 % on FER2013). Convs have no bias (BN follows); BN eps 1e-5 / momentum 0.1
 * (PyTorch's defaults); He-normal conv init (fan-in), Glorot-uniform-style linear init.
 *
 * Layer names are torch module paths of the equivalent `nn.Module` (`features.<stage>.<conv>.conv`, `.bn`,
 * `head.fc`), so lib/models/layers.ts `torchNameMap` can map weights from a PyTorch twin.
 */
import * as tfl from "@tensorflow/tfjs-layers";
import { checkInputShape, type InitMode, Inits, type SymTensor } from "./layers.ts";
import { type BuildOptions, GRAY, registerModel } from "./register.ts";

/** A VGG-FER definition. */
export interface VggFerArgs {
  /** Conv widths per stage before the multiplier. */
  widths: number[];
  /** Convs per stage. */
  convsPerStage: number;
  /** Width multiplier for every conv. */
  widthMultiplier: number;
}

/** The compact network (64/128/256/512, two convs per stage). */
export const VGG_FER: VggFerArgs = { widths: [64, 128, 256, 512], convsPerStage: 2, widthMultiplier: 1 };

/** Options for building a VGG-FER. */
export interface VggFerOptions {
  numClasses?: number;
  /** `[h, w, c]`, default [44, 44, 1]. */
  inputShape?: [number, number, number];
  /** Dropout before the classifier (default 0.5). */
  dropRate?: number;
  widthMultiplier?: number;
  name?: string;
  init?: InitMode;
  seed?: number;
}

/** Builds a VGG-FER. */
export function vggFer(args: VggFerArgs = VGG_FER, opts: VggFerOptions = {}): tfl.LayersModel {
  const inputShape = checkInputShape(opts.inputShape ?? [44, 44, 1], "vgg_fer");
  const mult = opts.widthMultiplier ?? args.widthMultiplier;
  const inits = new Inits(opts.init, opts.seed);
  const dropRate = opts.dropRate ?? 0.5;
  let size = Math.min(inputShape[0], inputShape[1]);
  for (let s = 0; s < args.widths.length; s++) size = Math.floor(size / 2);
  if (size < 1) {
    throw new Error(`vgg_fer: input ${inputShape[0]}x${inputShape[1]} is too small for its pools`);
  }

  const input = tfl.input({ shape: inputShape, name: "input" });
  let x: SymTensor = input;
  args.widths.forEach((w, s) => {
    for (let j = 0; j < args.convsPerStage; j++) {
      const pre = `features.${s}.${j}`;
      x = tfl.layers.conv2d({
        filters: Math.max(1, Math.round(w * mult)),
        kernelSize: 3,
        padding: "same",
        useBias: false,
        kernelInitializer: inits.varianceScaling(2, "fanIn", "normal"),
        name: `${pre}.conv`,
      }).apply(x) as SymTensor;
      x = tfl.layers.batchNormalization({ axis: -1, epsilon: 1e-5, momentum: 0.9, name: `${pre}.bn` })
        .apply(x) as SymTensor;
      x = tfl.layers.reLU({ name: `${pre}.relu` }).apply(x) as SymTensor;
    }
    x = tfl.layers.maxPooling2d({ poolSize: 2, strides: 2, name: `features.${s}.pool` }).apply(
      x,
    ) as SymTensor;
  });
  x = tfl.layers.globalAveragePooling2d({ name: "head.pool" }).apply(x) as SymTensor;
  if (dropRate > 0) x = tfl.layers.dropout({ rate: dropRate, name: "head.drop" }).apply(x) as SymTensor;
  x = tfl.layers.dense({
    units: opts.numClasses ?? 7,
    kernelInitializer: inits.varianceScaling(1, "fanIn", "uniform"),
    biasInitializer: inits.zeros(),
    name: "head.fc",
  }).apply(x) as SymTensor;
  return tfl.model({ inputs: input, outputs: x, name: opts.name ?? "vgg_fer" });
}

const VGG = {
  family: "vgg_fer",
  input: [44, 44, 1] as [number, number, number],
  numClasses: 7,
  dropRate: 0.5,
  dropPathRate: 0,
  normalization: GRAY,
  pretrained: null,
  nameMap: null,
};
registerModel({
  ...VGG,
  name: "vgg_fer",
  description: "compact VGG trunk (Khaireddin & Chen-like 64..512 x2 convs) + pooled head, 44 px gray",
  arch: VGG_FER,
  build: (o: BuildOptions) => vggFer(VGG_FER, o),
});
const VGG_FER_HALF: VggFerArgs = { ...VGG_FER, widthMultiplier: 0.5 };
registerModel({
  ...VGG,
  name: "vgg_fer_half",
  description: "vgg_fer at half width (32..256), a quarter of the compute",
  arch: VGG_FER_HALF,
  build: (o: BuildOptions) => vggFer(VGG_FER_HALF, o),
});
