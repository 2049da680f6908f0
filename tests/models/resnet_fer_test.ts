import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import { RESNET_FER, resnetFer } from "../../lib/models/resnet_fer.ts";
import { countTrainableParams, torchNameMap } from "../../lib/models/layers.ts";
import { loadStateDict, readSafetensors, toFloat32 } from "../../lib/models/weights/index.ts";
import { maxAbsDiff, nchwToNhwc } from "./helpers.ts";

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

const FIX = new URL("../fixtures/models/", import.meta.url).pathname;

for (const net of ["resnet_fer"] as const) {
  Deno.test(`${net}: a reduced config equals its PyTorch twin (torch names through torchNameMap)`, async () => {
    const sd = await readSafetensors(`${FIX}${net}.safetensors`);
    const io = await readSafetensors(`${FIX}${net}_io.safetensors`);
    const cfg = JSON.parse(sd.metadata!.config);
    const x = io.tensors.get("input")!;
    const [n, c, h, w] = x.shape;
    const opts = { numClasses: 7, inputShape: [h, w, c] as [number, number, number], init: "zeros" as const };
    const model = resnetFer(cfg, opts);
    try {
      const report = loadStateDict(model, sd, torchNameMap(model)); // strict: every key and variable used
      assert.ok(report.loaded.length > 0);
      const want = toFloat32(io.tensors.get("logits")!);
      const got = tf.tidy(() => {
        const input = tf.tensor(nchwToNhwc(toFloat32(x), [n, c, h, w]), [n, h, w, c]);
        return (model.predict(input) as tf.Tensor).dataSync() as Float32Array;
      });
      const err = maxAbsDiff(got, want);
      assert.ok(err < 1e-5, `max abs logit difference ${err}`);
    } finally {
      model.dispose();
    }
  });
}
