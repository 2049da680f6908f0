import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import { RESNET_FER, resnetFer } from "../../lib/models/resnet_fer.ts";
import { countTrainableParams, torchNameMap } from "../../lib/models/layers.ts";
import { torchTwin, TWIN_TOL } from "./helpers.ts";

await tf.setBackend("cpu");

Deno.test("resnet_fer: half-width ResNet-18 layout, torch-style padding, parameter count by hand", () => {
  const m = resnetFer(RESNET_FER, { init: "zeros" });
  try {
    const conv = (k: number, i: number, o: number) => k * k * i * o + 2 * o; // + its BN
    let n = conv(3, 1, 32);
    let c = 32;
    for (const [s, w] of [32, 64, 128, 256].entries()) {
      for (let j = 0; j < 2; j++) {
        n += conv(3, c, w) + conv(3, w, w);
        if (j === 0 && (s > 0 || c !== w)) n += conv(1, c, w);
        c = w;
      }
    }
    n += 256 * 7 + 7;
    assert.equal(countTrainableParams(m), n);
    assert.equal(n, 2_796_263);
    // 44 -> 44 -> 22 -> 11 -> 6 (torch: floor((11 + 2 - 3) / 2) + 1 = 6)
    assert.deepEqual(m.getLayer("layer4.1.relu2").outputShape, [null, 6, 6, 256]);
    assert.ok(m.getLayer("layer2.0.downsample.0"));
  } finally {
    m.dispose();
  }
});

Deno.test("resnet_fer: a reduced config equals its PyTorch twin (torch names through torchNameMap)", async () => {
  const t = await torchTwin("resnet_fer", resnetFer, torchNameMap);
  assert.ok(t.loaded.length > 0);
  assert.ok(t.err < TWIN_TOL, `max abs logit difference ${t.err} >= ${TWIN_TOL}`);
});
