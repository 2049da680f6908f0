import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import {
  efficientnet,
  EFFICIENTNET_B3,
  type EfficientNetArgs,
  efficientnetB3,
  efficientnetBlocks,
  makeDivisible,
  timmNameMap,
} from "../../lib/models/efficientnet.ts";
import { countTrainableParams } from "../../lib/models/layers.ts";
import type * as tfl from "@tensorflow/tfjs-layers";
import { createModel } from "../../lib/models/registry.ts";
import { compareNameMapToKeys, torchTwin, TWIN_TOL } from "./helpers.ts";

await tf.setBackend("cpu");
const FIX = new URL("../fixtures/models/", import.meta.url).pathname;

Deno.test("efficientnet: reduced config equals the torchvision/timm reference (through timmNameMap)", async () => {
  const t = await torchTwin<EfficientNetArgs>("efficientnet", efficientnet, timmNameMap);
  assert.equal(t.loaded.length, t.keys.filter((k) => !k.endsWith("num_batches_tracked")).length);
  console.log(`efficientnet reduced: max |logit diff| = ${t.err.toExponential(2)}`);
  assert.ok(t.err < TWIN_TOL, `max abs logit difference ${t.err} >= ${TWIN_TOL}`);
});

Deno.test("efficientnet: make_divisible and B3 block plan follow timm", () => {
  assert.equal(makeDivisible(32 * 1.2), 40);
  assert.equal(makeDivisible(16 * 1.2), 24); // 16 < 0.9 * 19.2 -> bumped
  assert.equal(makeDivisible(112 * 1.2), 136);
  assert.equal(makeDivisible(1280 * 1.2), 1536);
  const blocks = efficientnetBlocks(EFFICIENTNET_B3, 0.2);
  assert.equal(blocks.length, 26);
  const perStage = [0, 0, 0, 0, 0, 0, 0];
  for (const b of blocks) perStage[b.stage]++;
  assert.deepEqual(perStage, [2, 3, 3, 5, 5, 6, 2]);
  assert.deepEqual(blocks.map((b) => b.seChs).slice(0, 4), [10, 6, 6, 8]); // in_chs / 4: 40, 24, 24, 32
  assert.equal(blocks[0].type, "ds");
  assert.equal(blocks[1].skip, true);
  assert.equal(blocks[25].dropPath, 0.2 * 25 / 26);
});

Deno.test("efficientnet_b3: 10,706,991 trainable params with 7 classes and timm's exact key set", async () => {
  const model = efficientnetB3({ init: "zeros" });
  try {
    assert.equal(countTrainableParams(model), 10_706_991);
    const keys = JSON.parse(await Deno.readTextFile(`${FIX}timm_keys.json`)).efficientnet_b3;
    compareNameMapToKeys(timmNameMap(model), keys);
    assert.deepEqual(model.outputs[0].shape, [null, 7]);
  } finally {
    model.dispose();
  }
});

Deno.test("efficientnet: BN eps 1e-5 / momentum 0.9 (PyTorch 0.1), SiLU, symmetric stride-2 padding", () => {
  const model = efficientnetB3({ init: "zeros", inputShape: [64, 64, 3] });
  try {
    const bns = model.layers.filter((l) => l.getClassName() === "BatchNormalization");
    assert.equal(bns.length, 2 + 26 * 3 - 2 * 1); // stem + head + 3 per IR block, 2 per DS block (2 DS blocks)
    for (const l of bns) {
      const c = l.getConfig();
      assert.equal(c.epsilon, 1e-5, l.name);
      assert.equal(c.momentum, 0.9, l.name);
    }
    const acts = model.layers.filter((l) => l.getClassName() === "Activation").map((l) =>
      l.getConfig().activation
    );
    assert.ok(acts.length > 0 && acts.every((a) => a === "swish"));
    const pad = model.getLayer("blocks.2.0.conv_dw.pad").getConfig().padding;
    assert.deepEqual(pad, [[2, 2], [2, 2]]); // k5 s2
    assert.equal(model.getLayer("blocks.2.0.conv_dw").getConfig().padding, "valid");
  } finally {
    model.dispose();
  }
});

Deno.test("efficientnet / convnext: headInit zeros gives a zero classifier (default: the architecture's init)", () => {
  for (const [name, layer] of [["efficientnet_b3", "classifier"], ["convnext_tiny", "head.fc"]]) {
    const maxAbs = (m: tfl.LayersModel) => {
      const w = m.getLayer(layer).getWeights()[0].dataSync() as Float32Array;
      return w.reduce((a, v) => Math.max(a, Math.abs(v)), 0);
    };
    const zero = createModel(name, { inputShape: [32, 32, 3], numClasses: 7, headInit: "zeros" });
    const dflt = createModel(name, { inputShape: [32, 32, 3], numClasses: 7 });
    assert.equal(maxAbs(zero), 0, name);
    assert.ok(maxAbs(dflt) > 0, name);
    zero.dispose();
    dflt.dispose();
  }
});
