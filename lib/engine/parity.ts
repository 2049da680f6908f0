/**
 * Gradient parity between two tfjs backends (webgpu against cpu): each case is a tiny Keras-style model built
 * from the layers the study's models use (conv, depthwise, batch norm, layer norm, GELU / SiLU / sigmoid,
 * pooling, dense, softmax cross-entropy, and reduced EfficientNet / ConvNeXt / FER-CNN models), run once per
 * backend with the same weights and input; the loss, the gradient with respect to the input and every
 * trainable weight are compared. Used by tests/engine/webgpu_test.ts (CI, on the software adapter) and by
 * tools/gpu_check.ts (on a real GPU).
 */
import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import { mulberry32 } from "../util/rng.ts";
import { makeLoss } from "../train/losses.ts";
import { efficientnet } from "../models/efficientnet.ts";
import { convnext } from "../models/convnext.ts";
import { ferCnn } from "../models/fer_cnn.ts";

type Sym = tfl.SymbolicTensor;

/** One parity case: a model over an input of shape `input` (batch first) and the scalar it is trained on. */
export type ParityCase = {
  name: string;
  /** Kernel family (conv, depthwise, bn, ln, activation, pooling, matmul, softmax-ce, model). */
  family: string;
  input: number[];
  build: () => tfl.LayersModel;
  /** Scalar objective of the output; default: sum(output * fixed random weights). */
  loss?: "ce" | "label_smoothing";
};

/** What one backend produced for a case. */
export type CaseValues = { loss: number; names: string[]; grads: Float32Array[]; weights: Float32Array[] };

/**
 * Largest elementwise deviation of a case's values, relative to the largest magnitude of each tensor. Gradients
 * that are zero in exact arithmetic (a conv bias followed by batch norm, whose shift the normalisation removes)
 * hold only rounding noise: every tensor's scale is at least 1% of the case's largest gradient.
 */
export type ParityResult = {
  name: string;
  family: string;
  /** max |a - b| / max(max |b|, 0.01 · largest gradient of the case) over the loss and each gradient. */
  maxRelError: number;
  /** The tensor where it occurs. */
  worst: string;
  seconds: number;
};

const seq = (shape: number[], layers: tfl.layers.Layer[]) =>
  tfl.sequential({ layers: [tfl.layers.inputLayer({ inputShape: shape }), ...layers] });

/** Squeeze-and-excitation as EfficientNet builds it: GAP, 1x1 conv SiLU, 1x1 conv sigmoid, multiply. */
function seBlock(shape: number[]): tfl.LayersModel {
  const inp = tfl.input({ shape });
  const c = shape[2];
  let s = tfl.layers.globalAveragePooling2d({}).apply(inp) as Sym;
  s = tfl.layers.reshape({ targetShape: [1, 1, c] }).apply(s) as Sym;
  s = tfl.layers.conv2d({ filters: 2, kernelSize: 1, activation: "swish" }).apply(s) as Sym;
  s = tfl.layers.conv2d({ filters: c, kernelSize: 1, activation: "sigmoid" }).apply(s) as Sym;
  const out = tfl.layers.multiply().apply([inp, s]) as Sym;
  return tfl.model({ inputs: inp, outputs: out });
}

/** The cases, by family; every one small enough for a software adapter. */
export function parityCases(): ParityCase[] {
  const L = tfl.layers;
  return [
    {
      name: "conv2d 3x3 same, bias, fused ReLU",
      family: "conv",
      input: [2, 8, 8, 3],
      build: () =>
        seq([8, 8, 3], [L.conv2d({ filters: 4, kernelSize: 3, padding: "same", activation: "relu" })]),
    },
    {
      name: "conv2d 3x3 stride 2 after zero padding (EfficientNet stem), no bias",
      family: "conv",
      input: [2, 9, 9, 3],
      build: () =>
        seq([9, 9, 3], [
          L.zeroPadding2d({ padding: [[0, 1], [0, 1]] }),
          L.conv2d({ filters: 4, kernelSize: 3, strides: 2, useBias: false }),
        ]),
    },
    {
      name: "conv2d 4x4 stride 4 (ConvNeXt stem), then 1x1",
      family: "conv",
      input: [2, 8, 8, 3],
      build: () =>
        seq([8, 8, 3], [
          L.conv2d({ filters: 6, kernelSize: 4, strides: 4 }),
          L.conv2d({ filters: 5, kernelSize: 1 }),
        ]),
    },
    {
      name: "depthwise 3x3 same",
      family: "depthwise",
      input: [2, 6, 6, 4],
      build: () => seq([6, 6, 4], [L.depthwiseConv2d({ kernelSize: 3, padding: "same", useBias: false })]),
    },
    {
      name: "depthwise 5x5 stride 2 after zero padding",
      family: "depthwise",
      input: [2, 9, 9, 4],
      build: () =>
        seq([9, 9, 4], [
          L.zeroPadding2d({ padding: [[1, 2], [1, 2]] }),
          L.depthwiseConv2d({ kernelSize: 5, strides: 2, useBias: false }),
        ]),
    },
    {
      name: "depthwise 7x7 same with bias (ConvNeXt)",
      family: "depthwise",
      input: [2, 7, 7, 4],
      build: () => seq([7, 7, 4], [L.depthwiseConv2d({ kernelSize: 7, padding: "same" })]),
    },
    {
      name: "batch norm (training statistics)",
      family: "bn",
      input: [4, 4, 4, 5],
      build: () => seq([4, 4, 5], [L.batchNormalization({ momentum: 0.9, epsilon: 1e-5 })]),
    },
    {
      name: "layer norm over channels",
      family: "ln",
      input: [2, 3, 3, 8],
      build: () => seq([3, 3, 8], [L.layerNormalization({ epsilon: 1e-6 })]),
    },
    {
      name: "dense + GELU",
      family: "activation",
      input: [3, 2, 2, 6],
      build: () => seq([2, 2, 6], [L.dense({ units: 12, activation: "gelu" })]),
    },
    {
      name: "conv 1x1 + SiLU",
      family: "activation",
      input: [2, 4, 4, 3],
      build: () => seq([4, 4, 3], [L.conv2d({ filters: 6, kernelSize: 1, activation: "swish" })]),
    },
    {
      name: "squeeze-excitation (GAP, SiLU, sigmoid, multiply)",
      family: "activation",
      input: [2, 4, 4, 6],
      build: () => seBlock([4, 4, 6]),
    },
    {
      name: "max pool 2x2, global average pool",
      family: "pooling",
      input: [2, 6, 6, 3],
      build: () => seq([6, 6, 3], [L.maxPooling2d({ poolSize: 2 }), L.globalAveragePooling2d({})]),
    },
    {
      name: "max pool 3x3 stride 2 same",
      family: "pooling",
      input: [2, 7, 7, 3],
      build: () => seq([7, 7, 3], [L.maxPooling2d({ poolSize: 3, strides: 2, padding: "same" })]),
    },
    {
      name: "flatten, dense + ReLU, dense without bias",
      family: "matmul",
      input: [3, 3, 3, 2],
      build: () =>
        seq([3, 3, 2], [
          L.flatten(),
          L.dense({ units: 16, activation: "relu" }),
          L.dense({ units: 5, useBias: false }),
        ]),
    },
    {
      name: "softmax cross-entropy",
      family: "softmax-ce",
      input: [6, 10],
      loss: "ce",
      build: () => seq([10], [L.dense({ units: 7 })]),
    },
    {
      name: "softmax cross-entropy, label smoothing 0.1",
      family: "softmax-ce",
      input: [6, 10],
      loss: "label_smoothing",
      build: () => seq([10], [L.dense({ units: 7 })]),
    },
    {
      name: "EfficientNet (reduced: 2 stages, SE, BN, SiLU)",
      family: "model",
      input: [2, 16, 16, 3],
      loss: "ce",
      build: () =>
        efficientnet({
          stemSize: 8,
          channelMultiplier: 1,
          depthMultiplier: 1,
          numFeatures: 16,
          stages: [
            { type: "ds", repeats: 1, kernel: 3, stride: 1, expRatio: 1, outChs: 8, seRatio: 0.25 },
            { type: "ir", repeats: 1, kernel: 5, stride: 2, expRatio: 2, outChs: 8, seRatio: 0.25 },
          ],
        }, { inputShape: [16, 16, 3], seed: 1 }),
    },
    {
      name: "ConvNeXt (reduced: dw7x7, LN, GELU, LayerScale)",
      family: "model",
      input: [2, 16, 16, 3],
      loss: "ce",
      build: () =>
        convnext({ depths: [1, 1], dims: [8, 16], lsInitValue: 0.5 }, { inputShape: [16, 16, 3], seed: 1 }),
    },
    {
      name: "FER CNN (reduced width, 16x16 gray)",
      family: "model",
      input: [2, 16, 16, 1],
      loss: "ce",
      build: () =>
        ferCnn({ widths: [4, 8], convsPerStage: 2, hidden: [16], widthMultiplier: 1 }, {
          inputShape: [16, 16, 1],
          dropRate: 0,
          seed: 1,
        }),
    },
  ];
}

const numel = (s: number[]) => s.reduce((a, b) => a * b, 1);

/** Deterministic pseudo-random values in [-1, 1). */
function values(n: number, seed: number): Float32Array {
  const r = mulberry32(seed);
  return Float32Array.from({ length: n }, () => r() * 2 - 1);
}

/**
 * Runs a case on the current backend: the loss and the gradients of the loss with respect to the input and
 * every trainable weight (training mode). `weights` (all model weights, as from a previous run) replace the
 * freshly initialised ones. Values are read asynchronously.
 */
export async function caseValues(c: ParityCase, weights?: Float32Array[]): Promise<CaseValues> {
  const model = c.build();
  try {
    if (weights) {
      const ts = model.weights.map((w, i) => tf.tensor(weights[i], w.shape as number[]));
      model.setWeights(ts);
      tf.dispose(ts);
    }
    // the weights as they are before the step (training-mode batch norm updates its moving statistics)
    const before = await Promise.all(model.weights.map(async (w) => (await w.read().data()) as Float32Array));
    const x = tf.variable(
      tf.tensor(values(numel(c.input), 11), c.input),
      true,
      `parity_x_${crypto.randomUUID()}`,
    );
    const vars = [x, ...model.trainableWeights.map((w) => w.read() as tf.Variable)];
    const outShape = (model.outputs[0].shape as number[]).slice(1);
    const probe = tf.tensor(values(c.input[0] * numel(outShape), 12), [c.input[0], ...outShape]);
    const labels = tf.tensor1d(Array.from({ length: c.input[0] }, (_, i) => (3 * i + 1) % 7), "int32");
    const loss = c.loss ? makeLoss({ kind: c.loss, smoothing: 0.1 }) : null;
    const { value, grads } = tf.variableGrads(() => {
      const y = model.apply(x, { training: true }) as tf.Tensor;
      return loss ? loss(y, labels) : tf.sum(tf.mul(y, probe)) as tf.Scalar;
    }, vars);
    const out: CaseValues = {
      loss: (await value.data())[0],
      names: ["input", ...model.trainableWeights.map((w) => w.originalName)],
      grads: [],
      weights: before,
    };
    for (const v of vars) out.grads.push((await grads[v.name].data()) as Float32Array);
    tf.dispose([x, probe, labels, value, ...Object.values(grads)]);
    return out;
  } finally {
    model.dispose();
  }
}

/** Largest absolute value (0 for an empty array). */
export function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}

/** Largest deviation of `got` from `want`, relative to the largest magnitude of `want` (at least `floor`). */
export function relError(got: ArrayLike<number>, want: ArrayLike<number>, floor = 1e-6): number {
  if (got.length !== want.length) return Infinity;
  const scale = Math.max(floor, 1e-30, maxAbs(want));
  let worst = 0;
  for (let i = 0; i < want.length; i++) {
    const d = Math.abs(got[i] - want[i]);
    if (!(d <= worst)) worst = Number.isNaN(d) ? Infinity : d;
  }
  return worst / scale;
}

/**
 * Runs every case on `reference` (default cpu) and then on `target` (default webgpu) with the reference's
 * weights, and returns the largest relative error per case. Leaves `target` as the current backend.
 */
export async function gradientParity(
  { reference = "cpu", target = "webgpu", cases = parityCases(), onCase }: {
    reference?: string;
    target?: string;
    cases?: ParityCase[];
    onCase?: (r: ParityResult) => void;
  } = {},
): Promise<ParityResult[]> {
  const results: ParityResult[] = [];
  for (const c of cases) {
    const t0 = performance.now();
    if (!(await tf.setBackend(reference))) {
      throw new Error(`gradient parity: backend ${reference} unavailable`);
    }
    // the cpu backend's one-time "install tfjs-node" banner is noise here
    const b = tf.backend() as unknown as { firstUse?: boolean };
    if (b.firstUse) b.firstUse = false;
    const want = await caseValues(c);
    if (!(await tf.setBackend(target))) throw new Error(`gradient parity: backend ${target} unavailable`);
    const got = await caseValues(c, want.weights);
    let maxRelError = relError([got.loss], [want.loss]);
    let worst = "loss";
    const floor = 0.01 * Math.max(...want.grads.map(maxAbs));
    want.grads.forEach((g, i) => {
      const e = relError(got.grads[i], g, floor);
      if (e > maxRelError || Number.isNaN(e)) [maxRelError, worst] = [e, `d/d ${want.names[i]}`];
    });
    const r = {
      name: c.name,
      family: c.family,
      maxRelError,
      worst,
      seconds: (performance.now() - t0) / 1000,
    };
    onCase?.(r);
    results.push(r);
  }
  return results;
}
