/** Short real training runs: native matches cpu step by step, and the training loop leaks no tensors. */
import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import { NATIVE, rand } from "./helpers.ts";
import { crossEntropy } from "../../lib/bench/nets.ts";
import { AdamW } from "../../lib/bench/adamw.ts";

/** conv-BN-ReLU-pool, depthwise, strided conv, dense: every replaced kernel family takes part. */
function tinyNet(): tfl.LayersModel {
  const inp = tfl.input({ shape: [12, 12, 2] });
  let x = tfl.layers.conv2d({
    filters: 8,
    kernelSize: 3,
    padding: "same",
    kernelInitializer: tfl.initializers.glorotUniform({ seed: 1 }),
  }).apply(inp) as tfl.SymbolicTensor;
  x = tfl.layers.batchNormalization({ momentum: 0.9 }).apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.reLU().apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.maxPooling2d({ poolSize: 2 }).apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.depthwiseConv2d({
    kernelSize: 3,
    depthMultiplier: 2,
    padding: "same",
    depthwiseInitializer: tfl.initializers.glorotUniform({ seed: 2 }),
  }).apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.conv2d({
    filters: 6,
    kernelSize: 3,
    strides: 2,
    activation: "relu",
    kernelInitializer: tfl.initializers.glorotUniform({ seed: 3 }),
  }).apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.flatten().apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.dense({ units: 3, kernelInitializer: tfl.initializers.glorotUniform({ seed: 4 }) }).apply(
    x,
  ) as tfl.SymbolicTensor;
  return tfl.model({ inputs: inp, outputs: x });
}

const XS = rand(8 * 12 * 12 * 2, 7);
const YS = Int32Array.from({ length: 8 }, (_, i) => i % 3);

/** Train `epochs` x 2 batches of 4 with AdamW on `backend`; returns per-step losses and tensor counts per epoch. */
async function train(backend: string, epochs: number): Promise<{ losses: number[]; counts: number[] }> {
  await tf.setBackend(backend);
  const model = tinyNet();
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const opt = new AdamW(vars, { lr: 1e-2 });
  const losses: number[] = [];
  const counts: number[] = [];
  for (let e = 0; e < epochs; e++) {
    for (let b = 0; b < 2; b++) {
      const x = tf.tensor4d(XS.subarray(b * 4 * 288, (b + 1) * 4 * 288), [4, 12, 12, 2]);
      const y = tf.tensor1d(YS.subarray(b * 4, (b + 1) * 4), "int32");
      const { value, grads } = tf.variableGrads(
        () => crossEntropy(model.apply(x, { training: true }) as tf.Tensor, y),
        vars,
      );
      losses.push(value.dataSync()[0]);
      opt.step(grads);
      tf.dispose([x, y, value, ...Object.values(grads)]);
    }
    counts.push(tf.memory().numTensors);
  }
  opt.dispose();
  model.dispose();
  return { losses, counts };
}

Deno.test({
  name: "native: tiny CNN trained 6 AdamW steps gives the cpu loss curve (rel 1e-3)",
  ignore: !NATIVE.ok,
}, async () => {
  const cpu = await train("cpu", 3);
  const nat = await train("native", 3);
  for (let i = 0; i < cpu.losses.length; i++) {
    const rel = Math.abs(nat.losses[i] - cpu.losses[i]) / Math.abs(cpu.losses[i]);
    if (!(rel <= 1e-3)) throw new Error(`step ${i}: native loss ${nat.losses[i]} vs cpu ${cpu.losses[i]}`);
  }
  // the loss must actually move, or the comparison proves nothing
  if (!(cpu.losses[cpu.losses.length - 1] < cpu.losses[0])) {
    throw new Error(`loss did not decrease: ${cpu.losses}`);
  }
});

Deno.test({
  name: "native: tf.memory().numTensors is the same after epoch 1 and epoch 3",
  ignore: !NATIVE.ok,
}, async () => {
  const { counts } = await train("native", 3);
  if (counts[0] !== counts[2]) throw new Error(`tensor count grew: ${counts.join(" -> ")}`);
});
