import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import "@tensorflow/tfjs-layers"; // registers the gradient functions tf.valueAndGrads needs
import assert from "node:assert/strict";
import {
  crossEntropy,
  focalLoss,
  inverseFrequencyWeights,
  labelSmoothingCrossEntropy,
  type LossFn,
  makeLoss,
  weightedCrossEntropy,
} from "../../lib/train/losses.ts";

await tf.setBackend("cpu");
const ref = JSON.parse(Deno.readTextFileSync(new URL("../fixtures/optim/losses.json", import.meta.url))) as {
  logits: number[];
  labels: number[];
  num_classes: number;
  weights: number[];
  alpha: number[];
  cases: Record<string, { loss: number; grad: number[] }>;
};
const B = ref.labels.length;

function check(name: string, fn: LossFn) {
  Deno.test(`loss ${name} matches torch (value and gradient)`, () => {
    const before = tf.memory().numTensors;
    const x = tf.tensor2d(ref.logits, [B, ref.num_classes]);
    const y = tf.tensor1d(ref.labels, "int32");
    const { value, grads } = tf.valueAndGrads((l: tf.Tensor) => fn(l, y))([x]);
    const want = ref.cases[name];
    const got = value.dataSync()[0];
    assert.ok(Math.abs(got - want.loss) < 1e-5, `${name}: ${got} vs torch ${want.loss}`);
    const g = grads[0].dataSync();
    for (let i = 0; i < g.length; i++) {
      assert.ok(Math.abs(g[i] - want.grad[i]) < 1e-6, `${name} grad[${i}]: ${g[i]} vs ${want.grad[i]}`);
    }
    tf.dispose([x, y, value, ...grads]);
    assert.equal(tf.memory().numTensors, before, `${name} leaked tensors`);
  });
}

check("ce", crossEntropy);
check("smooth_0.1", (l, y) => labelSmoothingCrossEntropy(l, y, 0.1));
check("smooth_0.0", (l, y) => labelSmoothingCrossEntropy(l, y, 0));
check("weighted", (l, y) => weightedCrossEntropy(l, y, ref.weights));
check("focal_g2", (l, y) => focalLoss(l, y, 2));
check("focal_g0", (l, y) => focalLoss(l, y, 0));
check("focal_g2_alpha", (l, y) => focalLoss(l, y, 2, ref.alpha));
check("weighted", makeLoss({ kind: "weighted_ce", weights: ref.weights }));
check("smooth_0.1", makeLoss({ kind: "label_smoothing", smoothing: 0.1 }));

Deno.test("the study's label smoothing is not torch's label_smoothing", () => {
  const x = tf.tensor2d(ref.logits, [B, ref.num_classes]);
  const y = tf.tensor1d(ref.labels, "int32");
  const ours = labelSmoothingCrossEntropy(x, y, 0.1);
  const v = ours.dataSync()[0];
  assert.ok(Math.abs(v - ref.cases["torch_label_smoothing_0.1"].loss) > 1e-3);
  tf.dispose([x, y, ours]);
});

Deno.test("inverseFrequencyWeights matches sklearn balanced weights", () => {
  const w = inverseFrequencyWeights(ref.labels, ref.num_classes);
  w.forEach((v, i) => assert.ok(Math.abs(v - ref.weights[i]) < 1e-12));
  assert.deepEqual(inverseFrequencyWeights([0, 0, 1, 1], 3), [4 / 6, 4 / 6, 0]);
});

Deno.test("bad loss settings are clear errors", () => {
  const x = tf.zeros([2, 3]);
  const y = tf.tensor1d([0, 1], "int32");
  assert.throws(() => weightedCrossEntropy(x, y, [1, 2]), /2 class weights for 3 classes/);
  assert.throws(() => labelSmoothingCrossEntropy(x, y, 1), /label smoothing must be in/);
  assert.throws(() => makeLoss({ kind: "weighted_ce" }), /needs class weights/);
  // deno-lint-ignore no-explicit-any
  assert.throws(() => makeLoss({ kind: "hinge" as any }), /unknown loss "hinge"/);
  tf.dispose([x, y]);
});
