/**
 * lib/viz/from_scratch.ts without training: the parts of notebook 06 that read run folders (recipe table, CPU-hour
 * curve rows, finished check) and the generated comparison rows and results text; the TTA choice and the test
 * with it on a tiny crop-trained run. The whole notebook is exercised end to end by its smoke execution
 * (tests/viz/notebook_test.ts).
 */
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CLASSES } from "../../lib/data/dataset.ts";
import { type PredictionRow, readPredictionsCsv, writePredictionsCsv } from "../../lib/eval/predictions.ts";
import { chosenTta } from "../../lib/eval/tta.ts";
import { JS_MODEL_RESULTS } from "../../lib/eval/references.ts";
import { STUDY_RESULTS } from "../../lib/eval/study.ts";
import { predictionsPath, runPaths, writeConfig, writeHistory } from "../../lib/runs/runs.ts";
import { DEFAULT_CONFIG } from "../../lib/train/config.ts";
import {
  chooseTta,
  comparisonRows,
  cpuHoursRows,
  distinctRecipes,
  recipeRows,
  resultsText,
  runFinished,
  summaryOf,
  testWithTta,
  trainCommand,
} from "../../lib/viz/from_scratch.ts";
import { trainTinyRun } from "../helpers/tiny_model.ts";

/** A run folder with a config and a two-epoch history (the second epoch resumed: totals carried over). */
function fakeRun(root: string, name: string, over: Partial<typeof DEFAULT_CONFIG>): string {
  const dir = join(root, name);
  mkdirSync(dir, { recursive: true });
  const paths = runPaths(dir);
  writeConfig(paths, { ...DEFAULT_CONFIG, run: name, ...over });
  const row = { train_loss: 1, train_acc: 0.5, val_loss: 1, lr: 0.01, seconds: 10, img_s: 100 };
  writeHistory(paths, [
    { ...row, epoch: 1, val_acc: 0.4, cpu_s: 1800, wall_total_s: 3600, cpu_total_s: 1800 },
    { ...row, epoch: 2, val_acc: 0.5, cpu_s: 3600, wall_total_s: 9000, cpu_total_s: 5400 },
  ]);
  return dir;
}

/** `n` rows of which the first `correct` are right (class = index mod 7). */
function rows(n: number, correct: number): PredictionRow[] {
  return Array.from({ length: n }, (_, i) => ({
    path: `${i}.jpg`,
    label: i % CLASSES.length,
    pred: i < correct ? i % CLASSES.length : (i + 1) % CLASSES.length,
  }));
}

Deno.test("trainCommand: the train command a notebook prints for a run that has not finished", () => {
  assert.equal(
    trainCommand({ run: "r", experiment: "vgg_fer" }),
    "deno task train vgg_fer --preset cpu --run r",
  );
  assert.equal(
    trainCommand({ run: "vgg_fer-cpu-seed1-60ep", experiment: "vgg_fer", seed: 1, epochs: 60 }),
    "deno task train vgg_fer --preset cpu --seed 1 --epochs 60 --run vgg_fer-cpu-seed1-60ep",
  );
  assert.equal(
    trainCommand({ run: "r", experiment: "resnet_fer", seed: 0 }),
    "deno task train resnet_fer --preset cpu --seed 0 --run r",
  );
  assert.equal(
    trainCommand({ run: "r", experiment: "vgg_fer", seed: 2, epochs: 60, precision: "bfloat16" }),
    "deno task train vgg_fer --preset cpu --seed 2 --epochs 60 --precision bfloat16 --run r",
  );
});

Deno.test("distinctRecipes: smoke mode trains each experiment and seed once", () => {
  const got = distinctRecipes([
    { run: "a", experiment: "vgg_fer_half" },
    { run: "b", experiment: "vgg_fer_half", precision: "bfloat16" }, // the same tiny run in smoke mode
    { run: "c", experiment: "vgg_fer", seed: 1, epochs: 60 },
    { run: "d", experiment: "vgg_fer", seed: 2, epochs: 60 },
    { run: "e", experiment: "vgg_fer", seed: 1 },
  ]);
  assert.deepEqual(got.map((w) => w.run), ["a", "c", "d"]);
});

Deno.test("recipeRows / cpuHoursRows / runFinished read the run folders", () => {
  const root = mkdtempSync(join(tmpdir(), "fer-scratch-"));
  try {
    const vgg = fakeRun(root, "vgg", {
      model: "vgg_fer",
      inputSize: 40,
      cropFrom: 48,
      optimizer: "sgd",
      lr: 0.01,
      schedule: "warmup_cosine",
      warmupEpochs: 2,
      tMax: 40,
      weightDecay: 1e-4,
      loss: "label_smoothing",
      labelSmoothing: 0.1,
      erasing: { p: 0.5 },
      mixupAlpha: 0.2,
    });
    const plain = fakeRun(root, "plain", { model: "fer_cnn", inputSize: 48, optimizer: "adamw", lr: 3e-4 });
    const [a, b] = recipeRows([vgg, plain]);
    assert.equal(a.run, "vgg");
    assert.equal(a.input, "40 px crops of 48");
    assert.equal(a.optimizer, "SGD Nesterov lr 0.01");
    assert.equal(a.schedule, "warm-up 2 + cosine 40 ep");
    assert.equal(a.loss, "label smoothing 0.1");
    assert.equal(a.erasing, "p 0.5");
    assert.equal(a.mixup, "α 0.2");
    assert.equal(b.input, "48 px");
    assert.equal(b.optimizer, "AdamW lr 0.0003");
    assert.equal(b.mixup, "none");

    assert.deepEqual(cpuHoursRows(vgg), [
      { epoch: 1, "CPU-hours": 0.5, "wall hours": 1, "val accuracy": 0.4 },
      { epoch: 2, "CPU-hours": 1.5, "wall hours": 2.5, "val accuracy": 0.5 },
    ]);

    // finished only once the test report is written
    assert.equal(runFinished(vgg), false);
    writeFileSync(runPaths(vgg).testReportJson, "{}");
    assert.equal(runFinished(vgg), true);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

Deno.test("comparisonRows: ours, then the study's, then the JavaScript models; resultsText from the numbers", () => {
  const single = summaryOf("vgg", "/r/vgg", rows(100, 70));
  const tta = summaryOf("vgg", "/r/vgg", rows(100, 72));
  const cmp = comparisonRows([tta]);
  assert.equal(cmp.length, 1 + STUDY_RESULTS.length + JS_MODEL_RESULTS.length);
  assert.equal(cmp[0].model, "vgg");
  assert.equal(cmp[0].accuracy, 0.72);
  assert.match(String(cmp[1].model), /^study: /);
  assert.equal(cmp.at(-1)!.model, JS_MODEL_RESULTS.at(-1)!.model);

  assert.match(resultsText(null, null), /No finished run yet/);
  const best = JS_MODEL_RESULTS.reduce((a, b) => (b.accuracy > a.accuracy ? b : a));
  const text = resultsText({ name: "vgg", plain: single, tta, ttaLabel: "hflip" }, null);
  assert.match(text, /test accuracy 70\.00 % without TTA, 72\.00 % with hflip/);
  const gap = (100 * Math.abs(0.72 - best.accuracy)).toFixed(2);
  assert.match(text, new RegExp(`is ${0.72 > best.accuracy ? "above" : "below"} it by ${gap} points`));
  assert.match(
    text,
    /Target for one model trained here from scratch, ≥ 70\.00 % .*: met \(\+2\.00 points\)\./,
  );
  assert.match(text, /Ensemble target, ≥ 73\.00 %: no ensemble yet/);
  assert.match(text, /What more training would give: /); // the ensemble target is not met without an ensemble
  const ens = (correct: number) =>
    resultsText({ name: "vgg", plain: single, tta, ttaLabel: "hflip" }, {
      name: "ens",
      summary: summaryOf("ens", "/r/ens", rows(100, correct)),
      members: 3,
    });
  assert.match(
    ens(75),
    /Ensemble of 3 runs \(ens\): test accuracy 75\.00 %, macro-F1 [\d.]+ \(F1 fear [\d.]+, sad [\d.]+, disgust [\d.]+\); target ≥ 73\.00 %: met \(\+2\.00 points\)\./,
  );
  assert.doesNotMatch(ens(75), /What more training would give/);
  assert.match(ens(72), /target ≥ 73\.00 %: not met \(1\.00 points short\)\.\nWhat more training would give/);
  const low = summaryOf("vgg", "/r/vgg", rows(100, 69));
  assert.match(
    resultsText({ name: "vgg", plain: single, tta: low, ttaLabel: "hflip" }, null),
    /≥ 70\.00 % .*: not met \(1\.00 points short\)/,
  );
});

Deno.test("chooseTta writes the validation files and chooses as `--tta auto` does; testWithTta reuses the test file", async () => {
  const outDir = mkdtempSync(join(tmpdir(), "fer-06-tta-"));
  try {
    const res = await trainTinyRun(outDir, "crop", { inputSize: 14, cropFrom: 16, dataSize: 16 });
    const paths = runPaths(res.runDir);
    const modes = ["none", "hflip", "5crop", "10crop"] as const;
    const first = await chooseTta(res.runDir, [...modes]);
    for (const m of modes.slice(1)) assert.ok(existsSync(predictionsPath(paths, "val", m)), m);
    assert.deepEqual(first.rows.map((r) => r.mode), [...modes]);
    assert.equal(first.best.mode, chosenTta(res.runDir).mode);
    // an evaluated mode is read, not evaluated again: a perfect 5crop file decides the choice
    const val = readPredictionsCsv(predictionsPath(paths, "val", "5crop")).rows;
    writePredictionsCsv(predictionsPath(paths, "val", "5crop"), val.map((r) => ({ ...r, pred: r.label })));
    const again = await chooseTta(res.runDir, [...modes]);
    assert.deepEqual(again.best, { mode: "5crop", average: "prob" });
    assert.equal(again.rows.find((r) => r.mode === "5crop")!["val accuracy"], 1);
    // the test with the chosen mode is made once and written; later calls read that file
    const test = await testWithTta(res.runDir, again.best);
    const file = predictionsPath(paths, "test", "5crop");
    assert.equal(test.length, 20);
    assert.ok(existsSync(file));
    writePredictionsCsv(file, test.slice(0, 3));
    assert.equal((await testWithTta(res.runDir, again.best)).length, 3);
  } finally {
    rmSync(outDir, { recursive: true, force: true });
  }
});
