/**
 * Shared building blocks for the model files: the custom `LayerScale` layer, stochastic depth (drop path),
 * PyTorch-style padding, initializers, parameter counting and the generic torch-name map.
 *
 * Naming rule used by every architecture here: a layer that owns weights is named after the PyTorch module
 * path of the reference implementation (timm), e.g. `blocks.1.0.conv_dw` or `stages.2.blocks.3.mlp.fc1`, so the
 * map from a torch state dict to our variables is mechanical ({@link torchNameMap}).
 */

import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import type { LayerVariable } from "@tensorflow/tfjs-layers";
import type { NameMapEntry, ParamKind } from "./weights/convert.ts";

export type { NameMapEntry, ParamKind };

/** A weight initializer (tfjs-layers does not export the class type from its index). */
export type Initializer = ReturnType<typeof tfl.initializers.zeros>;

/** A symbolic tensor of a functional model under construction. */
export type SymTensor = tfl.SymbolicTensor;

/** Constructor arguments of {@link LayerScale}. */
export interface LayerScaleArgs {
  /** Initial value of every per-channel scale (timm `ls_init_value`, 1e-6 for ConvNeXt). */
  initValue?: number;
  name?: string;
  trainable?: boolean;
  dtype?: tf.DataType;
}

/**
 * Per-channel learned scale over the last axis: `y = x * gamma` with `gamma` of shape `[C]`, initialised to
 * `initValue` (timm's `gamma` of ConvNeXtBlock / `LayerScale`). tfjs-layers has no such layer, hence this one;
 * registered for (de)serialization as `LayerScale`.
 */
export class LayerScale extends tfl.layers.Layer {
  /** Serialization name. */
  static className = "LayerScale";
  readonly initValue: number;
  private gamma: LayerVariable | null = null;

  constructor(args: LayerScaleArgs = {}) {
    super(args);
    this.initValue = args.initValue ?? 1e-6;
  }

  override build(inputShape: tfl.Shape | tfl.Shape[]): void {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tfl.Shape;
    const c = shape[shape.length - 1];
    if (c == null) throw new Error(`LayerScale ${this.name}: the channel dimension must be known`);
    this.gamma = this.addWeight(
      "gamma",
      [c],
      "float32",
      tfl.initializers.constant({ value: this.initValue }),
    );
    this.built = true;
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const x = Array.isArray(inputs) ? inputs[0] : inputs;
      return tf.mul(x, this.gamma!.read());
    });
  }

  override computeOutputShape(inputShape: tfl.Shape | tfl.Shape[]): tfl.Shape | tfl.Shape[] {
    return inputShape;
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), initValue: this.initValue };
  }
}
tf.serialization.registerClass(LayerScale);

/**
 * Stochastic depth (timm `DropPath`): in training, zeroes a whole sample's residual branch with probability
 * `rate` and scales the kept ones by 1 / (1 - rate); identity at inference. This is tfjs-layers' own Dropout
 * with noise shape `[batch, 1, 1, 1]` (as Keras' EfficientNet does), so no custom layer is needed and the saved
 * model loads anywhere. Returns the input unchanged when `rate` is 0 (timm uses `nn.Identity` then).
 */
export function dropPath(x: SymTensor, rate: number, name: string): SymTensor {
  if (!(rate > 0)) return x;
  // null in noiseShape means "the input's size" (the batch), see tfjs-layers Dropout.getNoiseShape.
  const noiseShape = [null, 1, 1, 1] as unknown as number[];
  return tfl.layers.dropout({ rate, noiseShape, name }).apply(x) as SymTensor;
}

/**
 * Symmetric PyTorch padding for a k x k convolution with the given stride (timm `get_padding`, pad
 * `((s - 1) + (k - 1)) // 2` on every side). With stride 1 and odd k, TF 'same' pads exactly that, so no layer
 * is added; otherwise an explicit ZeroPadding2D is inserted and the conv must use 'valid'.
 * Returns the (possibly padded) tensor and the conv padding mode to use.
 */
export function torchPad(
  x: SymTensor,
  kernel: number,
  stride: number,
  name: string,
): { x: SymTensor; padding: "same" | "valid" } {
  const p = Math.floor((stride - 1 + (kernel - 1)) / 2);
  if (stride === 1 && kernel % 2 === 1) return { x, padding: "same" };
  if (p === 0) return { x, padding: "valid" };
  const padded = tfl.layers.zeroPadding2d({ padding: [[p, p], [p, p]], name }).apply(x) as SymTensor;
  return { x: padded, padding: "valid" };
}

/** Options for building the timm architectures (EfficientNet, ConvNeXt). */
export interface TimmModelOptions {
  /** Classifier outputs; 0 = no classifier (pooled features). Default 7. */
  numClasses?: number;
  /** `[h, w, c]`, default [224, 224, 3]. */
  inputShape?: [number, number, number];
  /** Dropout before the classifier (timm `drop_rate`, default 0). */
  dropRate?: number;
  /** Stochastic depth rate (timm `drop_path_rate`, default 0), scaled linearly by global block index. */
  dropPathRate?: number;
  /** Model name (default the architecture's). */
  name?: string;
  init?: InitMode;
  /**
   * Classifier initialisation: the architecture's own (default) or zeros. From scratch with 7 classes, timm's
   * EfficientNet classifier init (U(±1/√7)) starts at a cross-entropy of ~4.8; zeros start at ln 7.
   */
  headInit?: "default" | "zeros";
  seed?: number;
}

/** How new weights are initialised: the architecture's own scheme, or zeros (fast; for counting or loading). */
export type InitMode = "random" | "zeros";

/** Hands out initializers; with a seed, each one gets its own derived seed so runs are reproducible. */
export class Inits {
  private n = 0;
  constructor(readonly mode: InitMode = "random", readonly seed?: number) {}

  private nextSeed(): number | undefined {
    return this.seed === undefined ? undefined : this.seed + 7919 * this.n++;
  }

  /** Normal (truncated at 2 sd in tfjs) with the given standard deviation. */
  truncNormal(stddev: number): Initializer {
    if (this.mode === "zeros") return tfl.initializers.zeros();
    return tfl.initializers.truncatedNormal({ mean: 0, stddev, seed: this.nextSeed() });
  }

  /** Variance scaling (`fanIn` / `fanOut`, normal or uniform). */
  varianceScaling(
    scale: number,
    mode: "fanIn" | "fanOut",
    distribution: "normal" | "uniform",
  ): Initializer {
    if (this.mode === "zeros") return tfl.initializers.zeros();
    return tfl.initializers.varianceScaling({ scale, mode, distribution, seed: this.nextSeed() });
  }

  /** Zeros (biases). */
  zeros(): Initializer {
    return tfl.initializers.zeros();
  }
}

/**
 * A timm-style classifier head on pooled features: dropout (when `dropRate` > 0), then a linear layer with zero
 * bias; nothing when `numClasses` is 0 (features only). `kernel` makes the weight initializer (called only when
 * the layer is built, so that seeded initializers are drawn in the same order as before); `headInit: "zeros"`
 * starts the weight at zero instead (`kernel` is then not called).
 */
export function classifierHead(
  x: SymTensor,
  opts: {
    numClasses: number;
    dropRate: number;
    dropName: string;
    fcName: string;
    kernel: () => Initializer;
    headInit?: "default" | "zeros";
    inits: Inits;
  },
): SymTensor {
  if (opts.numClasses <= 0) return x;
  if (opts.dropRate > 0) {
    x = tfl.layers.dropout({ rate: opts.dropRate, name: opts.dropName }).apply(x) as SymTensor;
  }
  return tfl.layers.dense({
    units: opts.numClasses,
    kernelInitializer: opts.headInit === "zeros" ? tfl.initializers.zeros() : opts.kernel(),
    biasInitializer: opts.inits.zeros(),
    name: opts.fcName,
  }).apply(x) as SymTensor;
}

/** Number of trainable scalars (what PyTorch counts as parameters; BN running statistics are buffers). */
export function countTrainableParams(model: { trainableWeights: LayerVariable[] }): number {
  let n = 0;
  for (const w of model.trainableWeights) n += (w.shape as number[]).reduce((a, b) => a * b, 1);
  return n;
}

/** Parses `[h, w, c]`, checking that it is three positive integers. */
export function checkInputShape(shape: readonly number[], who: string): [number, number, number] {
  if (shape.length !== 3 || !shape.every((d) => Number.isInteger(d) && d > 0)) {
    throw new Error(`${who}: inputShape must be [height, width, channels] positive integers, got [${shape}]`);
  }
  return [shape[0], shape[1], shape[2]];
}

/** PyTorch's `round` (round half to even), used by timm for the SE reduction width. */
export function pyRound(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

const BN_PARAMS: Record<string, string> = {
  gamma: "weight",
  beta: "bias",
  moving_mean: "running_mean",
  moving_variance: "running_var",
};

/**
 * Torch state-dict names for every variable of a model whose weight-owning layers are named after torch
 * module paths (see the module comment). Per layer class:
 *
 * - Conv2D `n`: `n.weight` (kind `conv`, OIHW -> HWIO), `n.bias`;
 * - DepthwiseConv2D `n`: `n.weight` (kind `depthwise`, [C*m,1,kh,kw] -> [kh,kw,C,m]), `n.bias`;
 * - Dense `n`: `n.weight` (kind `linear`, [out,in] -> [in,out]), `n.bias`;
 * - BatchNormalization `n`: `n.weight`, `n.bias`, `n.running_mean`, `n.running_var`;
 * - LayerNormalization `n`: `n.weight`, `n.bias`;
 * - LayerScale `n`: the parameter `n` itself (timm's `...blocks.j.gamma`).
 *
 * Throws for a layer with weights of any other class, so a new layer type cannot be silently left out.
 */
export function torchNameMap(model: tfl.LayersModel): NameMapEntry[] {
  const out: NameMapEntry[] = [];
  for (const layer of model.layers) {
    if (layer.weights.length === 0) continue;
    const cls = layer.getClassName();
    for (const w of layer.weights) {
      const role = w.originalName.slice(w.originalName.lastIndexOf("/") + 1);
      let torchName: string;
      let kind: ParamKind = "param";
      if (cls === "Conv2D" || cls === "DepthwiseConv2D" || cls === "Dense") {
        if (role === "kernel" || role === "depthwise_kernel") {
          torchName = `${layer.name}.weight`;
          kind = cls === "Conv2D" ? "conv" : cls === "Dense" ? "linear" : "depthwise";
        } else if (role === "bias") torchName = `${layer.name}.bias`;
        else throw new Error(`torchNameMap: unexpected weight ${w.originalName} in ${cls} ${layer.name}`);
      } else if (cls === "BatchNormalization" || cls === "LayerNormalization") {
        const t = BN_PARAMS[role];
        if (!t) throw new Error(`torchNameMap: unexpected weight ${w.originalName} in ${cls} ${layer.name}`);
        torchName = `${layer.name}.${t}`;
      } else if (cls === "LayerScale") {
        torchName = layer.name;
      } else {
        throw new Error(`torchNameMap: no torch mapping for layer ${layer.name} of class ${cls}`);
      }
      out.push({ torchName, variable: w, kind });
    }
  }
  return out;
}
