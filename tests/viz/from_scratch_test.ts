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
import { chooseTta, chosenTta } from "../../lib/eval/tta.ts";
import { JS_MODEL_RESULTS } from "../../lib/eval/references.ts";
import { STUDY_RESULTS } from "../../lib/eval/study.ts";
import { predictionsPath, runPaths, writeConfig, writeHistory } from "../../lib/runs/runs.ts";
import { DEFAULT_CONFIG } from "../../lib/train/config.ts";
import { DOMParser } from "linkedom";
import {
  budgetFrontier,
  budgetPlot,
  budgetRows,
  budgetText,
  comparisonRows,
  cpuHoursRows,
  distinctRecipes,
  ensembleBudget,
  fitLogHours,
  hoursFor,
  recipeRows,
  resultsText,
  runFinished,
  summaryOf,
  testWithTta,
  trainCommand,
} from "../../lib/viz/from_scratch.ts";
import { trainTinyRun } from "../helpers/tiny_model.ts";

/**
 * A run folder with a config and a two-epoch history (the second epoch resumed: totals carried over); the
 * second epoch's CPU-hours and validation accuracy can be set.
 */
function fakeRun(
  root: string,
  name: string,
  over: Partial<typeof DEFAULT_CONFIG>,
  last: { cpuHours?: number; valAcc?: number } = {},
): string {
  const dir = join(root, name);
  mkdirSync(dir, { recursive: true });
  const paths = runPaths(dir);
  writeConfig(paths, { ...DEFAULT_CONFIG, run: name, ...over });
  const row = { train_loss: 1, train_acc: 0.5, val_loss: 1, lr: 0.01, seconds: 10, img_s: 100 };
  const cpu = 3600 * (last.cpuHours ?? 1.5);
  writeHistory(paths, [
    { ...row, epoch: 1, val_acc: 0.4, cpu_s: 1800, wall_total_s: 3600, cpu_total_s: 1800 },
    {
      ...row,
      epoch: 2,
      val_acc: last.valAcc ?? 0.5,
      cpu_s: cpu - 1800,
      wall_total_s: 9000,
      cpu_total_s: cpu,
    },
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
    // the choice is among the modes asked for: without 5crop, the perfect file plays no part
    const without = await chooseTta(res.runDir, ["none", "hflip", "10crop"]);
    assert.deepEqual(without.rows.map((r) => r.mode), ["none", "hflip", "10crop"]);
    assert.notEqual(without.best.mode, "5crop");
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

Deno.test("budgetFrontier keeps what beats every cheaper point; ensembleBudget prices subsets by their members", () => {
  const p = (members: string[], cpuHours: number, valAcc: number) => ({ members, cpuHours, valAcc });
  assert.deepEqual(
    budgetFrontier([
      p(["c"], 3, 0.65),
      p(["a"], 1, 0.6),
      p(["b"], 2, 0.6),
      p(["a", "b"], 3, 0.66),
      p(["d"], 1, 0.55),
    ]),
    [p(["a"], 1, 0.6), p(["a", "b"], 3, 0.66)], // b ties a at more cost; c loses to a + b at the same cost
  );
  assert.deepEqual(budgetFrontier([]), []);

  const root = mkdtempSync(join(tmpdir(), "fer-budget-"));
  try {
    const a = fakeRun(root, "a", {}, { cpuHours: 1, valAcc: 0.6 });
    const b = fakeRun(root, "b", {}, { cpuHours: 2.5, valAcc: 0.62 });
    const subsets = [
      { members: ["a", "b"], accuracy: 0.65 },
      { members: ["a", "gone"], accuracy: 0.9 }, // a member without a run folder here: not priced, left out
    ];
    const { points, frontier } = ensembleBudget([a, b], subsets);
    assert.deepEqual(points, [p(["a"], 1, 0.6), p(["b"], 2.5, 0.62), p(["a", "b"], 3.5, 0.65)]);
    assert.deepEqual(frontier, points);
    assert.deepEqual(budgetRows(frontier)[2], { members: "a + b", "CPU-hours": 3.5, "val accuracy": 0.65 });
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

Deno.test("fitLogHours / hoursFor: a line in log2 CPU-hours and where it reaches a target", () => {
  const p = (cpuHours: number, valAcc: number) => ({ members: ["x"], cpuHours, valAcc });
  const fit = fitLogHours([p(1, 0.6), p(2, 0.62), p(4, 0.64)])!;
  assert.ok(Math.abs(fit.perDoubling - 0.02) < 1e-12 && Math.abs(fit.intercept - 0.6) < 1e-12, `${fit}`);
  assert.equal(fit.points, 3);
  assert.ok(Math.abs(hoursFor(fit, 0.66)! - 8) < 1e-9);
  // least squares, not through the points: 1 h 0.60, 2 h 0.64, 4 h 0.64 -> slope 0.02, mean 0.6267 at log2 1
  const ls = fitLogHours([p(1, 0.6), p(2, 0.64), p(4, 0.64)])!;
  assert.ok(Math.abs(ls.perDoubling - 0.02) < 1e-12 && Math.abs(ls.intercept - (0.6267 - 0.02)) < 1e-4);
  assert.equal(fitLogHours([p(2, 0.6)]), null);
  assert.equal(fitLogHours([p(2, 0.6), p(2, 0.7)]), null); // one budget: no slope
  assert.equal(fitLogHours([p(0, 0.5), p(2, 0.7)]), null); // no CPU-hours recorded (a tiny run): not on a log axis
  assert.equal(hoursFor(fitLogHours([p(1, 0.6), p(2, 0.59)])!, 0.7), null); // falling: never
});

Deno.test("budgetText: the frontier's rate and its extrapolation, or why there is none", () => {
  const p = (members: string[], cpuHours: number, valAcc: number) => ({ members, cpuHours, valAcc });
  const frontier = [p(["a"], 1, 0.6), p(["a", "b"], 2, 0.62), p(["a", "b", "c"], 4, 0.64)];
  const rising = budgetText(frontier, fitLogHours(frontier), 0.66, 0.02);
  assert.match(
    rising,
    /^The most accurate combination on validation, a \+ b \+ c, costs 4\.0 CPU-hours of training for 64\.00 % \(the frontier's last step: \+2\.00 points for \+2\.0 CPU-hours\)\. /,
  );
  assert.match(rising, /each doubling of CPU-hours added 2\.00 points of validation accuracy; /);
  assert.match(rising, /66\.00 % on validation needs about 8 CPU-hours/);
  // test needs 0.68 on the line: 16 CPU-hours
  assert.match(rising, /scored 2\.00 points lower on test than on validation\) about 16 CPU-hours/);
  assert.match(rising, /an extrapolation from 3 points, not a measurement\.$/);
  const flat = [p(["a"], 1, 0.6), p(["a", "b"], 2, 0.6)];
  assert.match(budgetText(flat, { intercept: 0.6, perDoubling: 0, points: 2 }, 0.66, 0), /no longer rises/);
  assert.match(budgetText(frontier.slice(0, 1), null, 0.66, 0), /too few budgets to fit a trend\.$/);
  assert.equal(budgetText([], null, 0.66, 0), "No run with recorded CPU-hours: no cost curve.");
});

Deno.test("budgetPlot: the frontier solid, the fit dashed to the target on test, a y axis that spans the points", () => {
  const p = (members: string[], cpuHours: number, valAcc: number) => ({ members, cpuHours, valAcc });
  const frontier = [p(["a"], 1, 0.6), p(["a", "b"], 2, 0.62), p(["a", "b", "c"], 4, 0.64)];
  const svg = budgetPlot(frontier, fitLogHours(frontier), 0.66, 0.02);
  const doc = new DOMParser().parseFromString(svg, "image/svg+xml");
  const lines = [...doc.querySelectorAll('g[aria-label="line"]')];
  assert.equal(lines.length, 2);
  assert.equal(lines[0].getAttribute("stroke-dasharray"), null);
  assert.equal(lines[1].getAttribute("stroke-dasharray"), "6,4");
  assert.equal(lines[0].querySelectorAll("path").length, 1);
  const legend = [...doc.querySelectorAll("g.fer-legend text")].map((t) => t.textContent);
  assert.deepEqual(legend, [
    "best on validation for the budget",
    "fit: 2.00 points per doubling of CPU-hours",
  ]);
  // the fit reaches 66 % + the 2-point drop at 16 CPU-hours: the x axis runs that far; the y axis 59 to 69 %
  const ticks = (axis: string) =>
    [...doc.querySelectorAll(`g[aria-label="${axis}-axis tick label"] text`)].map((t) => t.textContent);
  assert.ok(ticks("x").includes("16") && Number(ticks("x").at(-1)) < 20, ticks("x").join(","));
  assert.deepEqual([ticks("y")[0], ticks("y").at(-1)], ["59", "69"]);
  assert.deepEqual([...doc.querySelectorAll('g[aria-label="text"] text')].map((t) => t.textContent).sort(), [
    "66.00 %: the ensemble target",
    "68.00 %: the target plus the validation-to-test drop",
  ]);
  // without a drop: one reference, the line stops at the target (8 CPU-hours)
  const plain = new DOMParser().parseFromString(
    budgetPlot(frontier, fitLogHours(frontier), 0.66),
    "image/svg+xml",
  );
  assert.equal(plain.querySelectorAll('g[aria-label="rule"] line').length, 1);
  assert.equal(doc.querySelectorAll('g[aria-label="dot"] circle').length, 1); // the fit's end is not circled
});
