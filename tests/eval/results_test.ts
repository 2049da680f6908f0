import assert from "node:assert/strict";
import { join } from "node:path";
import { CLASSES } from "../../lib/data/dataset.ts";
import { classificationReport, confusionMatrix } from "../../lib/eval/metrics.ts";
import {
  flagsMarkdown,
  metricRows,
  overfitFlag,
  readRunRecord,
  resultsLine,
  type RunRecord,
  runResults,
} from "../../lib/eval/results.ts";
import { STUDY_RESULTS, studyResult } from "../../lib/eval/study.ts";

/** Labels 0..6 with `perClass[k]` items each, and predictions from `pred(label, i)`. */
function record(
  perClass: number[],
  pred: (label: number, i: number) => number,
  config: Partial<RunRecord["config"]> = {},
  summary: Partial<RunRecord["summary"]> = {},
  epochs = 4,
): RunRecord {
  const y: number[] = [];
  perClass.forEach((n, k) => y.push(...Array(n).fill(k)));
  const p = y.map(pred);
  return {
    name: "run-x",
    config: {
      experiment: "efficientnet_b3",
      preset: "cpu",
      model: "efficientnet_b3",
      pretrained: false,
      inputSize: 48,
      channels: 3,
      epochs,
      patience: 2,
      valFraction: 0.1,
      maxTrainImages: 6000,
      maxEvalImages: null,
      ...config,
    },
    history: Array.from({ length: epochs }, (_, i) => ({ epoch: i + 1, val_acc: 0.2 + 0.01 * i })),
    summary: {
      best_epoch: epochs,
      stopped: "completed",
      report: classificationReport(y, p, [...CLASSES]),
      confusion_matrix: confusionMatrix(y, p, CLASSES.length),
      ...summary,
    },
  };
}

// FER2013's test split: 958 angry, 111 disgust, 1024 fear, 1774 happy, 1233 neutral, 1247 sad, 831 surprise.
const TEST = [958, 111, 1024, 1774, 1233, 1247, 831];

Deno.test("study: one data module with accuracy, macro-F1 and ConvNeXt per-class F1, each with its source", () => {
  assert.deepEqual(STUDY_RESULTS.map((s) => [s.experiment, s.accuracy, s.macroF1]), [
    ["efficientnet_b3", 0.704, 0.69],
    ["efficientnet_b3_label_smoothing", 0.697, 0.69],
    ["convnext_tiny", 0.723, 0.71],
  ]);
  assert.deepEqual(studyResult("convnext_tiny")?.perClassF1, {
    angry: 0.65,
    disgust: 0.73,
    fear: 0.59,
    happy: 0.90,
    neutral: 0.69,
    sad: 0.60,
    surprise: 0.83,
  });
  for (const s of STUDY_RESULTS) assert.ok(s.source.includes(String(s.accuracy)), s.source);
  assert.equal(studyResult("fer_cnn"), undefined);
});

Deno.test("runResults: a collapsed run is flagged with its share, never-predicted classes and the baseline", () => {
  // Everything "happy" except every 50th image, which is guessed right (but never "disgust").
  const r = runResults(record(TEST, (y, i) => (i % 50 === 0 && y !== 1 ? y : 3)));
  const text = r.flags.join("\n");
  assert.match(text, /Predicts one class for most images: "happy" for 9\d % of test images/);
  assert.match(text, /"happy" is 25 % of the test set/);
  assert.match(text, /Never predicts "disgust" \(F1 0 for it\)/);
  assert.match(text, /no better than always answering "happy" \(0\.247\)/);
  assert.match(
    text,
    /Early stopping never triggered: all 4 epochs ran, and validation accuracy was still improving/,
  );
  assert.match(
    text,
    /Not comparable to the study because it started from random weights.*48 px, the study's 224 px.*6,000 images.*4 epochs/,
  );
  // metrics: this run beside the study's numbers
  assert.deepEqual(r.metrics.slice(0, 2).map((m) => [m.metric, m.study]), [["test accuracy", 0.704], [
    "macro-F1",
    0.69,
  ]]);
  assert.equal(r.metrics.length, 2 + 7);
  assert.ok(r.metrics.slice(2).every((m) => m.study === undefined)); // the study published no per-class F1 here
  const rows = metricRows(r);
  assert.equal(rows[0].study, "0.704");
  assert.equal(rows[2].study, "–");
  assert.match(rows[0].difference, /^−0\.\d{3}$/);
  assert.match(
    resultsLine(r),
    /^results: run-x: test accuracy 0\.\d{4} \(study 0\.704\), macro-F1 0\.\d{4} \(study 0\.690\)$/,
  );
  assert.ok(flagsMarkdown(r).split("\n").filter((l) => l.startsWith("- ")).length === r.flags.length);
  const setting = Object.fromEntries(r.setting.map((s) => [s.setting, s["this run"]]));
  assert.equal(setting["weights"], "random initialisation");
  assert.equal(setting["input size"], "48×48×3");
  assert.equal(setting["training images"], "6,000 (subset)");
  assert.match(setting["epochs"], /^4 of at most 4 \(best: 4; completed\)$/);
  assert.equal(setting["training cost"], "not recorded (a run from before the cost accounting)");
  // the cost over all sessions, from the test report (else the last history row)
  const rec = record(TEST, (y) => y);
  const cost = (r: ReturnType<typeof record>) =>
    runResults(r).setting.find((s) => s.setting === "training cost")?.["this run"];
  rec.history[rec.history.length - 1] = { ...rec.history.at(-1)!, wall_total_s: 5400, cpu_total_s: 9000 };
  assert.equal(cost(rec), "wall time 1.50 h, 2.50 CPU-hours");
  rec.summary = { ...rec.summary, wall_seconds: 7200, cpu_seconds: 10800, sessions: 3 };
  assert.equal(cost(rec), "wall time 2.00 h, 3.00 CPU-hours over 3 sessions");
});

Deno.test("runResults: a good, study-like run has no collapse flags and names only the remaining difference", () => {
  // 80 % right, errors spread over the next class.
  const r = runResults(
    record(
      TEST,
      (y, i) => (i % 5 === 0 ? (y + 1) % 7 : y),
      {
        experiment: "convnext_tiny",
        model: "convnext_tiny",
        pretrained: true,
        inputSize: 224,
        maxTrainImages: null,
        epochs: 20,
      },
      { stopped: "early_stopped", best_epoch: 5 },
      8,
    ),
  );
  assert.deepEqual(r.flags, [
    "Same setting as the study, except that the study early-stopped on the test set (so its numbers are " +
    "optimistic) and this run on a validation split.",
  ]);
  // per-class F1 has the study's published values for ConvNeXt-Tiny
  assert.equal(r.metrics.find((m) => m.metric === "F1 happy")?.study, 0.9);
});

Deno.test("runResults: experiments outside the study and sample data say so", () => {
  const r = runResults(
    record(TEST.map((n) => Math.ceil(n / 100)), (y) => y, { experiment: "fer_cnn", model: "fer_cnn_small" }, {
      sample_data: true,
      stopped: "early_stopped",
    }),
  );
  assert.ok(r.flags.some((f) => f.includes('"fer_cnn" is not one of the study\'s runs')));
  // one epoch: no claim that it was "still improving", and singular words
  const one = runResults(record(TEST, (y) => y, {}, {}, 1));
  assert.ok(
    one.flags.includes("Early stopping never triggered: the single epoch ran."),
    one.flags.join("\n"),
  );
  assert.match(one.flags.join("\n"), /it trained 1 epoch, the study up to 20/);
  assert.equal(
    r.setting.find((s) => s.setting === "training images")?.["this run"],
    "demo sample (not FER2013)",
  );
  assert.ok(r.metrics.every((m) => m.study === undefined));
});

Deno.test("readRunRecord: reads a run folder and names a missing file", async () => {
  const dir = await Deno.makeTempDir({ prefix: "fer-results-" });
  try {
    const rec = record(TEST, (y) => y);
    Deno.writeTextFileSync(join(dir, "config.json"), JSON.stringify(rec.config));
    Deno.writeTextFileSync(join(dir, "history.json"), JSON.stringify(rec.history));
    assert.throws(() => readRunRecord(dir), new RegExp(`${join(dir, "test_report.json")} not found`));
    Deno.writeTextFileSync(join(dir, "test_report.json"), JSON.stringify(rec.summary));
    const back = readRunRecord(dir);
    assert.equal(back.name, dir.split("/").pop());
    assert.equal(runResults(back).metrics[0].run, 1);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("overfitFlag: validation loss up 5 % from its lowest and a 10-point accuracy gap at the last epoch", () => {
  // validation loss lowest at epoch 3, then rising; training accuracy pulling away
  const rows = (lastLoss: number, lastTrain: number) =>
    [[1.6, 0.30, 0.30], [1.4, 0.40, 0.40], [1.2, 0.50, 0.48], [1.25, 0.60, 0.50], [lastLoss, lastTrain, 0.51]]
      .map(([val_loss, train_acc, val_acc], i) => ({ epoch: i + 1, val_loss, train_acc, val_acc }));
  const flag = overfitFlag(rows(1.3, 0.7));
  assert.ok(flag);
  assert.match(
    flag,
    /^Over-fitted: validation loss was lowest at epoch 3 \(1\.200\) and 1\.300 at the last \(5\)/,
  );
  assert.match(flag, /training accuracy reached 0\.700 against validation 0\.510/);
  assert.equal(overfitFlag(rows(1.25, 0.7)), null, "loss only 4 % above its lowest");
  assert.equal(overfitFlag(rows(1.3, 0.6)), null, "a 9-point gap");
  assert.equal(overfitFlag(rows(1.1, 0.7)), null, "lowest loss at the last epoch");
  assert.equal(overfitFlag(rows(1.3, 0.7).slice(2)), null, "too few epochs to tell");
  // histories without losses (older runs) never flag
  assert.equal(overfitFlag(rows(1.3, 0.7).map(({ epoch, val_acc }) => ({ epoch, val_acc }))), null);
  // and the flag is among the run's flags, before the comparability one
  const r = runResults({ ...record(TEST, (y) => y), history: rows(1.3, 0.7) });
  assert.equal(r.flags.at(-2), flag);
});
