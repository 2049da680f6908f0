import assert from "node:assert/strict";
import { join } from "node:path";
import {
  displayPath,
  findRuns,
  relativizeText,
  shownRun,
  weightsFallbackLine,
} from "../../lib/viz/notebook.ts";
import { PROJECT_ROOT } from "../../lib/data/dataset.ts";
import { WeightsNotFoundError } from "../../lib/models/weights/hub.ts";
import { experimentConfig } from "../../lib/train/experiments.ts";
import { bestByValidation, findEnsembles } from "../../lib/runs/runs.ts";

Deno.test("experimentConfig records the preset it came from", () => {
  assert.equal(experimentConfig("fer_cnn", "cpu").preset, "cpu");
  assert.equal(experimentConfig("convnext_tiny", "smoke").preset, "smoke");
});

Deno.test("shownRun: the notebook's RUN, except in smoke mode (a pipeline check trains its tiny run)", () => {
  const before = Deno.env.get("FER_SMOKE");
  try {
    Deno.env.delete("FER_SMOKE");
    assert.equal(shownRun("convnext_tiny-scratch"), "convnext_tiny-scratch");
    assert.equal(shownRun(null), null);
    Deno.env.set("FER_SMOKE", "1");
    assert.equal(shownRun("convnext_tiny-scratch"), null);
  } finally {
    if (before === undefined) Deno.env.delete("FER_SMOKE");
    else Deno.env.set("FER_SMOKE", before);
  }
});

Deno.test("findRuns: by experiment, completed runs only, oldest report first, smoke runs only when asked", async () => {
  const out = await Deno.makeTempDir({ prefix: "fer-runs-" });
  try {
    const make = (name: string, experiment: string, preset: string | null, reportAt: number | null) => {
      const dir = join(out, name);
      Deno.mkdirSync(dir);
      Deno.writeTextFileSync(join(dir, "config.json"), JSON.stringify({ experiment, preset }));
      if (reportAt !== null) {
        Deno.writeTextFileSync(join(dir, "test_report.json"), "{}");
        Deno.utimeSync(join(dir, "test_report.json"), reportAt, reportAt);
      }
    };
    make("b-cpu", "fer_cnn", "cpu", 2000);
    make("a-cpu-later", "fer_cnn", "cpu", 3000); // sorts first by name, finished last
    make("c-smoke", "fer_cnn", "smoke", 4000);
    make("d-unfinished", "fer_cnn", "cpu", null);
    make("e-other", "convnext_tiny", null, 1000);
    Deno.mkdirSync(join(out, "f-ens"));
    Deno.writeTextFileSync(
      join(out, "f-ens", "config.json"),
      JSON.stringify({ kind: "ensemble", experiment: "x" }),
    );
    Deno.writeTextFileSync(join(out, "f-ens", "test_report.json"), "{}");
    const names = (l: string[]) => l.map((d) => d.slice(out.length + 1));
    assert.deepEqual(names(findRuns("fer_cnn", out, false)), ["b-cpu", "a-cpu-later"]);
    assert.deepEqual(names(findRuns("fer_cnn", out, true)), ["b-cpu", "a-cpu-later", "c-smoke"]);
    assert.deepEqual(names(findRuns(undefined, out, false)), ["e-other", "b-cpu", "a-cpu-later"]);
    assert.deepEqual(findRuns("fer_cnn", join(out, "missing")), []);
    assert.deepEqual(names(findEnsembles(out)), ["f-ens"]);
    assert.deepEqual(findEnsembles(join(out, "missing")), []);
    // withWeights: a committed run folder has its reports but not its model
    assert.deepEqual(names(findRuns("fer_cnn", out, false, true)), []);
    Deno.mkdirSync(join(out, "b-cpu", "best"));
    Deno.writeTextFileSync(join(out, "b-cpu", "best", "model.json"), "{}");
    assert.deepEqual(names(findRuns("fer_cnn", out, false, true)), ["b-cpu"]);
    // bestByValidation: the best epoch's validation accuracy decides, not the date; the newer on ties
    const history = (name: string, accs: number[]) =>
      Deno.writeTextFileSync(
        join(out, name, "history.json"),
        JSON.stringify(accs.map((val_acc) => ({ val_acc }))),
      );
    const runs = findRuns("fer_cnn", out, false); // b-cpu, then a-cpu-later
    assert.equal(bestByValidation(runs), null); // no history yet
    history("b-cpu", [0.5, 0.7, 0.6]);
    history("a-cpu-later", [0.65]);
    assert.equal(names([bestByValidation(runs)!])[0], "b-cpu");
    history("a-cpu-later", [0.7]);
    assert.equal(names([bestByValidation(runs)!])[0], "a-cpu-later");
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("displayPath / relativizeText: no absolute machine paths in notebook outputs", () => {
  const env = (v?: string) => ({ get: (k: string) => (k === "FER2013_DIR" ? v : undefined) });
  assert.equal(displayPath(join(PROJECT_ROOT, "checkpoints", "run-1"), env()), "checkpoints/run-1");
  assert.equal(displayPath(PROJECT_ROOT, env()), ".");
  assert.equal(displayPath("/srv/data/fer2013", env("/srv/data/fer2013")), "$FER2013_DIR");
  assert.equal(displayPath("/srv/data/fer2013/train", env("/srv/data/fer2013")), "$FER2013_DIR/train");
  assert.equal(displayPath("/home/someone/x/y/z.safetensors", env()), "…/y/z.safetensors");
  assert.equal(
    relativizeText(`run folder: ${PROJECT_ROOT}/checkpoints/a and ${PROJECT_ROOT}/checkpoints/b`),
    "run folder: checkpoints/a and checkpoints/b",
  );
});

Deno.test("weightsFallbackLine: offline is one fixed line without the raw network error", () => {
  const raw =
    "Could not download pretrained weights for timm/x from https://huggingface.co/...: fetch failed: " +
    "error sending request: client error (Connect): dns error: failed to lookup address. The network seems " +
    "unreachable (offline?). Download ... by hand";
  const line = weightsFallbackLine(
    "efficientnet_b3.ra2_in1k",
    new WeightsNotFoundError(raw, { offline: true }),
  );
  assert.equal(
    line,
    "ImageNet weights for efficientnet_b3.ra2_in1k not found locally and no network: starting from random " +
      "initialisation; see README › Pretrained weights",
  );
  const other = weightsFallbackLine(
    "t",
    new WeightsNotFoundError(
      "Could not download pretrained weights for timm/t from u: access denied (403). Download by hand",
    ),
  );
  assert.equal(
    other,
    "ImageNet weights for t could not be used (access denied (403)): starting from random initialisation; see README › Pretrained weights",
  );
  assert.ok(!other.includes("\n"));
});

Deno.test("RUN set: trainOrLoad loads a finished run, showRun and showResults show it (charts as PNG bundles)", async () => {
  const { trainOrLoad, showRun, showResults } = await import("../../lib/viz/notebook.ts");
  const { setJupyter, flushOutput } = await import("../../lib/viz/display.ts");
  const { classificationReport, confusionMatrix } = await import("../../lib/eval/metrics.ts");
  const { CLASSES } = await import("../../lib/data/dataset.ts");
  const dir = await Deno.makeTempDir({ prefix: "fer-nbrun-" });
  const sent: { type: string; content: Record<string, unknown> }[] = [];
  setJupyter({ broadcast: (type, content) => void sent.push({ type, content }) });
  try {
    const y = Array.from({ length: 70 }, (_, i) => i % 7);
    const p = y.map((v, i) => (i % 2 ? 3 : v)); // half "happy"
    const row = (epoch: number) => ({
      epoch,
      train_loss: 2 - epoch * 0.1,
      train_acc: 0.2 + epoch * 0.05,
      val_loss: 2.1 - epoch * 0.1,
      val_acc: 0.2 + epoch * 0.04,
      lr: 3e-4,
      seconds: 60,
      img_s: 100,
    });
    Deno.writeTextFileSync(
      join(dir, "config.json"),
      JSON.stringify({
        experiment: "convnext_tiny",
        preset: "cpu",
        model: "convnext_tiny",
        pretrained: false,
        inputSize: 48,
        channels: 3,
        epochs: 3,
        patience: 3,
        valFraction: 0.1,
        maxTrainImages: 4000,
        maxEvalImages: null,
      }),
    );
    Deno.writeTextFileSync(join(dir, "history.json"), JSON.stringify([row(1), row(2), row(3)]));
    Deno.writeTextFileSync(
      join(dir, "test_report.json"),
      JSON.stringify({
        best_epoch: 3,
        stopped: "completed",
        report: classificationReport(y, p, [...CLASSES]),
        confusion_matrix: confusionMatrix(y, p, 7),
      }),
    );
    // deno-lint-ignore no-explicit-any
    const run = await trainOrLoad({} as any, dir);
    assert.deepEqual(run, { runDir: dir, trained: false });
    await showRun(run.runDir);
    await showResults(run.runDir);
    await flushOutput();
    const data = sent.map((m) => (m.content.data ?? {}) as Record<string, string>);
    const streams = sent.filter((m) => m.type === "stream").map((m) => String(m.content.text));
    // the history table, then "loaded from", then 3 charts with PNG beside SVG, the report, the results
    assert.match(data[0]["text/plain"], /^History of /);
    assert.match(streams[0], /^completed; best epoch 3; 3 epochs, 3\.0 min of training; loaded from /);
    const charts = data.filter((d) => "image/png" in d);
    assert.equal(charts.length, 3);
    assert.ok(charts.every((d) => "image/svg+xml" in d && d["text/plain"].startsWith("[chart] ")));
    assert.match(charts[2]["text/plain"], /Confusion matrix/);
    const md = data.find((d) => "text/markdown" in d)?.["text/markdown"] ?? "";
    assert.match(md, /Not comparable to the study because it started from random weights/);
    assert.match(
      streams[streams.length - 1],
      /^results: fer-nbrun-\w+: test accuracy 0\.\d{4} \(study 0\.723\)/,
    );
    assert.ok(!JSON.stringify(sent).includes(PROJECT_ROOT), "no absolute project path in outputs");
  } finally {
    setJupyter(undefined);
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("showTta: chosen on validation, test once with the chosen mode, read from the run folder without weights", async () => {
  const { showTta } = await import("../../lib/viz/notebook.ts");
  const { setJupyter, flushOutput } = await import("../../lib/viz/display.ts");
  const { classificationReport } = await import("../../lib/eval/metrics.ts");
  const { CLASSES } = await import("../../lib/data/dataset.ts");
  const { writePredictionsCsv } = await import("../../lib/eval/predictions.ts");
  const { predictionsPath, runPaths } = await import("../../lib/runs/runs.ts");
  const dir = await Deno.makeTempDir({ prefix: "fer-tta-" });
  const paths = runPaths(dir);
  const sent: { type: string; content: Record<string, unknown> }[] = [];
  setJupyter({ broadcast: (type, content) => void sent.push({ type, content }) });
  const lastLine = async () => {
    await flushOutput();
    return String(sent.filter((m) => m.type === "stream").at(-1)?.content.text).trim();
  };
  const table = () => {
    const t = sent.map((m) => (m.content.data ?? {}) as Record<string, string>).filter((d) =>
      "text/html" in d
    );
    return t.at(-1)?.["text/plain"] ?? "";
  };
  // 70 images, 10 per class; `correct` of them right; class 6 (surprise) never predicted when asked
  const rows = (correct: number, noSurprise = false) =>
    Array.from({ length: 70 }, (_, i) => ({
      path: `${i}.jpg`,
      label: i % 7,
      pred: i < correct && !(noSurprise && i % 7 === 6) ? i % 7 : (i % 7 + 1) % 6,
    }));
  try {
    Deno.writeTextFileSync(
      paths.config,
      JSON.stringify({ experiment: "convnext_tiny", model: "convnext_tiny", inputSize: 48, channels: 3 }),
    );
    Deno.writeTextFileSync(
      paths.historyJson,
      JSON.stringify([{
        epoch: 1,
        train_loss: 1,
        train_acc: 0.5,
        val_loss: 1,
        val_acc: 0.5,
        lr: 1e-3,
        seconds: 1,
      }]),
    );
    const single = rows(35);
    const y = single.map((r) => r.label);
    Deno.writeTextFileSync(
      paths.testReportJson,
      JSON.stringify({
        best_epoch: 1,
        test_accuracy: 0.5,
        report: classificationReport(y, single.map((r) => r.pred), [...CLASSES]),
      }),
    );
    // no hflip evaluation and no weights: says what to run, evaluates nothing
    await showTta(dir);
    const name = dir.split("/").pop();
    assert.match(
      await lastLine(),
      new RegExp(`^Test-time augmentation not evaluated: ${name}'s folder has no hflip`),
    );
    assert.match(
      await lastLine(),
      /deno task evaluate \S+ --split val --tta hflip; then deno task evaluate \S+ --tta auto/,
    );

    // hflip better on validation (0.6 > 0.5) and its test file there: read, scored, every class checked
    writePredictionsCsv(predictionsPath(paths, "val", "hflip"), rows(42));
    writePredictionsCsv(predictionsPath(paths, "test", "hflip"), rows(49, true));
    await showTta(dir);
    const tta = classificationReport(y, rows(49, true).map((r) => r.pred), [...CLASSES]);
    assert.equal(
      await lastLine(),
      `TTA chosen on validation: hflip (0.6000 against 0.5000 for the single view); test, once: accuracy ` +
        `${tta.accuracy.toFixed(4)}, macro-F1 ${tta.macro_avg.f1.toFixed(4)} (single view 0.5000, ` +
        `${classificationReport(y, single.map((r) => r.pred), [...CLASSES]).macro_avg.f1.toFixed(4)}; ` +
        `+${
          (100 * (tta.accuracy - 0.5)).toFixed(2)
        } points); never predicted: surprise. The study scored one ` +
        "view per image.",
    );
    assert.match(table(), /hflip \(chosen\)/);

    // better on validation but no test file and no weights: says how to make it
    Deno.removeSync(predictionsPath(paths, "test", "hflip"));
    await showTta(dir);
    assert.match(
      await lastLine(),
      /its test evaluation is not in the run folder .*deno task evaluate \S+ --tta auto\.$/,
    );

    // worse on validation: the single view stands, the test split is not read under hflip
    writePredictionsCsv(predictionsPath(paths, "val", "hflip"), rows(21));
    await showTta(dir);
    assert.equal(
      await lastLine(),
      `TTA chosen on validation: none (0.5000 against hflip 0.3000); the single-view test report above is ` +
        `${name}'s final one.`,
    );
    assert.match(table(), /none \(chosen\)/);
  } finally {
    setJupyter(undefined);
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("showTta with the run's weights evaluates validation, then the test split once with the chosen mode", async () => {
  const { showTta } = await import("../../lib/viz/notebook.ts");
  const { trainTinyRun } = await import("../helpers/tiny_model.ts");
  const { setJupyter, flushOutput } = await import("../../lib/viz/display.ts");
  const { predictionsPath, runPaths } = await import("../../lib/runs/runs.ts");
  const { existsSync } = await import("node:fs");
  const outDir = await Deno.makeTempDir({ prefix: "fer-tta-w-" });
  const sent: { type: string; content: Record<string, unknown> }[] = [];
  setJupyter({ broadcast: (type, content) => void sent.push({ type, content }) });
  try {
    const res = await trainTinyRun(outDir, "whole");
    const paths = runPaths(res.runDir);
    await showTta(res.runDir);
    await flushOutput();
    assert.ok(existsSync(predictionsPath(paths, "val", "hflip")));
    const line = String(sent.filter((m) => m.type === "stream").at(-1)?.content.text);
    // whichever wins on validation, the test split is evaluated only under the chosen mode
    const chose = /^TTA chosen on validation: (none|hflip) /.exec(line)?.[1];
    assert.ok(chose, line);
    assert.equal(existsSync(predictionsPath(paths, "test", "hflip")), chose === "hflip");
  } finally {
    setJupyter(undefined);
    await Deno.remove(outDir, { recursive: true });
  }
});
