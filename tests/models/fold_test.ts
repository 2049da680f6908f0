/**
 * lib/models/fold.ts: batch norm folded into the convolution before it gives the eval-mode outputs of the
 * original model (float32 rounding apart), for every registered architecture that has conv → BN pairs, with
 * non-trivial statistics; pairs that must not fold are left alone; the original model is untouched.
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import * as tfl from "@tensorflow/tfjs-layers";
import { foldablePairs, foldBatchNorm } from "../../lib/models/fold.ts";
import { createModel } from "../../lib/models/registry.ts";
import { referenceNet } from "../../lib/bench/nets.ts";
import { rand } from "../engine/helpers.ts";

/** Gives every batch norm random gamma, beta, moving mean and a moving variance in [0.5, 1.5]. */
function randomizeBatchNorms(model: tfl.LayersModel): void {
  let seed = 100;
  for (const layer of model.layers) {
    if (layer.getClassName() !== "BatchNormalization") continue;
    const ws = layer.getWeights();
    const n = ws[0].size;
    const vals = ws.map((_, i) =>
      i === ws.length - 1 ? tf.tensor1d(rand(n, seed++).map((v) => 1 + v / 2)) : tf.tensor1d(rand(n, seed++))
    );
    layer.setWeights(vals);
    tf.dispose(vals);
  }
}

const bnCount = (m: tfl.LayersModel) =>
  m.layers.filter((l) => l.getClassName() === "BatchNormalization").length;

function checkFold(model: tfl.LayersModel, minFolded: number): void {
  randomizeBatchNorms(model);
  const shape = model.inputs[0].shape.slice(1) as number[];
  const x = tf.tensor(rand(3 * shape.reduce((p, q) => p * q, 1), 9), [3, ...shape]);
  const before = model.getWeights().map((w) => Float32Array.from(w.dataSync()));
  const want = tf.tidy(() => (model.predict(x) as tf.Tensor).dataSync() as Float32Array);
  const folded = foldBatchNorm(model);
  try {
    assert.notStrictEqual(folded, model);
    assert.ok(
      bnCount(model) - bnCount(folded) >= minFolded,
      `${bnCount(model)} → ${bnCount(folded)} batch norms`,
    );
    const got = tf.tidy(() => (folded.predict(x) as tf.Tensor).dataSync() as Float32Array);
    const scale = Math.max(...want.map(Math.abs));
    for (let i = 0; i < want.length; i++) {
      assert.ok(Math.abs(got[i] - want[i]) <= 1e-4 * scale, `logit ${i}: ${got[i]} vs ${want[i]}`);
    }
    // the original keeps its layers and weights
    model.getWeights().forEach((w, i) => assert.deepStrictEqual(w.dataSync(), before[i]));
  } finally {
    folded.dispose();
    x.dispose();
  }
}

Deno.test("foldBatchNorm: every registered architecture with conv → BN gives its eval outputs", async () => {
  await tf.setBackend("cpu");
  const cases: [string, () => tfl.LayersModel, number][] = [
    [
      "efficientnet_b3 @32",
      () => createModel("efficientnet_b3", { inputShape: [32, 32, 3], numClasses: 7 }),
      78,
    ],
    ["vgg_fer", () => createModel("vgg_fer", { inputShape: [44, 44, 1], numClasses: 7 }), 8],
    ["resnet_fer", () => createModel("resnet_fer", { inputShape: [44, 44, 1], numClasses: 7 }), 10],
    ["fer_cnn_small", () => createModel("fer_cnn_small", { inputShape: [48, 48, 1], numClasses: 7 }), 4],
    ["bench reference net (conv with bias → BN)", () => referenceNet(), 8],
  ];
  const start = tf.memory().numTensors;
  for (const [name, make, min] of cases) {
    const model = make();
    try {
      checkFold(model, min);
    } catch (e) {
      throw new Error(`${name}: ${(e as Error).message}`);
    } finally {
      model.dispose();
    }
  }
  assert.equal(tf.memory().numTensors, start, "no tensor leaked");
});

Deno.test("foldBatchNorm: nothing to fold returns the model itself (ConvNeXt's layer norms, a Sequential)", async () => {
  await tf.setBackend("cpu");
  const model = createModel("convnext_tiny", { inputShape: [32, 32, 3], numClasses: 7, init: "zeros" });
  const seq = tfl.sequential({
    layers: [
      tfl.layers.conv2d({ inputShape: [8, 8, 1], filters: 2, kernelSize: 3 }),
      tfl.layers.batchNormalization(),
    ],
  });
  try {
    assert.strictEqual(foldBatchNorm(model), model);
    assert.strictEqual(foldBatchNorm(seq), seq);
  } finally {
    model.dispose();
    seq.dispose();
  }
});

Deno.test("foldablePairs: a conv whose output is also used elsewhere, or that has an activation, is not folded", async () => {
  await tf.setBackend("cpu");
  const input = tfl.input({ shape: [8, 8, 2] });
  const c1 = tfl.layers.conv2d({ filters: 4, kernelSize: 3, padding: "same", name: "c1" }).apply(
    input,
  ) as tfl.SymbolicTensor;
  const b1 = tfl.layers.batchNormalization({ name: "b1" }).apply(c1) as tfl.SymbolicTensor;
  const sum = tfl.layers.add({ name: "sum" }).apply([b1, c1]) as tfl.SymbolicTensor; // c1 used twice
  const c2 = tfl.layers.conv2d({ filters: 4, kernelSize: 1, activation: "relu", name: "c2" })
    .apply(sum) as tfl.SymbolicTensor;
  const b2 = tfl.layers.batchNormalization({ name: "b2" }).apply(c2) as tfl.SymbolicTensor; // conv has an activation
  const c3 = tfl.layers.depthwiseConv2d({ kernelSize: 3, padding: "same", useBias: false, name: "c3" })
    .apply(b2) as tfl.SymbolicTensor;
  const b3 = tfl.layers.batchNormalization({ name: "b3" }).apply(c3) as tfl.SymbolicTensor; // foldable
  const model = tfl.model({ inputs: input, outputs: b3 });
  try {
    assert.deepStrictEqual([...foldablePairs(model)], [["c3", "b3"]]);
    checkFold(model, 1);
  } finally {
    model.dispose();
  }
});
