/**
 * EfficientNet as timm builds it (`timm.models.efficientnet`, non-`tf_` variants): blocks, the model and the
 * B3 definition, as a tfjs-layers functional model.
 *
 * - Stem: conv 3x3/2 (no bias) + BN + SiLU, `round_channels(32)` wide.
 * - Blocks (timm `_efficientnet_blocks`): `ds` = DepthwiseSeparableConv (dw conv, BN, SiLU, SE, pw conv, BN),
 *   `ir` = InvertedResidual (pw expand conv, BN, SiLU, dw conv, BN, SiLU, SE, pw linear conv, BN); identity skip
 *   with stochastic depth when stride 1 and in == out.
 * - SE (timm `SqueezeExcite`, se_from_exp=False): global mean, 1x1 conv to `round(mid * se_ratio / exp_ratio)`
 *   (= in_chs / 4) channels + bias, SiLU, 1x1 conv back + bias, sigmoid gate, multiply.
 * - Head: conv 1x1 to `round_channels(1280)` + BN + SiLU, global average pool, dropout, linear `classifier`.
 * - PyTorch symmetric padding k // 2 (explicit ZeroPadding2D + 'valid' for stride 2, where TF 'same' would pad
 *   asymmetrically); BN eps 1e-5, momentum 0.1 in PyTorch terms (Keras momentum 0.9).
 * - Init as timm's `_init_weight_goog`: conv N(0, sqrt(2 / fan_out)) (truncated at 2 sd in tfjs), linear
 *   U(+-1/sqrt(fan_out)), zero biases, BN 1/0.
 * - Channel scaling `make_divisible(c * multiplier, 8)`, depth scaling `ceil(r * multiplier)` per stage.
 * - Known training-mode difference: tfjs BatchNormalization updates its moving variance with the biased batch
 *   variance, PyTorch with the unbiased one (factor n / (n - 1), n = batch * h * w); inference is identical.
 *
 * Layers that own weights are named after timm's module paths (`conv_stem`, `bn1`, `blocks.s.j.conv_dw`,
 * `blocks.s.j.se.conv_reduce`, `conv_head`, `bn2`, `classifier`), so {@link timmNameMap} maps timm state dicts.
 */

import * as tfl from "@tensorflow/tfjs-layers";
import { type BuildOptions, IMAGENET, registerModel } from "./register.ts";
import {
  checkInputShape,
  classifierHead,
  dropPath,
  Inits,
  pyRound,
  type SymTensor,
  type TimmModelOptions,
  torchPad,
} from "./layers.ts";
import { type NameMapEntry, torchNameMap } from "./layers.ts";

/** One stage of an EfficientNet definition (timm's arch-def string, e.g. `ir_r2_k3_s2_e6_c24_se0.25`). */
export interface EfficientNetStage {
  /** `ds`: depthwise-separable block; `ir`: inverted residual (MBConv). */
  type: "ds" | "ir";
  /** Repeats before depth scaling. */
  repeats: number;
  /** Depthwise kernel size. */
  kernel: number;
  /** Stride of the first block of the stage. */
  stride: number;
  /** Expansion ratio (`ir` only; 1 for `ds`). */
  expRatio: number;
  /** Output channels before channel scaling. */
  outChs: number;
  /** SE ratio relative to the block input (0 = no SE). */
  seRatio: number;
}

/** An EfficientNet definition: stages plus width/depth multipliers (timm `_gen_efficientnet`). */
export interface EfficientNetArgs {
  /** Stem width before channel scaling (32). */
  stemSize: number;
  channelMultiplier: number;
  depthMultiplier: number;
  /** Head width before channel scaling (1280). */
  numFeatures: number;
  stages: EfficientNetStage[];
}

const B0_STAGES: EfficientNetStage[] = [
  { type: "ds", repeats: 1, kernel: 3, stride: 1, expRatio: 1, outChs: 16, seRatio: 0.25 },
  { type: "ir", repeats: 2, kernel: 3, stride: 2, expRatio: 6, outChs: 24, seRatio: 0.25 },
  { type: "ir", repeats: 2, kernel: 5, stride: 2, expRatio: 6, outChs: 40, seRatio: 0.25 },
  { type: "ir", repeats: 3, kernel: 3, stride: 2, expRatio: 6, outChs: 80, seRatio: 0.25 },
  { type: "ir", repeats: 3, kernel: 5, stride: 1, expRatio: 6, outChs: 112, seRatio: 0.25 },
  { type: "ir", repeats: 4, kernel: 5, stride: 2, expRatio: 6, outChs: 192, seRatio: 0.25 },
  { type: "ir", repeats: 1, kernel: 3, stride: 1, expRatio: 6, outChs: 320, seRatio: 0.25 },
];

/** timm `efficientnet_b3`: the B0 arch def with channel multiplier 1.2 and depth multiplier 1.4. */
export const EFFICIENTNET_B3: EfficientNetArgs = {
  stemSize: 32,
  channelMultiplier: 1.2,
  depthMultiplier: 1.4,
  numFeatures: 1280,
  stages: B0_STAGES,
};

/** Options for building an EfficientNet (the classifier is `classifier`; drop path scales by block index). */
export type EfficientNetOptions = TimmModelOptions;

/** timm/torchvision `make_divisible`: round to a multiple of `divisor`, never below 90% of `v`. */
export function makeDivisible(v: number, divisor = 8, minValue?: number, roundLimit = 0.9): number {
  const min = minValue ?? divisor;
  let n = Math.max(min, Math.floor((v + divisor / 2) / divisor) * divisor);
  if (n < roundLimit * v) n += divisor;
  return n;
}

/** timm `round_channels`. */
export function roundChannels(channels: number, multiplier: number): number {
  return multiplier ? makeDivisible(channels * multiplier) : channels;
}

/** Resolved per-block settings (after scaling), in build order. */
export interface EfficientNetBlock {
  stage: number;
  index: number;
  type: "ds" | "ir";
  inChs: number;
  midChs: number;
  outChs: number;
  kernel: number;
  stride: number;
  seChs: number;
  skip: boolean;
  dropPath: number;
}

/** Expands a definition into its blocks (timm `decode_arch_def` + `EfficientNetBuilder`). */
export function efficientnetBlocks(args: EfficientNetArgs, dropPathRate = 0): EfficientNetBlock[] {
  const stem = roundChannels(args.stemSize, args.channelMultiplier);
  const reps = args.stages.map((s) => Math.ceil(s.repeats * args.depthMultiplier));
  const total = reps.reduce((a, b) => a + b, 0);
  const blocks: EfficientNetBlock[] = [];
  let inChs = stem;
  let idx = 0;
  args.stages.forEach((s, si) => {
    const outChs = roundChannels(s.outChs, args.channelMultiplier);
    for (let j = 0; j < reps[si]; j++) {
      const stride = j === 0 ? s.stride : 1;
      const exp = s.type === "ds" ? 1 : s.expRatio;
      const midChs = s.type === "ds" ? inChs : makeDivisible(inChs * exp);
      // se_from_exp=False: the ratio is divided by the expansion, applied to mid channels, Python round().
      const seChs = s.seRatio > 0 ? pyRound(midChs * (s.seRatio / exp)) : 0;
      blocks.push({
        stage: si,
        index: j,
        type: s.type,
        inChs,
        midChs,
        outChs,
        kernel: s.kernel,
        stride,
        seChs,
        skip: stride === 1 && inChs === outChs,
        dropPath: dropPathRate * idx / total,
      });
      inChs = outChs;
      idx++;
    }
  });
  return blocks;
}

const BN_EPS = 1e-5;
const BN_MOMENTUM = 0.9; // Keras convention: PyTorch momentum 0.1

/** Builds an EfficientNet from a definition (the same code path serves B3 and the reduced test configs). */
export function efficientnet(args: EfficientNetArgs, opts: EfficientNetOptions = {}): tfl.LayersModel {
  const inputShape = checkInputShape(opts.inputShape ?? [224, 224, 3], "efficientnet");
  const numClasses = opts.numClasses ?? 7;
  const dropRate = opts.dropRate ?? 0;
  const inits = new Inits(opts.init, opts.seed);
  // timm _init_weight_goog: conv N(0, sqrt(2/fan_out)); depthwise fan_out = k*k (tfjs computes k*k*mult).
  const convInit = () => inits.varianceScaling(2, "fanOut", "normal");

  const conv = (
    x: SymTensor,
    filters: number,
    kernel: number,
    stride: number,
    name: string,
    bias = false,
  ) => {
    const p = torchPad(x, kernel, stride, `${name}.pad`);
    return tfl.layers.conv2d({
      filters,
      kernelSize: kernel,
      strides: stride,
      padding: p.padding,
      useBias: bias,
      kernelInitializer: convInit(),
      biasInitializer: inits.zeros(),
      name,
    }).apply(p.x) as SymTensor;
  };
  const dwconv = (x: SymTensor, kernel: number, stride: number, name: string) => {
    const p = torchPad(x, kernel, stride, `${name}.pad`);
    return tfl.layers.depthwiseConv2d({
      kernelSize: kernel,
      strides: stride,
      padding: p.padding,
      depthMultiplier: 1,
      useBias: false,
      depthwiseInitializer: convInit(),
      name,
    }).apply(p.x) as SymTensor;
  };
  const bn = (x: SymTensor, name: string, act: boolean) => {
    const y = tfl.layers.batchNormalization({ axis: -1, epsilon: BN_EPS, momentum: BN_MOMENTUM, name })
      .apply(x) as SymTensor;
    return act
      ? tfl.layers.activation({ activation: "swish", name: `${name}.act` }).apply(y) as SymTensor
      : y;
  };
  const se = (x: SymTensor, chs: number, rd: number, name: string) => {
    let s = tfl.layers.globalAveragePooling2d({ name: `${name}.pool` }).apply(x) as SymTensor;
    s = tfl.layers.reshape({ targetShape: [1, 1, chs], name: `${name}.reshape` }).apply(s) as SymTensor;
    s = tfl.layers.conv2d({
      filters: rd,
      kernelSize: 1,
      activation: "swish",
      kernelInitializer: convInit(),
      biasInitializer: inits.zeros(),
      name: `${name}.conv_reduce`,
    }).apply(s) as SymTensor;
    s = tfl.layers.conv2d({
      filters: chs,
      kernelSize: 1,
      activation: "sigmoid",
      kernelInitializer: convInit(),
      biasInitializer: inits.zeros(),
      name: `${name}.conv_expand`,
    }).apply(s) as SymTensor;
    return tfl.layers.multiply({ name: `${name}.gate` }).apply([x, s]) as SymTensor;
  };

  const input = tfl.input({ shape: inputShape, name: "input" });
  let x = conv(input, roundChannels(args.stemSize, args.channelMultiplier), 3, 2, "conv_stem");
  x = bn(x, "bn1", true);

  for (const b of efficientnetBlocks(args, opts.dropPathRate ?? 0)) {
    const pre = `blocks.${b.stage}.${b.index}`;
    const shortcut = x;
    if (b.type === "ds") {
      x = dwconv(x, b.kernel, b.stride, `${pre}.conv_dw`);
      x = bn(x, `${pre}.bn1`, true);
      if (b.seChs) x = se(x, b.midChs, b.seChs, `${pre}.se`);
      x = conv(x, b.outChs, 1, 1, `${pre}.conv_pw`);
      x = bn(x, `${pre}.bn2`, false);
    } else {
      x = conv(x, b.midChs, 1, 1, `${pre}.conv_pw`);
      x = bn(x, `${pre}.bn1`, true);
      x = dwconv(x, b.kernel, b.stride, `${pre}.conv_dw`);
      x = bn(x, `${pre}.bn2`, true);
      if (b.seChs) x = se(x, b.midChs, b.seChs, `${pre}.se`);
      x = conv(x, b.outChs, 1, 1, `${pre}.conv_pwl`);
      x = bn(x, `${pre}.bn3`, false);
    }
    if (b.skip) {
      x = dropPath(x, b.dropPath, `${pre}.drop_path`);
      x = tfl.layers.add({ name: `${pre}.add` }).apply([x, shortcut]) as SymTensor;
    }
  }

  x = conv(x, roundChannels(args.numFeatures, args.channelMultiplier), 1, 1, "conv_head");
  x = bn(x, "bn2", true);
  x = tfl.layers.globalAveragePooling2d({ name: "global_pool" }).apply(x) as SymTensor;
  x = classifierHead(x, {
    numClasses,
    dropRate,
    dropName: "head_drop",
    fcName: "classifier",
    // timm: U(-1/sqrt(fan_out), 1/sqrt(fan_out)) = variance scaling 1/3, fan_out, uniform.
    kernel: () => inits.varianceScaling(1 / 3, "fanOut", "uniform"),
    headInit: opts.headInit,
    inits,
  });
  return tfl.model({ inputs: input, outputs: x, name: opts.name ?? "efficientnet" });
}

/** timm `efficientnet_b3` (num_classes 7 by default). */
export function efficientnetB3(opts: EfficientNetOptions = {}): tfl.LayersModel {
  return efficientnet(EFFICIENTNET_B3, { name: "efficientnet_b3", ...opts });
}

/**
 * timm state-dict key -> variable map of an EfficientNet built here (`conv_stem.weight`, `bn1.running_mean`,
 * `blocks.0.0.conv_dw.weight`, `blocks.1.0.se.conv_reduce.bias`, `conv_head.weight`, `classifier.weight`, ...),
 * with the layout conversion of each (see lib/models/weights/convert.ts): the generic {@link torchNameMap}, as
 * layers are named after timm's modules. `num_batches_tracked` has no counterpart.
 */
export const timmNameMap: (model: tfl.LayersModel) => NameMapEntry[] = torchNameMap;

const B3 = {
  family: "efficientnet",
  input: [224, 224, 3] as [number, number, number],
  numClasses: 7,
  dropPathRate: 0,
  arch: EFFICIENTNET_B3,
  normalization: IMAGENET,
  pretrained: "efficientnet_b3.ra2_in1k",
  nameMap: timmNameMap,
  build: (o: BuildOptions) => efficientnet(EFFICIENTNET_B3, o),
};
registerModel({
  ...B3,
  name: "efficientnet_b3",
  description: "timm efficientnet_b3 (SiLU, SE, stochastic depth; PyTorch padding)",
  dropRate: 0,
  notes: "timm defaults drop_rate=0, drop_path_rate=0; its training recipe used 0.3 / 0.2. " +
    "timm's pretrained cfg uses 288x288 (test 320).",
});
// The seed's rerun head: the B3 backbone (no classifier), dropout 0.3 and a linear layer. Structurally this is
// timm `efficientnet_b3` with `drop_rate=0.3` (same `classifier` names).
registerModel({
  ...B3,
  name: "efficientnet_b3_dropout_head",
  description: "efficientnet_b3 backbone + dropout 0.3 + linear (the seed's rerun head)",
  dropRate: 0.3,
});
