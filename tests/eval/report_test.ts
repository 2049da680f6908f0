import assert from "node:assert/strict";
import { join } from "node:path";
import "@tensorflow/tfjs-backend-cpu";
import { CLASSES } from "../../lib/data/classes.ts";
import { historyTable, resultRow, resultsTable, runMarkdown } from "../../lib/eval/report.ts";
import { writePredictionsCsv } from "../../lib/eval/predictions.ts";
import { modelParams } from "../../lib/models/registry.ts";

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
    assert.doesNotMatch(md, /validation split of seed/);
    // a run reseeded with `train --seed` names the seed of its validation split
    const cfg = JSON.parse(Deno.readTextFileSync(join(dir, "config.json")));
    Deno.writeTextFileSync(join(dir, "config.json"), JSON.stringify({ ...cfg, seed: 1, splitSeed: 42 }));
    assert.match(runMarkdown(dir), /seed 1 \(validation split of seed 42\)/);
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
        precision: "bfloat16",
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
    assert.match(md, /random erasing p 0\.5, bfloat16 convolutions and dense layers in training/);
    assert.match(md, /cost: wall time 1\.56 h, CPU time 2\.60 CPU-hours over 3 sessions/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("resultRow / resultsTable: cost, TTA chosen on validation, its test accuracy; ensembles; in progress", async () => {
  const dir = await Deno.makeTempDir({ prefix: "fer-results-" });
  const rows = (n: number, correct: number) =>
    Array.from({ length: n }, (_, i) => ({
      path: `c/${i}.jpg`,
      label: i % 7,
      pred: i < correct ? i % 7 : (i + 1) % 7,
      probs: undefined,
    }));
  try {
    const run = join(dir, "r1");
    Deno.mkdirSync(run);
    Deno.writeTextFileSync(
      join(run, "config.json"),
      JSON.stringify({
        experiment: "fer_cnn",
        model: "fer_cnn_small",
        preset: "cpu",
        epochs: 3,
        inputSize: 48,
      }),
    );
    const hist = [
      { ...row(1, 0.4), img_s: 100, wall_total_s: 1000, cpu_total_s: 1800 },
      { ...row(2, 0.5), img_s: 120, wall_total_s: 2000, cpu_total_s: 3600 },
    ];
    Deno.writeTextFileSync(join(run, "history.json"), JSON.stringify(hist));
    // training: no test figures, the epochs say so
    let r = resultRow(run);
    assert.equal(r.epochs, "2 of 3, training (best 2)");
    assert.equal(r.testAcc, null);
    assert.equal(r.cpuHours, 1);
    assert.equal(r.imgPerS, 120); // the median of [100, 120] taken as the upper middle
    assert.equal(r.params, modelParams("fer_cnn_small"));
    assert.equal(r.recipe, "fer_cnn (cpu)");
    const cfg = JSON.parse(Deno.readTextFileSync(join(run, "config.json")));
    Deno.writeTextFileSync(join(run, "config.json"), JSON.stringify({ ...cfg, precision: "bfloat16" }));
    assert.equal(resultRow(run).recipe, "fer_cnn (cpu, bfloat16)");
    Deno.writeTextFileSync(join(run, "config.json"), JSON.stringify(cfg));
    const perClass = Object.fromEntries(CLASSES.map((c) => [c, { f1: 0.5 }]));
    Deno.writeTextFileSync(
      join(run, "test_report.json"),
      JSON.stringify({ test_accuracy: 0.55, report: { macro_avg: { f1: 0.45 }, per_class: perClass } }),
    );
    // no TTA evaluated: "none", its values are the plain ones
    r = resultRow(run);
    assert.deepEqual([r.epochs, r.tta, r.valAccTta, r.testAcc, r.testAccTta, r.testMacroF1], [
      "2 (best 2)",
      "none",
      0.5,
      0.55,
      0.55,
      0.45,
    ]);
    // hflip beats none and 10crop on val -> chosen; its test file not written yet -> no test figure with TTA
    writePredictionsCsv(join(run, "predictions_val_tta-hflip.csv"), rows(20, 15), CLASSES);
    writePredictionsCsv(join(run, "predictions_val_tta-10crop.csv"), rows(20, 12), CLASSES);
    r = resultRow(run);
    assert.deepEqual([r.tta, r.valAccTta, r.testAccTta], ["hflip", 0.75, null]);
    writePredictionsCsv(join(run, "predictions_tta-hflip.csv"), rows(14, 7), CLASSES);
    r = resultRow(run);
    assert.equal(r.testAccTta, 0.5);
    assert.ok(r.testMacroF1 !== null && r.testMacroF1 !== 0.45); // recomputed from the TTA predictions
    // an ensemble: members' CPU-hours summed, its own TTA, val and test accuracy from its reports
    const ens = join(dir, "ensemble-e");
    Deno.mkdirSync(ens);
    Deno.writeTextFileSync(
      join(ens, "config.json"),
      JSON.stringify({
        kind: "ensemble",
        members: [{ run: "r1", dir: run }, { run: "r1", dir: run }],
        tta: { mode: "10crop" },
      }),
    );
    Deno.writeTextFileSync(join(ens, "val_report.json"), JSON.stringify({ test_accuracy: 0.8 }));
    Deno.writeTextFileSync(
      join(ens, "test_report.json"),
      JSON.stringify({ test_accuracy: 0.7, report: { macro_avg: { f1: 0.65 } } }),
    );
    const e = resultRow(ens);
    assert.deepEqual([e.recipe, e.cpuHours, e.tta, e.valAccTta, e.testAccTta, e.testMacroF1], [
      "ensemble of r1 + r1",
      2,
      "10crop",
      0.8,
      0.7,
      0.65,
    ]);
    const table = resultsTable([run, ens]).split("\n");
    assert.equal(table.length, 4);
    assert.match(
      table[2],
      /^\| r1 \| fer_cnn \(cpu\) \| 2\.53 M \| 120 \| 1\.00 \| 2 \(best 2\) \| 0\.5000 \| hflip \| 0\.7500 \| 0\.5500 \| 0\.5000 \|/,
    );
    assert.match(
      table[3],
      /^\| ensemble-e \| ensemble of r1 \+ r1 \| – \| – \| 2\.00 \| – \| – \| 10crop \| 0\.8000 \| – \| 0\.7000 \| 0\.6500 \|$/,
    );
    // each member with its own TTA (`auto`): the table names the members' modes in order
    const auto = join(dir, "ensemble-auto");
    Deno.mkdirSync(auto);
    Deno.writeTextFileSync(
      join(auto, "config.json"),
      JSON.stringify({
        kind: "ensemble",
        members: [{ run: "r1", dir: run, tta: { mode: "hflip" } }, {
          run: "r1",
          dir: run,
          tta: { mode: "none" },
        }],
        tta: "auto",
      }),
    );
    assert.deepEqual(resultRow(auto).memberTta, ["hflip", "none"]);
    assert.match(
      resultsTable([auto]).split("\n")[2],
      /^\| ensemble-auto \| .* \| auto \(hflip, none\) \| – \| – \| – \| – \|$/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
