import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import { convnext, type ConvNeXtArgs, convnextTiny, timmNameMap } from "../../lib/models/convnext.ts";
import { countTrainableParams } from "../../lib/models/layers.ts";
import { compareNameMapToKeys, torchTwin, TWIN_TOL } from "./helpers.ts";

await tf.setBackend("cpu");
const FIX = new URL("../fixtures/models/", import.meta.url).pathname;

Deno.test("convnext: reduced config equals the torchvision/timm reference (through timmNameMap)", async () => {
  const t = await torchTwin<ConvNeXtArgs>("convnext", convnext, timmNameMap);
  assert.equal(t.loaded.length, t.keys.length);
  assert.ok(t.loaded.includes("stages.0.blocks.0.gamma"));
  console.log(`convnext reduced: max |logit diff| = ${t.err.toExponential(2)}`);
  assert.ok(t.err < TWIN_TOL, `max abs logit difference ${t.err} >= ${TWIN_TOL}`);
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
