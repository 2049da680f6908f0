/**
 * Batch norm folded into the convolution before it, for inference: `conv → BatchNormalization` becomes one
 * convolution with a bias, `W' = W·s` and `b' = β + (b − μ)·s` per output channel with `s = γ / √(σ² + ε)`
 * (the moving statistics, i.e. eval mode). This is what inference engines do (PyTorch's `fuse_conv_bn_eval`,
 * TensorFlow Lite, ONNX Runtime); TF.js-layers has no such pass, so it is written here.
 *
 * Why: in eval mode a batch norm is one more full pass over every activation. EfficientNet-B3 has 78 of them;
 * at 224 px they were about a tenth of its inference kernel time (`deno run -A tests/bench/prof_kernels.ts
 * native efficientnet_b3@224 16`).
 *
 * The folded model is a new LayersModel built from the original's config with the pairs rewritten, holding
 * copies of the weights: it does not follow later training of the original (fold again after training). Its
 * outputs equal the original's eval-mode outputs up to float32 rounding (tests/models/fold_test.ts). A
 * convolution is folded only when the batch norm is its sole consumer, normalises its channels (last axis)
 * and the convolution has no activation of its own.
 */
import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import { hostBackend } from "../engine/webgpu.ts";

/** A layer's entry in `LayersModel.getConfig().layers`. */
type LayerEntry = {
  name: string;
  className: string;
  config: Record<string, unknown>;
  inboundNodes: [string, number, number, Record<string, unknown>?][][];
};
type ModelConfig = {
  name: string;
  layers: LayerEntry[];
  inputLayers: [string, number, number][];
  outputLayers: [string, number, number][];
};

const CONVS = new Set(["Conv2D", "DepthwiseConv2D"]);

/** The model's graph config (`getConfig()`, serialised anew on every call: read it once). */
function graphConfig(model: tfl.LayersModel): ModelConfig {
  return model.getConfig() as unknown as ModelConfig;
}

/** Conv → batch-norm pairs that can be folded: conv name → batch-norm name. */
export function foldablePairs(model: tfl.LayersModel, cfg = graphConfig(model)): Map<string, string> {
  // a Sequential's config lists bare layers without a graph: left as it is (every registered model is functional)
  if (!Array.isArray(cfg.layers) || !cfg.layers.every((l) => Array.isArray(l.inboundNodes))) return new Map();
  const byName = new Map(cfg.layers.map((l) => [l.name, l]));
  const uses = new Map<string, number>();
  const use = (name: string) => uses.set(name, (uses.get(name) ?? 0) + 1);
  for (const l of cfg.layers) for (const node of l.inboundNodes) for (const [name] of node) use(name);
  for (const [name] of cfg.outputLayers) use(name);
  const pairs = new Map<string, string>();
  for (const bn of cfg.layers) {
    if (bn.className !== "BatchNormalization" || bn.inboundNodes.length !== 1) continue;
    const node = bn.inboundNodes[0];
    if (node.length !== 1) continue;
    const conv = byName.get(node[0][0]);
    if (!conv || !CONVS.has(conv.className) || conv.inboundNodes.length !== 1 || uses.get(conv.name) !== 1) {
      continue;
    }
    if ((conv.config.activation ?? "linear") !== "linear") continue;
    const axis = bn.config.axis as number;
    const convLayer = model.getLayer(conv.name);
    const rank = (convLayer.outputShape as number[]).length;
    if (axis !== -1 && axis !== rank - 1) continue;
    if (conv.config.dataFormat && conv.config.dataFormat !== "channelsLast") continue;
    pairs.set(conv.name, bn.name);
  }
  return pairs;
}

/** Every `...Initializer` in a layer config replaced by zeros: the weights are set right after building. */
function zeroInitializers(config: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(config)) {
    out[k] = k.endsWith("Initializer") && v !== null ? { className: "Zeros", config: {} } : v;
  }
  return out;
}

/**
 * `model` with every foldable conv → batch-norm pair (see {@link foldablePairs}) merged into one biased
 * convolution, for inference only. Returns `model` itself when there is nothing to fold; otherwise a new model
 * the caller disposes (the original is untouched).
 */
export function foldBatchNorm(model: tfl.LayersModel): tfl.LayersModel {
  const cfg = graphConfig(model);
  const pairs = foldablePairs(model, cfg);
  if (pairs.size === 0) return model;
  const bnToConv = new Map([...pairs].map(([c, b]) => [b, c]));
  const rename = (name: string) => bnToConv.get(name) ?? name;
  const layers: LayerEntry[] = [];
  for (const l of cfg.layers) {
    if (bnToConv.has(l.name)) continue;
    const config = zeroInitializers(pairs.has(l.name) ? { ...l.config, useBias: true } : l.config);
    const inboundNodes = l.inboundNodes.map((node) =>
      node.map(([name, ni, ti, kw]) => [rename(name), ni, ti, kw] as LayerEntry["inboundNodes"][0][0])
    );
    layers.push({ ...l, config, inboundNodes });
  }
  const folded = tfl.LayersModel.fromConfig(
    tfl.LayersModel,
    {
      ...cfg,
      name: `${cfg.name}_folded`,
      layers,
      outputLayers: cfg.outputLayers.map(([n, ni, ti]) => [rename(n), ni, ti]),
    } as unknown as tf.serialization.ConfigDict,
  ) as tfl.LayersModel;
  for (const layer of folded.layers) {
    const orig = model.getLayer(layer.name);
    const bnName = pairs.get(layer.name);
    if (bnName === undefined) {
      if (layer.weights.length) layer.setWeights(orig.getWeights());
      continue;
    }
    const [kernel, bias] = foldConvBn(orig, model.getLayer(bnName));
    layer.setWeights([kernel, bias]);
    tf.dispose([kernel, bias]);
  }
  return folded;
}

/** The folded kernel and bias of one conv → batch-norm pair (computed in float64, stored as float32). */
function foldConvBn(conv: tfl.layers.Layer, bn: tfl.layers.Layer): [tf.Tensor, tf.Tensor] {
  const bnCfg = bn.getConfig();
  const eps = bnCfg.epsilon as number;
  const [kernelT, biasT] = conv.getWeights();
  const bnW = bn.getWeights().map((w) => w.dataSync() as Float32Array);
  // BatchNormalization weights in order: gamma (if scale), beta (if center), moving mean, moving variance.
  let i = 0;
  const channels = bnW[bnW.length - 1].length;
  const gamma = bnCfg.scale ? bnW[i++] : new Float32Array(channels).fill(1);
  const beta = bnCfg.center ? bnW[i++] : new Float32Array(channels);
  const [mean, variance] = [bnW[i], bnW[i + 1]];
  const w = kernelT.dataSync() as Float32Array;
  const b = biasT ? biasT.dataSync() as Float32Array : new Float32Array(channels);
  const scale = new Float64Array(channels);
  for (let c = 0; c < channels; c++) scale[c] = gamma[c] / Math.sqrt(variance[c] + eps);
  // The output channel is the fastest-varying index of both kernels: [kh, kw, in, out] for Conv2D and
  // [kh, kw, in, multiplier] (channel in·multiplier + m) for DepthwiseConv2D.
  const kernel = new Float32Array(w.length);
  for (let e = 0; e < w.length; e++) kernel[e] = w[e] * scale[e % channels];
  const bias = new Float32Array(channels);
  for (let c = 0; c < channels; c++) bias[c] = beta[c] + (b[c] - mean[c]) * scale[c];
  return [tf.tensor(kernel, kernelT.shape), tf.tensor1d(bias)];
}

/**
 * The model to run eval-mode inference with on the current backend, and how to let go of it: on CPU backends
 * `model` with its batch norms folded (see {@link foldBatchNorm}), elsewhere `model` itself (a GPU backend's
 * weights cannot be read synchronously under Deno, and a batch-norm pass costs little there). `release()`
 * disposes the folded copy, if one was made, and never `model`.
 */
export function forInference(model: tfl.LayersModel): { model: tfl.LayersModel; release: () => void } {
  const m = hostBackend() ? foldBatchNorm(model) : model;
  return { model: m, release: () => m !== model && m.dispose() };
}
