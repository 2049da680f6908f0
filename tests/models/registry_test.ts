import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import { createModel, defaultConfig, listModels, modelNames } from "../../lib/models/registry.ts";

await tf.setBackend("cpu");

Deno.test("registry: listModels gives the timm parameter counts and default inputs", () => {
  const byName = new Map(listModels().map((m) => [m.name, m]));
  assert.deepEqual([...byName.keys()], modelNames());
  assert.deepEqual(byName.get("efficientnet_b3"), {
    name: "efficientnet_b3",
    params: 10_706_991,
    input: [224, 224, 3],
  });
  assert.equal(byName.get("efficientnet_b3_dropout_head")!.params, 10_706_991);
  assert.deepEqual(byName.get("convnext_tiny"), {
    name: "convnext_tiny",
    params: 27_825_511,
    input: [224, 224, 3],
  });
  assert.deepEqual(byName.get("fer_cnn")!.input, [48, 48, 1]);
  assert.ok(byName.get("fer_cnn_small")!.params < byName.get("fer_cnn")!.params / 10);
});

Deno.test("registry: defaultConfig and unknown names", () => {
  const c = defaultConfig("efficientnet_b3_dropout_head");
  assert.equal(c.dropRate, 0.3);
  assert.equal(c.pretrained, "efficientnet_b3.ra2_in1k");
  assert.equal(typeof c.nameMap, "function");
  assert.equal(defaultConfig("convnext_tiny").pretrained, "convnext_tiny.fb_in22k");
  assert.equal(defaultConfig("fer_cnn").nameMap, null);
  c.input[0] = 1; // a copy
  assert.equal(defaultConfig("efficientnet_b3_dropout_head").input[0], 224);
  assert.throws(() => createModel("resnet50"), /unknown model "resnet50"; registered: efficientnet_b3/);
  assert.throws(() => defaultConfig("nope"), /unknown model/);
});

Deno.test("registry: the dropout head variant has a 0.3 dropout before the classifier", () => {
  const m = createModel("efficientnet_b3_dropout_head", { init: "zeros" });
  try {
    const names = m.layers.map((l) => l.name);
    assert.deepEqual(names.slice(-3), ["global_pool", "head_drop", "classifier"]);
    assert.equal(m.getLayer("head_drop").getConfig().rate, 0.3);
  } finally {
    m.dispose();
  }
});

Deno.test("registry: every architecture accepts input size and channel count", () => {
  for (const name of modelNames()) {
    for (const [i, shape] of ([[32, 32, 1], [40, 52, 3]] as [number, number, number][]).entries()) {
      const m = createModel(name, { inputShape: shape, numClasses: 5, init: "zeros" });
      try {
        assert.deepEqual(m.inputs[0].shape, [null, ...shape]);
        assert.deepEqual(m.outputs[0].shape, [null, 5]);
        if (i === 0) { // one real forward pass per model (the cpu backend is slow)
          const out = tf.tidy(() => (m.predict(tf.zeros([1, ...shape])) as tf.Tensor).shape);
          assert.deepEqual(out, [1, 5], `${name} ${shape}`);
        }
      } finally {
        m.dispose();
      }
    }
  }
});

Deno.test("registry: seeded init is reproducible", () => {
  const a = createModel("fer_cnn_small", { seed: 5 }), b = createModel("fer_cnn_small", { seed: 5 });
  const c = createModel("fer_cnn_small", { seed: 6 });
  try {
    const w = (m: typeof a) => [...m.getLayer("conv2a").getWeights()[0].dataSync().slice(0, 20)];
    assert.deepEqual(w(a), w(b));
    assert.notDeepEqual(w(a), w(c));
  } finally {
    for (const m of [a, b, c]) m.dispose();
  }
});

const SLOW = Deno.env.get("FER_SLOW_TESTS") === "1";

for (const name of ["efficientnet_b3", "efficientnet_b3_dropout_head", "convnext_tiny"]) {
  Deno.test({
    name: `registry: ${name} forward + backward at 224x224x3, batch 2 (FER_SLOW_TESTS=1)`,
    ignore: !SLOW,
    fn: () => {
      const m = createModel(name, { seed: 0, dropPathRate: 0.1 });
      try {
        const vars = m.trainableWeights.map((w) => w.read() as tf.Variable);
        tf.tidy(() => {
          const x = tf.randomNormal([2, 224, 224, 3], 0, 1, "float32", 3);
          const y = tf.oneHot(tf.tensor1d([3, 5], "int32"), 7);
          const { value, grads } = tf.variableGrads(
            () => tf.losses.softmaxCrossEntropy(y, m.apply(x, { training: true }) as tf.Tensor) as tf.Scalar,
            vars,
          );
          const loss = value.dataSync()[0];
          assert.ok(Number.isFinite(loss) && loss > 0, `loss ${loss}`);
          assert.equal(Object.keys(grads).length, vars.length);
          const norm = tf.addN(Object.values(grads).map((g) => tf.sum(tf.square(g)))).dataSync()[0];
          assert.ok(Number.isFinite(norm) && norm > 0, `grad norm^2 ${norm}`);
        });
      } finally {
        m.dispose();
      }
    },
  });
}
