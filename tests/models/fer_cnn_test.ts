import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import { FER_CNN, ferCnn } from "../../lib/models/fer_cnn.ts";
import { countTrainableParams } from "../../lib/models/layers.ts";

await tf.setBackend("cpu");

/** Parameter count of the paper's layout, computed by hand (conv + bias, BN gamma/beta, dense + bias). */
function expectedParams(widths: number[], hidden: number[], inCh: number, size: number, classes: number) {
  let n = 0, c = inCh;
  for (const w of widths) {
    for (let j = 0; j < 2; j++) {
      n += 9 * c * w + w + 2 * w;
      c = w;
    }
    size = Math.floor(size / 2);
  }
  let f = size * size * c;
  for (const h of [...hidden, classes]) {
    n += f * h + h;
    f = h;
  }
  return n;
}

Deno.test("fer_cnn: the paper's layout (4 stages x 2 convs, 64..512, 4096-4096-7) and its size", () => {
  const m = ferCnn(FER_CNN, { init: "zeros" });
  try {
    assert.equal(countTrainableParams(m), expectedParams([64, 128, 256, 512], [4096, 4096], 1, 48, 7));
    assert.equal(countTrainableParams(m), 40_376_519);
    const convs = m.layers.filter((l) => l.getClassName() === "Conv2D").map((l) => l.name);
    assert.deepEqual(convs, ["conv1a", "conv1b", "conv2a", "conv2b", "conv3a", "conv3b", "conv4a", "conv4b"]);
    assert.deepEqual(m.getLayer("flatten").outputShape, [null, 3 * 3 * 512]);
  } finally {
    m.dispose();
  }
});

Deno.test("fer_cnn: width multiplier scales convs and hidden layers", () => {
  const m = ferCnn(FER_CNN, { widthMultiplier: 0.25, init: "zeros", inputShape: [40, 40, 3], numClasses: 5 });
  try {
    assert.equal(countTrainableParams(m), expectedParams([16, 32, 64, 128], [1024, 1024], 3, 40, 5));
  } finally {
    m.dispose();
  }
  assert.throws(() => ferCnn(FER_CNN, { inputShape: [8, 8, 1] }), /too small/);
});

Deno.test("fer_cnn: a few Adam steps on a fixed batch lower the loss and update BN statistics", () => {
  // tiny (width 1/16, 16x16, batch 8): the tfjs cpu backend's conv gradients are slow. Dropout off and a seeded
  // init make the run deterministic; the loss is measured in training mode (batch statistics).
  const m = ferCnn(FER_CNN, { widthMultiplier: 0.0625, inputShape: [16, 16, 1], seed: 0, dropRate: 0 });
  const opt = tf.train.adam(3e-3);
  const vars = m.trainableWeights.map((w) => w.read() as tf.Variable);
  const x = tf.randomNormal([8, 16, 16, 1], 0, 1, "float32", 7);
  const y = tf.oneHot(tf.tensor1d(Array.from({ length: 8 }, (_, i) => i % 7), "int32"), 7);
  try {
    const loss = () =>
      tf.losses.softmaxCrossEntropy(y, m.apply(x, { training: true }) as tf.Tensor) as tf.Scalar;
    const first = tf.tidy(() => loss().dataSync()[0]);
    for (let i = 0; i < 10; i++) tf.tidy(() => void opt.minimize(loss, false, vars));
    const last = tf.tidy(() => loss().dataSync()[0]);
    assert.ok(last < first * 0.5, `loss ${first} -> ${last}`);
    const movingMean = m.getLayer("bn1a").getWeights()[2].dataSync();
    assert.ok(movingMean.some((v) => v !== 0), "BN moving mean was updated in training mode");
  } finally {
    tf.dispose([x, y]);
    opt.dispose();
    m.dispose();
  }
});
