import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import { loadStateDict, readSafetensors, toFloat32 } from "../../lib/models/weights/index.ts";
import { convnext, type ConvNeXtArgs, convnextTiny, timmNameMap } from "../../lib/models/convnext.ts";
import { countTrainableParams } from "../../lib/models/layers.ts";
import { compareNameMapToKeys, maxAbsDiff, nchwToNhwc } from "./helpers.ts";

await tf.setBackend("cpu");
const FIX = new URL("../fixtures/models/", import.meta.url).pathname;
/** Logit tolerance against torch (float32 on both sides, logits of order 1; observed max error < 1e-6). */
const TOL = 1e-5;

Deno.test("convnext: reduced config equals the torchvision/timm reference (through timmNameMap)", async () => {
  const sd = await readSafetensors(`${FIX}convnext.safetensors`);
  const io = await readSafetensors(`${FIX}convnext_io.safetensors`);
  const cfg = JSON.parse(sd.metadata!.config) as ConvNeXtArgs;
  const x = io.tensors.get("input")!;
  const [n, c, h, w] = x.shape;
  const model = convnext(cfg, { numClasses: 7, inputShape: [h, w, c], init: "zeros" });
  try {
    const report = loadStateDict(model, sd, timmNameMap(model)); // strict: every key and variable used
    assert.equal(report.loaded.length, sd.tensors.size);
    assert.ok(report.loaded.includes("stages.0.blocks.0.gamma"));
    const want = toFloat32(io.tensors.get("logits")!);
    const got = tf.tidy(() => {
      const input = tf.tensor(nchwToNhwc(toFloat32(x), [n, c, h, w]), [n, h, w, c]);
      return (model.predict(input) as tf.Tensor).dataSync() as Float32Array;
    });
    const err = maxAbsDiff(got, want);
    console.log(`convnext reduced: max |logit diff| = ${err.toExponential(2)}`);
    assert.ok(err < TOL, `max abs logit difference ${err} >= ${TOL}`);
  } finally {
    model.dispose();
  }
});

Deno.test("convnext_tiny: 27,825,511 trainable params with 7 classes and timm's exact key set", async () => {
  const model = convnextTiny({ init: "zeros" });
  try {
    assert.equal(countTrainableParams(model), 27_825_511);
    const keys = JSON.parse(await Deno.readTextFile(`${FIX}timm_keys.json`)).convnext_tiny;
    compareNameMapToKeys(timmNameMap(model), keys);
    assert.deepEqual(model.outputs[0].shape, [null, 7]);
  } finally {
    model.dispose();
  }
});

Deno.test("convnext: LayerScale starts at 1e-6 and drop path only exists when asked for", () => {
  const a = convnext({ depths: [1, 1], dims: [8, 16] }, { inputShape: [32, 32, 3], seed: 1 });
  const b = convnext({ depths: [1, 1], dims: [8, 16] }, { inputShape: [32, 32, 3], dropPathRate: 0.1 });
  try {
    const gamma = a.getLayer("stages.0.blocks.0.gamma").getWeights()[0];
    assert.deepEqual([...gamma.dataSync()], new Array(8).fill(Math.fround(1e-6)));
    assert.throws(() => a.getLayer("stages.1.blocks.0.drop_path"));
    // linspace(0, 0.1, 2): first block 0 (no layer), last block 0.1
    assert.throws(() => b.getLayer("stages.0.blocks.0.drop_path"));
    assert.equal(b.getLayer("stages.1.blocks.0.drop_path").getConfig().rate as number, 0.1);
  } finally {
    a.dispose();
    b.dispose();
  }
});

Deno.test("convnext: every LayerNorm has eps 1e-6 and the MLP uses exact GELU", () => {
  const m = convnext({ depths: [1, 1], dims: [8, 16] }, { inputShape: [32, 32, 3], init: "zeros" });
  try {
    const lns = m.layers.filter((l) => l.getClassName() === "LayerNormalization");
    assert.equal(lns.length, 2 + 1 + 2); // stem, head, downsample, one per block
    for (const l of lns) assert.equal(l.getConfig().epsilon, 1e-6, l.name);
    assert.equal(m.getLayer("stages.0.blocks.0.mlp.fc1").getConfig().activation, "gelu");
  } finally {
    m.dispose();
  }
});
