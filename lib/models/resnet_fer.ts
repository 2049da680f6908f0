/**
 * ResNet-FER: a ResNet-18-style network narrowed for 40–48 px grayscale faces, trained from scratch (as the
 * FER2013 ResNet-18 baselines that crop 44 px and use a CIFAR-style stem): a 3×3 stride-1 stem conv (no max
 * pooling), four stages of two BasicBlocks (3×3 conv -> BN -> ReLU -> 3×3 conv -> BN, plus the identity or a
 * 1×1 stride-2 conv -> BN shortcut, then ReLU) with strides 1/2/2/2, global average pooling, dropout and a
 * linear classifier. Widths 32/64/128/256 (half of ResNet-18's): ~2.8 M parameters.
 *
 * Stride-2 convs pad like PyTorch (one pixel on each side, lib/models/layers.ts torchPad), so a PyTorch twin
 * computes the same function. Layer names follow torchvision's resnet (`conv1`, `bn1`, `layer1.0.conv1`,
 * `layer2.0.downsample.0`, `fc`). BN eps 1e-5 / momentum 0.1; He-normal (fan-out, as torchvision) conv init.
 */
import * as tfl from "@tensorflow/tfjs-layers";
import { checkInputShape, type InitMode, Inits, type SymTensor, torchPad } from "./layers.ts";
import { type BuildOptions, GRAY, registerModel } from "./register.ts";

/** A ResNet-FER definition. */
export interface ResNetFerArgs {
  /** Stem width. */
  stem: number;
  /** Stage widths. */
  widths: number[];
  /** BasicBlocks per stage. */
  depths: number[];
}

/** ResNet-18 layout at half width. */
export const RESNET_FER: ResNetFerArgs = { stem: 32, widths: [32, 64, 128, 256], depths: [2, 2, 2, 2] };

/** Options for building a ResNet-FER. */
export interface ResNetFerOptions {
  numClasses?: number;
  /** `[h, w, c]`, default [44, 44, 1]. */
  inputShape?: [number, number, number];
  /** Dropout before the classifier (default 0.2). */
  dropRate?: number;
  name?: string;
  init?: InitMode;
  seed?: number;
}

/** Builds a ResNet-FER. */
export function resnetFer(args: ResNetFerArgs = RESNET_FER, opts: ResNetFerOptions = {}): tfl.LayersModel {
  const inputShape = checkInputShape(opts.inputShape ?? [44, 44, 1], "resnet_fer");
  const inits = new Inits(opts.init, opts.seed);
  const dropRate = opts.dropRate ?? 0.2;
  const conv = (x: SymTensor, filters: number, kernel: number, stride: number, name: string) => {
    const p = torchPad(x, kernel, stride, `${name}.pad`);
    return tfl.layers.conv2d({
      filters,
      kernelSize: kernel,
      strides: stride,
      padding: p.padding,
      useBias: false,
      kernelInitializer: inits.varianceScaling(2, "fanOut", "normal"),
      name,
    }).apply(p.x) as SymTensor;
  };
  const bn = (x: SymTensor, name: string) =>
    tfl.layers.batchNormalization({ axis: -1, epsilon: 1e-5, momentum: 0.9, name }).apply(x) as SymTensor;
  const relu = (x: SymTensor, name: string) => tfl.layers.reLU({ name }).apply(x) as SymTensor;

  const input = tfl.input({ shape: inputShape, name: "input" });
  let x = relu(bn(conv(input, args.stem, 3, 1, "conv1"), "bn1"), "relu");
  let c = args.stem;
  args.widths.forEach((w, s) => {
    for (let j = 0; j < args.depths[s]; j++) {
      const pre = `layer${s + 1}.${j}`;
      const stride = j === 0 && s > 0 ? 2 : 1;
      let y = relu(bn(conv(x, w, 3, stride, `${pre}.conv1`), `${pre}.bn1`), `${pre}.relu1`);
      y = bn(conv(y, w, 3, 1, `${pre}.conv2`), `${pre}.bn2`);
      const short = stride !== 1 || c !== w
        ? bn(conv(x, w, 1, stride, `${pre}.downsample.0`), `${pre}.downsample.1`)
        : x;
      x = relu(tfl.layers.add({ name: `${pre}.add` }).apply([y, short]) as SymTensor, `${pre}.relu2`);
      c = w;
    }
  });
  x = tfl.layers.globalAveragePooling2d({ name: "avgpool" }).apply(x) as SymTensor;
  if (dropRate > 0) x = tfl.layers.dropout({ rate: dropRate, name: "drop" }).apply(x) as SymTensor;
  x = tfl.layers.dense({
    units: opts.numClasses ?? 7,
    kernelInitializer: inits.varianceScaling(1, "fanIn", "uniform"),
    biasInitializer: inits.zeros(),
    name: "fc",
  }).apply(x) as SymTensor;
  return tfl.model({ inputs: input, outputs: x, name: opts.name ?? "resnet_fer" });
}

registerModel({
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
  build: (o: BuildOptions) => resnetFer(RESNET_FER, o),
});
