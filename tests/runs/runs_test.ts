import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import { readPredictionsCsv } from "../../lib/eval/predictions.ts";
import {
  predictRun,
  removeDerivedPredictions,
  resolveRunDir,
  RunError,
  runPaths,
  saveRunFigures,
} from "../../lib/runs/runs.ts";
import { trainTinyRun } from "../helpers/tiny_model.ts";

await tf.setBackend("cpu");

Deno.test("a trained run reloads from disk and predicts the test split exactly as training did", async () => {
  const outDir = mkdtempSync(join(tmpdir(), "fer-runs-"));
  try {
    const res = await trainTinyRun(outDir, "r1", { augment: false });
    assert.equal(resolveRunDir(join(outDir, "r1")), res.runDir);
    const p = await predictRun(res.runDir, "test");
    assert.equal(p.rows.length, 20);
    const trained = readPredictionsCsv(join(res.runDir, "predictions.csv")).rows;
    assert.deepEqual(
      p.rows.map((r) => [r.path, r.label, r.pred]),
      trained.map((r) => [r.path, r.label, r.pred]),
    );
    for (const r of p.rows) assert.ok(Math.abs(r.probs!.reduce((a, b) => a + b) - 1) < 1e-4);
    const val = await predictRun(res.runDir, "val");
    assert.ok(val.rows.length > 0 && val.rows.length <= 20);
    assert.ok(val.rows.every((r) => r.path.startsWith("train/")));
    const figs = await saveRunFigures(res.runDir);
    for (const k of ["accuracy", "loss", "confusion"]) {
      assert.ok(existsSync(join(res.runDir, `${k}.svg`)) && existsSync(join(res.runDir, `${k}.png`)), k);
    }
    assert.equal(figs.length, 6);

    // the same folder without its weights (as a clone has it): the error says how to train the recipe again
    rmSync(join(res.runDir, "best"), { recursive: true });
    await assert.rejects(
      predictRun(res.runDir, "test"),
      (e: Error) =>
        e instanceof RunError &&
        /r1 has finished \(test accuracy \d\.\d{4}.*\) but its weights are not here/.test(e.message) &&
        /train its recipe again: deno task train \S+ .*--run r1-again$/.test(e.message),
    );
  } finally {
    rmSync(outDir, { recursive: true, force: true });
  }
});

Deno.test("unknown run: a clear error naming the missing file", () => {
  assert.throws(
    () => resolveRunDir("/nonexistent/run"),
    (e: Error) => e instanceof RunError && /config\.json not found/.test(e.message),
  );
});

Deno.test("removeDerivedPredictions: the validation and TTA predictions go, the run's own files stay", () => {
  const dir = mkdtempSync(join(tmpdir(), "fer-derived-"));
  try {
    const keep = [
      "config.json",
      "predictions.csv",
      "test_report.json",
      "history.json",
      "predictions_val.txt",
    ];
    const derived = [
      "predictions_tta-hflip.csv",
      "predictions_val.csv",
      "predictions_val_tta-10crop.csv",
      "predictions_val_tta-5crop-logit.csv",
    ];
    for (const f of [...keep, ...derived]) writeFileSync(join(dir, f), "x");
    assert.deepEqual(removeDerivedPredictions(runPaths(dir)).sort(), [...derived].sort());
    assert.deepEqual(readdirSync(dir).sort(), [...keep].sort());
    assert.deepEqual(removeDerivedPredictions(runPaths(join(dir, "missing"))), []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
