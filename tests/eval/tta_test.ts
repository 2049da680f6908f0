import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import * as tfl from "@tensorflow/tfjs-layers";
import { CLASSES, type Split } from "../../lib/data/dataset.ts";
import {
  argmaxRows,
  bestOnValidation,
  chosenTta,
  describeResolvedTta,
  evaluateRunTta,
  parseTta,
  predictRunTta,
  predictWithTta,
  resolveTta,
  ttaTransforms,
  valTtaAccuracies,
} from "../../lib/eval/tta.ts";
import { readPredictionsCsv, rowsAccuracy, writePredictionsCsv } from "../../lib/eval/predictions.ts";
import {
  predictionsPath,
  predictRun,
  runPaths,
  runTransform,
  writeConfig,
  writeHistory,
} from "../../lib/runs/runs.ts";
import { DEFAULT_CONFIG, type TrainConfig } from "../../lib/train/config.ts";
import { mulberry32 } from "../../lib/util/rng.ts";
import { trainTinyRun } from "../helpers/tiny_model.ts";

await tf.setBackend("cpu");

Deno.test("argmaxRows and parseTta", () => {
  assert.deepEqual(Array.from(argmaxRows(Float32Array.from([0.2, 0.5, 0.3, 0.4, 0.4, 0.2]), 3)), [1, 0]);
  assert.throws(() => parseTta("3crop"), /--tta must be one of none, hflip, 5crop, 10crop/);
  assert.throws(() => parseTta("hflip", "median"), /--tta-average must be prob or logit/);
});

const cropCfg: TrainConfig = {
  ...DEFAULT_CONFIG,
  inputSize: 6,
  cropFrom: 8,
  channels: 1,
  mean: [0.5],
  std: [0.5],
  dataSize: 8,
};

function split(n: number): Split {
  const r = mulberry32(4);
  return {
    name: "test",
    classes: ["a", "b", "c"],
    paths: Array.from({ length: n }, (_, i) => `test/${i}.png`),
    labels: Int32Array.from({ length: n }, (_, i) => i % 3),
    images: Uint8Array.from({ length: n * 64 }, () => Math.floor(r() * 256)),
    height: 8,
    width: 8,
    channels: 1,
  };
}

Deno.test("ttaTransforms: `none` is the run's evaluation transform; corner crops need a crop-trained run", () => {
  const x = tf.tensor4d(Array.from(split(2).images), [2, 8, 8, 1]);
  for (const cfg of [cropCfg, { ...cropCfg, cropFrom: null, inputSize: 8 }]) {
    const [t] = ttaTransforms(cfg, "none");
    const a = t(x);
    const b = runTransform(cfg)(x);
    assert.deepEqual(a.dataSync(), b.dataSync());
    tf.dispose([a, b]);
  }
  assert.equal(ttaTransforms(cropCfg, "10crop").length, 10);
  assert.equal(ttaTransforms({ ...cropCfg, cropFrom: null }, "hflip").length, 2);
  assert.throws(() => ttaTransforms({ ...cropCfg, cropFrom: null }, "5crop"), /needs a run trained on crops/);
  x.dispose();
});

Deno.test("predictWithTta averages the views' softmax outputs batch by batch, without leaks", () => {
  const model = tfl.sequential({
    layers: [
      tfl.layers.flatten({ inputShape: [6, 6, 1] }),
      tfl.layers.dense({ units: 3, kernelInitializer: "glorotNormal" }),
    ],
  });
  const s = split(5);
  const ts = ttaTransforms(cropCfg, "10crop");
  const before = tf.memory().numTensors;
  const got = predictWithTta(model, s, ts, "prob", 2);
  assert.equal(tf.memory().numTensors, before, "leaked tensors");
  // reference: each view on the whole split at once, softmax, mean over the views (tensor ops)
  const ref = tf.tidy(() => {
    const x = tf.tensor4d(Array.from(s.images), [5, 8, 8, 1]);
    const probs = ts.map((t) => tf.softmax(model.predict(t(x)) as tf.Tensor2D));
    return tf.div(tf.addN(probs), ts.length).dataSync();
  });
  for (let i = 0; i < got.length; i++) {
    assert.ok(Math.abs(got[i] - ref[i]) < 1e-6, `${i}: ${got[i]} vs ${ref[i]}`);
  }
  const none = predictWithTta(model, s, ttaTransforms(cropCfg, "none"), "prob", 2);
  assert.ok(none.some((v, i) => Math.abs(v - got[i]) > 1e-4), "the views change the output");
  model.dispose();
});

Deno.test("predictRunTta on a crop-trained run: `none` equals predictRun; 10crop predicts every image", async () => {
  const outDir = mkdtempSync(join(tmpdir(), "fer-tta-"));
  try {
    const res = await trainTinyRun(outDir, "crop", { inputSize: 14, cropFrom: 16, dataSize: 16 });
    const plain = await predictRun(res.runDir, "test");
    const none = await predictRunTta(res.runDir, "test", { mode: "none", average: "prob" });
    assert.deepEqual(
      none.rows.map((r) => [r.path, r.label, r.pred]),
      plain.rows.map((r) => [r.path, r.label, r.pred]),
    );
    none.rows.forEach((r, i) =>
      r.probs!.forEach((p, k) => assert.ok(Math.abs(p - plain.rows[i].probs![k]) < 1e-6))
    );
    const ten = await predictRunTta(res.runDir, "test", { mode: "10crop", average: "logit" });
    assert.equal(ten.rows.length, 20);
    for (const r of ten.rows) assert.ok(Math.abs(r.probs!.reduce((a, b) => a + b) - 1) < 1e-5);
    // evaluateRunTta writes where `evaluate` writes; valTtaAccuracies (and so chosenTta) read that file
    const paths = runPaths(res.runDir);
    assert.deepEqual(valTtaAccuracies(res.runDir).map((r) => r.mode), ["none"]);
    const hflip = await evaluateRunTta(res.runDir, "val", { mode: "hflip", average: "prob" });
    assert.equal(hflip.written, predictionsPath(paths, "val", "hflip"));
    assert.deepEqual(
      readPredictionsCsv(hflip.written!, { classes: hflip.classes }).rows.map((
        r,
      ) => [r.path, r.label, r.pred]),
      hflip.rows.map((r) => [r.path, r.label, r.pred]),
    );
    const accs = valTtaAccuracies(res.runDir);
    assert.deepEqual(accs.map((r) => r.mode), ["none", "hflip"]);
    assert.equal(accs[1].valAccuracy, rowsAccuracy(hflip.rows));
    const plainVal = await evaluateRunTta(res.runDir, "val", { mode: "none", average: "prob" });
    assert.equal(plainVal.written, paths.predictionsVal);
  } finally {
    rmSync(outDir, { recursive: true, force: true });
  }
});

Deno.test("chosenTta / resolveTta: auto is the best mode on validation; named modes are checked against the run", () => {
  const dir = mkdtempSync(join(tmpdir(), "fer-tta-choice-"));
  try {
    const paths = runPaths(dir);
    writeConfig(paths, { ...DEFAULT_CONFIG, run: "r", inputSize: 44, cropFrom: 48, channels: 1 });
    const row = { train_loss: 1, train_acc: 0.5, val_loss: 1, lr: 0.01, seconds: 1, img_s: 1 };
    writeHistory(paths, [{ ...row, epoch: 1, val_acc: 0.6 }, { ...row, epoch: 2, val_acc: 0.7 }]);
    // no TTA evaluated on validation: the best epoch's own (none)
    assert.deepEqual(chosenTta(dir), { mode: "none", average: "prob", valAccuracy: 0.7 });
    const rows = (correct: number) =>
      Array.from({ length: 10 }, (_, i) => ({ path: `${i}.jpg`, label: 0, pred: i < correct ? 0 : 1 }));
    // a tie with the best epoch keeps the cheaper mode
    writePredictionsCsv(predictionsPath(paths, "val", "hflip"), rows(7), CLASSES);
    assert.deepEqual(chosenTta(dir), { mode: "none", average: "prob", valAccuracy: 0.7 });
    writePredictionsCsv(predictionsPath(paths, "val", "hflip"), rows(8), CLASSES);
    writePredictionsCsv(predictionsPath(paths, "val", "10crop"), rows(9), CLASSES);
    writePredictionsCsv(predictionsPath(paths, "val", "5crop"), rows(6), CLASSES);
    // the test split's files play no part, however good
    writePredictionsCsv(predictionsPath(paths, "test", "5crop"), rows(10), CLASSES);
    assert.deepEqual(chosenTta(dir), { mode: "10crop", average: "prob", valAccuracy: 0.9 });
    assert.deepEqual(valTtaAccuracies(dir), [
      { mode: "none", valAccuracy: 0.7 },
      { mode: "hflip", valAccuracy: 0.8 },
      { mode: "5crop", valAccuracy: 0.6 },
      { mode: "10crop", valAccuracy: 0.9 },
    ]);
    const auto = resolveTta(dir, "auto", "logit");
    assert.deepEqual(auto, { mode: "10crop", average: "logit", source: "validation", valAccuracy: 0.9 });
    assert.equal(describeResolvedTta(auto), "TTA 10crop (chosen on validation: 90.00 %, logits averaged)");
    const given = resolveTta(dir, "hflip");
    assert.deepEqual(given, { mode: "hflip", average: "prob", source: "given", valAccuracy: null });
    assert.equal(describeResolvedTta(given), "TTA hflip (probabilities averaged)");
    assert.throws(() => resolveTta(dir, "3crop"), /--tta must be auto or one of none, hflip, 5crop, 10crop/);
    // a whole-image run has no corner crops
    writeConfig(paths, { ...DEFAULT_CONFIG, run: "r", inputSize: 48, channels: 1 });
    assert.throws(() => resolveTta(dir, "auto"), /10crop TTA needs a run trained on crops/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

Deno.test("bestOnValidation: the run with the best validation accuracy under its own chosen TTA, with that TTA", () => {
  const root = mkdtempSync(join(tmpdir(), "fer-best-"));
  try {
    const row = { train_loss: 1, train_acc: 0.5, val_loss: 1, lr: 0.01, seconds: 1, img_s: 1 };
    const run = (name: string, valAcc: number, hflipCorrect: number | null) => {
      const dir = join(root, name);
      mkdirSync(dir);
      const paths = runPaths(dir);
      writeConfig(paths, { ...DEFAULT_CONFIG, run: name, channels: 1 });
      writeHistory(paths, [{ ...row, epoch: 1, val_acc: valAcc }]);
      if (hflipCorrect !== null) {
        const rows = Array.from(
          { length: 10 },
          (_, i) => ({ path: `${i}.jpg`, label: 0, pred: i < hflipCorrect ? 0 : 1 }),
        );
        writePredictionsCsv(predictionsPath(paths, "val", "hflip"), rows, CLASSES);
      }
      return dir;
    };
    const a = run("a", 0.75, null); // 0.75 without TTA
    const b = run("b", 0.7, 8); // 0.80 with hflip
    const c = join(root, "c"); // no history: left out
    mkdirSync(c);
    writeConfig(runPaths(c), { ...DEFAULT_CONFIG, run: "c", channels: 1 });
    assert.deepEqual(bestOnValidation([a, b, c]), {
      runDir: b,
      tta: { mode: "hflip", average: "prob" },
      valAccuracy: 0.8,
    });
    assert.deepEqual(bestOnValidation([a, c]), {
      runDir: a,
      tta: { mode: "none", average: "prob" },
      valAccuracy: 0.75,
    });
    assert.equal(bestOnValidation([c]), null);
    assert.equal(bestOnValidation([]), null);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
