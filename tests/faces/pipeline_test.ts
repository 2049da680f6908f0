import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import { type Classifier, classifyCrops } from "../../lib/faces/pipeline.ts";
import { preprocessingOf } from "../../lib/faces/preprocess.ts";
import { ttaTransforms } from "../../lib/eval/tta.ts";
import { loadRunConfig, loadRunModel } from "../../lib/runs/runs.ts";
import { makeTinyRun, randomCrops } from "./helpers.ts";

await tf.setBackend("cpu");

Deno.test("classifyCrops with TTA: each face's probabilities are its views' mean, the views those of the test split", async () => {
  const tmp = mkdtempSync(join(tmpdir(), "fer-pipeline-"));
  try {
    const runDir = await makeTinyRun(join(tmp, "run"), { inputSize: 44, cropFrom: 48 });
    const cfg = loadRunConfig(runDir);
    const { model, classes } = await loadRunModel(runDir);
    const base: Classifier = { model, classes, preprocessing: preprocessingOf(cfg) };
    const crops = randomCrops(3, 11);
    // the views of the test split's evaluation (lib/data/augment.ts transforms, not the face preprocessing)
    const views = ttaTransforms(cfg, "10crop");
    const tta = { mode: "10crop", average: "prob" } as const;
    const got = await classifyCrops({ ...base, tta }, crops);
    // by hand: softmax of each view's logits, averaged (inputs agree to ~1e-5: two bilinear resize codes)
    const want = tf.tidy(() =>
      tf.div(tf.addN(views.map((v) => tf.softmax(model.predict(v(crops)) as tf.Tensor2D))), views.length)
        .arraySync() as number[][]
    );
    assert.equal(got.length, 3);
    got.forEach((row, i) => row.forEach((p, k) => assert.ok(Math.abs(p - want[i][k]) < 1e-5, `${i},${k}`)));
    // logits averaged: the softmax of the views' mean logits
    const gotLogit = await classifyCrops({ ...base, tta: { mode: "10crop", average: "logit" } }, crops);
    const wantLogit = tf.tidy(() =>
      tf.softmax(tf.div(tf.addN(views.map((v) => model.predict(v(crops)) as tf.Tensor2D)), views.length))
        .arraySync() as number[][]
    );
    gotLogit.forEach((row, i) => row.forEach((p, k) => assert.ok(Math.abs(p - wantLogit[i][k]) < 1e-5)));
    // the single view (no TTA) is the centre crop, which differs from the ten-crop mean
    const plain = await classifyCrops(base, crops);
    const centre = tf.tidy(() =>
      tf.softmax(model.predict(views[4](crops)) as tf.Tensor2D).arraySync() as number[][]
    );
    plain.forEach((row, i) => row.forEach((p, k) => assert.ok(Math.abs(p - centre[i][k]) < 1e-5)));
    assert.ok(
      plain.some((row, i) => row.some((p, k) => Math.abs(p - got[i][k]) > 1e-4)),
      "TTA changed nothing",
    );
    assert.deepEqual(await classifyCrops({ ...base, tta }, tf.zeros([0, 48, 48, 1]) as tf.Tensor4D), []);
    crops.dispose();
    model.dispose();
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});
