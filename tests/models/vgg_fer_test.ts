import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import { VGG_FER, vggFer } from "../../lib/models/vgg_fer.ts";
import { resnetFer } from "../../lib/models/resnet_fer.ts";
import { countTrainableParams, torchNameMap } from "../../lib/models/layers.ts";
import { torchTwin, TWIN_TOL } from "./helpers.ts";
import { modelParams } from "../../lib/models/registry.ts";

await tf.setBackend("cpu");

Deno.test("vgg_fer: 8 bias-free convs 64..512 with BN, pooled head; parameter count by hand", () => {
  const m = vggFer(VGG_FER, { init: "zeros" });
  try {
    // conv 9·cin·cout (no bias) + BN gamma/beta 2·cout per conv; head 512·7 + 7
    let n = 0, c = 1;
    for (const w of [64, 64, 128, 128, 256, 256, 512, 512]) {
      n += 9 * c * w + 2 * w;
      c = w;
    }
    n += 512 * 7 + 7;
    assert.equal(countTrainableParams(m), n);
    assert.equal(n, 4_689_735);
    assert.deepEqual(m.outputs[0].shape, [null, 7]);
    assert.deepEqual(m.getLayer("features.3.pool").outputShape, [null, 2, 2, 512]); // 44 -> 22 -> 11 -> 5 -> 2
    assert.equal(m.layers.filter((l) => l.getClassName() === "Conv2D").length, 8);
  } finally {
    m.dispose();
  }
  assert.equal(modelParams("vgg_fer_half"), 1_174_439);
  assert.throws(() => vggFer(VGG_FER, { inputShape: [8, 8, 1] }), /too small/);
});

Deno.test("vgg_fer and resnet_fer (narrow) learn a fixed batch (a few SGD steps lower the loss); seeds reproduce", () => {
  // narrow variants of both layouts (the cpu backend's conv gradients are slow)
  const build = {
    vgg: (seed: number) =>
      vggFer({ widths: [8, 16], convsPerStage: 2, widthMultiplier: 1 }, {
        inputShape: [12, 12, 1],
        seed,
        dropRate: 0,
      }),
    resnet: (seed: number) =>
      resnetFer({ stem: 8, widths: [8, 16], depths: [1, 1] }, { inputShape: [12, 12, 1], seed, dropRate: 0 }),
  };
  for (const [name, make] of Object.entries(build)) {
    const m = make(0);
    const vars = m.trainableWeights.map((w) => w.read() as tf.Variable);
    const opt = tf.train.momentum(0.05, 0.9);
    const x = tf.randomNormal([8, 12, 12, 1], 0, 1, "float32", 7);
    const y = tf.oneHot(tf.tensor1d(Array.from({ length: 8 }, (_, i) => i % 7), "int32"), 7);
    const loss = () =>
      tf.losses.softmaxCrossEntropy(y, m.apply(x, { training: true }) as tf.Tensor) as tf.Scalar;
    try {
      const l0 = tf.tidy(() => loss().dataSync()[0]);
      for (let i = 0; i < 8; i++) tf.dispose(opt.minimize(loss, true, vars)!);
      const l1 = tf.tidy(() => loss().dataSync()[0]);
      assert.ok(l1 < l0 * 0.8, `${name}: loss ${l0} -> ${l1}`);
      const a = make(3);
      const b = make(3);
      assert.deepEqual(a.getWeights()[0].dataSync(), b.getWeights()[0].dataSync());
      a.dispose();
      b.dispose();
    } finally {
      tf.dispose([x, y]);
      opt.dispose();
      m.dispose();
    }
  }
});

Deno.test("vgg_fer: a reduced config equals its PyTorch twin (torch names through torchNameMap)", async () => {
  const t = await torchTwin("vgg_fer", vggFer, torchNameMap);
  assert.ok(t.loaded.length > 0);
  assert.ok(t.err < TWIN_TOL, `max abs logit difference ${t.err} >= ${TWIN_TOL}`);
});
