import assert from "node:assert/strict";
import { join } from "node:path";
import { historyTable, runMarkdown } from "../../lib/eval/report.ts";

const row = (epoch: number, valAcc: number) => ({
  epoch,
  train_loss: 1.5,
  train_acc: 0.4,
  val_loss: 1.25,
  val_acc: valAcc,
  lr: 1e-3,
  seconds: 90,
  img_s: 287.4,
});

Deno.test("historyTable: one Markdown row per epoch with fixed digits", () => {
  const t = historyTable([row(1, 0.41234), row(2, 0.5)]).split("\n");
  assert.equal(t.length, 4);
  assert.equal(t[2], "| 1 | 1.5000 | 0.4000 | 1.2500 | 0.4123 | 1.00e-3 | 90 | 287 |");
});

Deno.test("runMarkdown: config line, history, report text and totals; missing files are named", async () => {
  const dir = await Deno.makeTempDir({ prefix: "fer-report-" });
  try {
    Deno.writeTextFileSync(
      join(dir, "config.json"),
      JSON.stringify({
        experiment: "fer_cnn",
        model: "fer_cnn_small",
        preset: "cpu",
        epochs: 8,
        inputSize: 48,
      }),
    );
    assert.throws(() => runMarkdown(dir), (e: Error) => e.message.includes(join(dir, "history.json")));
    Deno.writeTextFileSync(join(dir, "history.json"), "[]"); // started, no epoch yet
    assert.throws(() => runMarkdown(dir), (e: Error) => e.message.includes(join(dir, "test_report.json")));
    Deno.writeTextFileSync(join(dir, "history.json"), JSON.stringify([row(1, 0.4), row(2, 0.5)]));
    // still training: history, progress and how to resume, no test figures
    const progress = runMarkdown(dir);
    assert.match(progress, /^fer_cnn \(fer_cnn_small, cpu preset\): 48×48×/);
    assert.match(progress, /\| 2 \| 1\.5000 \| 0\.4000 \| 1\.2500 \| 0\.5000 \|/);
    assert.match(
      progress,
      /in progress: 2 of at most 8 epochs done; best validation accuracy so far 0\.5000 \(epoch 2\); no test/,
    );
    assert.match(progress, new RegExp(`resume: deno task train --resume ${dir.split("/").pop()}$`));
    assert.doesNotMatch(progress, /test accuracy/);
    Deno.writeTextFileSync(
      join(dir, "test_report.json"),
      JSON.stringify({
        best_epoch: 2,
        stopped: "completed",
        test_accuracy: 0.55,
        report: { macro_avg: { f1: 0.45 } },
      }),
    );
    Deno.writeTextFileSync(join(dir, "test_report.txt"), "REPORT TEXT\n");
    const md = runMarkdown(dir);
    assert.match(md, /^fer_cnn \(fer_cnn_small, cpu preset\): 48×48×/);
    assert.match(md, /```\nREPORT TEXT\n```/);
    assert.match(
      md,
      /completed; 2 epochs, sum of epoch times 3\.0 min; best epoch 2; test accuracy 0\.5500, macro-F1 0\.4500$/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("historyTable and runMarkdown show cumulative CPU-hours and the run's cost over its sessions", async () => {
  const rows = [
    { ...row(1, 0.4), cpu_s: 3000, wall_total_s: 1800, cpu_total_s: 3600 },
    { ...row(2, 0.5), cpu_s: 3000, wall_total_s: 5400, cpu_total_s: 9000 },
  ];
  const t = historyTable(rows).split("\n");
  assert.match(t[0], /\| CPU-h \(total\) \|$/);
  assert.equal(t[3], "| 2 | 1.5000 | 0.4000 | 1.2500 | 0.5000 | 1.00e-3 | 90 | 287 | 2.50 |");
  const dir = await Deno.makeTempDir({ prefix: "fer-report-cost-" });
  try {
    Deno.writeTextFileSync(
      join(dir, "config.json"),
      JSON.stringify({
        experiment: "vgg_fer",
        model: "vgg_fer",
        preset: "cpu",
        inputSize: 44,
        channels: 1,
        batchSize: 64,
        cropFrom: 48,
        optimizer: "sgd",
        schedule: "warmup_cosine",
        warmupEpochs: 2,
        tMax: 40,
        erasing: { p: 0.5 },
      }),
    );
    Deno.writeTextFileSync(join(dir, "history.json"), JSON.stringify(rows));
    Deno.writeTextFileSync(
      join(dir, "test_report.json"),
      JSON.stringify({
        best_epoch: 2,
        stopped: "completed",
        test_accuracy: 0.7,
        report: { macro_avg: { f1: 0.6 } },
        wall_seconds: 5600,
        cpu_seconds: 9360,
        sessions: 3,
      }),
    );
    const md = runMarkdown(dir);
    assert.match(md, /44×44×1 crops of 48, batch 64, SGD Nesterov momentum 0\.9 lr /);
    assert.match(md, /warm-up 2 epochs \+ per-step cosine over 40 epochs/);
    assert.match(md, /random erasing p 0\.5/);
    assert.match(md, /cost: wall time 1\.56 h, CPU time 2\.60 CPU-hours over 3 sessions/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
