/** lib/eval/predictors.ts: the models a run or an ensemble predicts with, and the model for new faces. */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import { ensembleHasWeights, ensembleValAccuracy, evaluateEnsemble } from "../../lib/eval/ensemble.ts";
import { bestModelOnValidation, loadPredictors } from "../../lib/eval/predictors.ts";
import { writePredictionsCsv } from "../../lib/eval/predictions.ts";
import { predictRunTta } from "../../lib/eval/tta.ts";
import { predictionsPath, runPaths } from "../../lib/runs/runs.ts";
import { trainTinyRun } from "../helpers/tiny_model.ts";

await tf.setBackend("cpu");

Deno.test("loadPredictors: a run's model with its TTA; an ensemble's members with their recorded TTA, or one given", async () => {
  const outDir = mkdtempSync(join(tmpdir(), "fer-predictors-"));
  try {
    const a = await trainTinyRun(outDir, "a", { lr: 1e-3 });
    const b = await trainTinyRun(outDir, "b", { lr: 1e-2 });
    // a's hflip is made the better on validation, so `auto` chooses it for a; b has no TTA evaluated: none
    const hflip = { mode: "hflip" as const, average: "prob" as const };
    const perfect = (await predictRunTta(a.runDir, "val", hflip)).rows.map((r) => ({ ...r, pred: r.label }));
    writePredictionsCsv(predictionsPath(runPaths(a.runDir), "val", "hflip"), perfect);
    const ens = await evaluateEnsemble([a.runDir, b.runDir], {
      tta: "auto",
      split: "val",
      name: "ab",
      outDir,
    });
    const one = await loadPredictors(a.runDir, { mode: "auto" });
    assert.deepEqual(one.map((p) => [p.name, p.tta.mode, p.tta.source]), [["a", "hflip", "validation"]]);
    const both = await loadPredictors(ens.dir, { mode: "auto" });
    assert.deepEqual(both.map((p) => [p.name, p.tta.mode, p.dir]), [["a", "hflip", a.runDir], [
      "b",
      "none",
      b.runDir,
    ]]);
    const given = await loadPredictors(ens.dir, { mode: "none" });
    assert.deepEqual(given.map((p) => p.tta.mode), ["none", "none"]);
    for (const p of [...one, ...both, ...given]) {
      assert.equal(p.classes.length, 7);
      p.model.dispose();
    }
  } finally {
    rmSync(outDir, { recursive: true, force: true });
  }
});

Deno.test("bestModelOnValidation: runs under their chosen TTA and ensembles, compared on validation", async () => {
  const outDir = mkdtempSync(join(tmpdir(), "fer-predictors-best-"));
  try {
    const runs = [
      (await trainTinyRun(outDir, "a", { lr: 1e-3 })).runDir,
      (await trainTinyRun(outDir, "b")).runDir,
    ];
    const none = { mode: "none" as const, average: "prob" as const };
    const ens = await evaluateEnsemble(runs, { tta: none, split: "val", name: "ab", outDir });
    assert.equal(ensembleValAccuracy(ens.dir), ens.accuracy);
    assert.ok(ensembleHasWeights(ens.dir));
    writeFileSync(join(ens.dir, "val_report.json"), JSON.stringify({ test_accuracy: 1 }));
    assert.deepEqual(bestModelOnValidation(runs, [ens.dir]), {
      dir: ens.dir,
      valAccuracy: 1,
      ensemble: true,
    });
    writeFileSync(join(ens.dir, "val_report.json"), JSON.stringify({ test_accuracy: 0 }));
    const run = bestModelOnValidation(runs, [ens.dir])!;
    assert.equal(run.ensemble, false);
    assert.ok(runs.includes(run.dir));
    assert.equal(bestModelOnValidation([], []), null);
    rmSync(join(runs[1], "best"), { recursive: true });
    assert.equal(ensembleHasWeights(ens.dir), false); // a member without its model
  } finally {
    rmSync(outDir, { recursive: true, force: true });
  }
});
