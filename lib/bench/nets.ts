/**
 * The two networks the engine benchmark and tests train (mirrored exactly in tests/bench/torch_ref.py):
 * the VGG-style reference net and a small ConvNeXt-style depthwise net.
 */
import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import { AdamW } from "./adamw.ts";

/**
 * Reference net: [conv3x3 c, BN, ReLU] x2, maxpool 2 for c in `widths` (default 64,128,256,512); flatten;
 * dense 256, ReLU, dropout 0.5; dense `classes`. Input [h, w, ch] (default 48x48x1).
 */
export function referenceNet(
  { input = [48, 48, 1], widths = [64, 128, 256, 512], hidden = 256, classes = 7, seed = 0 }: {
    input?: [number, number, number];
    widths?: number[];
    hidden?: number;
    classes?: number;
    seed?: number;
  } = {},
): tfl.LayersModel {
  let s = seed;
  const init = () => tfl.initializers.heNormal({ seed: ++s });
  const inp = tfl.input({ shape: input });
  let x = inp as tfl.SymbolicTensor;
  for (const c of widths) {
    for (let r = 0; r < 2; r++) {
      x = tfl.layers.conv2d({ filters: c, kernelSize: 3, padding: "same", kernelInitializer: init() })
        .apply(x) as tfl.SymbolicTensor;
      x = tfl.layers.batchNormalization({ momentum: 0.9, epsilon: 1e-5 }).apply(x) as tfl.SymbolicTensor;
      x = tfl.layers.reLU().apply(x) as tfl.SymbolicTensor;
    }
    x = tfl.layers.maxPooling2d({ poolSize: 2 }).apply(x) as tfl.SymbolicTensor;
  }
  x = tfl.layers.flatten().apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.dense({ units: hidden, activation: "relu", kernelInitializer: init() }).apply(
    x,
  ) as tfl.SymbolicTensor;
  x = tfl.layers.dropout({ rate: 0.5, seed: ++s }).apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.dense({ units: classes, kernelInitializer: init() }).apply(x) as tfl.SymbolicTensor;
  return tfl.model({ inputs: inp, outputs: x });
}

/**
 * ConvNeXt-style net: stem conv 4x4 stride 4 + LayerNorm; per stage `depth` blocks of
 * [dw7x7, LayerNorm, dense 4c, GELU, dense c] + residual; LayerNorm + conv 2x2 s2 between stages;
 * global average pool, LayerNorm, dense `classes`. Input default 32x32x3.
 */
export function convnextNet(
  { input = [32, 32, 3], dims = [64, 128], depths = [2, 2], classes = 7, seed = 0 }: {
    input?: [number, number, number];
    dims?: number[];
    depths?: number[];
    classes?: number;
    seed?: number;
  } = {},
): tfl.LayersModel {
  let s = seed;
  const init = () => tfl.initializers.truncatedNormal({ stddev: 0.02, seed: ++s });
  const ln = () => tfl.layers.layerNormalization({ epsilon: 1e-6 });
  const inp = tfl.input({ shape: input });
  let x = tfl.layers.conv2d({ filters: dims[0], kernelSize: 4, strides: 4, kernelInitializer: init() })
    .apply(inp) as tfl.SymbolicTensor;
  x = ln().apply(x) as tfl.SymbolicTensor;
  dims.forEach((c, stage) => {
    if (stage > 0) {
      x = ln().apply(x) as tfl.SymbolicTensor;
      x = tfl.layers.conv2d({ filters: c, kernelSize: 2, strides: 2, kernelInitializer: init() })
        .apply(x) as tfl.SymbolicTensor;
    }
    for (let b = 0; b < depths[stage]; b++) {
      const skip = x;
      let y = tfl.layers.depthwiseConv2d({ kernelSize: 7, padding: "same", depthwiseInitializer: init() })
        .apply(x) as tfl.SymbolicTensor;
      y = ln().apply(y) as tfl.SymbolicTensor;
      y = tfl.layers.dense({ units: 4 * c, activation: "gelu", kernelInitializer: init() })
        .apply(y) as tfl.SymbolicTensor;
      y = tfl.layers.dense({ units: c, kernelInitializer: init() }).apply(y) as tfl.SymbolicTensor;
      x = tfl.layers.add().apply([skip, y]) as tfl.SymbolicTensor;
    }
  });
  x = tfl.layers.globalAveragePooling2d({}).apply(x) as tfl.SymbolicTensor;
  x = ln().apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.dense({ units: classes, kernelInitializer: init() }).apply(x) as tfl.SymbolicTensor;
  return tfl.model({ inputs: inp, outputs: x });
}

/** Mean softmax cross-entropy of logits [b, k] against int labels [b]. */
export function crossEntropy(logits: tf.Tensor, labels: tf.Tensor1D): tf.Scalar {
  return tf.tidy(() => {
    const k = logits.shape[logits.shape.length - 1];
    return tf.losses.softmaxCrossEntropy(tf.oneHot(labels, k), logits) as tf.Scalar;
  });
}

/**
 * AdamW (lr 1e-3) training steps of `model` on one fixed random batch of `batch` images labelled 0..6 in
 * turn — what the benchmark and the profiler time. `afterForward` runs after the loss is read back
 * (asynchronously, as on a GPU backend), before the update (the benchmark samples memory there). `dispose`
 * frees the batch and the optimizer state.
 */
export function syntheticTraining(
  model: tfl.LayersModel,
  batch: number,
  afterForward: () => void = () => {},
): { step: () => Promise<void>; dispose: () => void } {
  const shape = model.inputs[0].shape.slice(1) as number[];
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const opt = new AdamW(vars, { lr: 1e-3 });
  const x = tf.randomNormal([batch, ...shape]);
  const y = tf.tensor1d(Array.from({ length: batch }, (_, i) => i % 7), "int32");
  return {
    step: async () => {
      const { value, grads } = tf.variableGrads(
        () => crossEntropy(model.apply(x, { training: true }) as tf.Tensor, y),
        vars,
      );
      await value.data();
      afterForward();
      opt.step(grads);
      tf.dispose([value, ...Object.values(grads)]);
    },
    dispose: () => {
      tf.dispose([x, y]);
      opt.dispose();
    },
  };
}
