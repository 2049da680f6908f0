import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import { loadStateDict, readSafetensors, toFloat32 } from "../../lib/models/weights/index.ts";
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
import { compareNameMapToKeys, maxAbsDiff, nchwToNhwc } from "./helpers.ts";

await tf.setBackend("cpu");
const FIX = new URL("../fixtures/models/", import.meta.url).pathname;
/** Logit tolerance against torch (float32 on both sides, logits of order 1; observed max error < 1e-6). */
const TOL = 1e-5;

Deno.test("efficientnet: reduced config equals the torchvision/timm reference (through timmNameMap)", async () => {
  const sd = await readSafetensors(`${FIX}efficientnet.safetensors`);
  const io = await readSafetensors(`${FIX}efficientnet_io.safetensors`);
  const cfg = JSON.parse(sd.metadata!.config) as EfficientNetArgs;
  const x = io.tensors.get("input")!;
  const [n, c, h, w] = x.shape;
  const model = efficientnet(cfg, { numClasses: 7, inputShape: [h, w, c], init: "zeros" });
  try {
    const report = loadStateDict(model, sd, timmNameMap(model)); // strict: every key and variable used
    assert.equal(
      report.loaded.length,
      sd.tensors.size - [...sd.tensors.keys()].filter((k) => k.endsWith("num_batches_tracked")).length,
    );
    const want = toFloat32(io.tensors.get("logits")!);
    const got = tf.tidy(() => {
      const input = tf.tensor(nchwToNhwc(toFloat32(x), [n, c, h, w]), [n, h, w, c]);
      return (model.predict(input) as tf.Tensor).dataSync() as Float32Array;
    });
    const err = maxAbsDiff(got, want);
    console.log(`efficientnet reduced: max |logit diff| = ${err.toExponential(2)}`);
    assert.ok(err < TOL, `max abs logit difference ${err} >= ${TOL}`);
  } finally {
    model.dispose();
  }
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
