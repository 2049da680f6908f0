import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  confusionDifference,
  formatPValue,
  loadRunSummary,
  metricEstimates,
  pairwiseMcNemar,
  perClassF1Rows,
} from "../../lib/eval/compare.ts";
import { CLASSES } from "../../lib/data/dataset.ts";
import { formatPredictionsCsv } from "../../lib/eval/predictions.ts";
import { STUDY_RESULTS } from "../../lib/eval/study.ts";

function fakeRun(
  root: string,
  name: string,
  preds: number[],
  labels: number[],
  extra: Record<string, unknown> = {},
): string {
  const dir = join(root, name);
  Deno.mkdirSync(dir);
  writeFileSync(
    join(dir, "config.json"),
    JSON.stringify({ experiment: name, inputSize: 48, maxTrainImages: null, ...extra }),
  );
  const rows = labels.map((label, i) => ({ path: `img${i}.jpg`, label, pred: preds[i] }));
  writeFileSync(join(dir, "predictions.csv"), formatPredictionsCsv(rows));
  return dir;
}

Deno.test("comparison: estimates, per-class F1, McNemar counts and confusion differences", () => {
  const root = mkdtempSync(join(tmpdir(), "fer-cmp-"));
  try {
    const labels = Array.from({ length: 70 }, (_, i) => i % 7);
    const a = labels.map((l, i) => (i < 50 ? l : (l + 1) % 7)); // 50 right
    const b = labels.map((l, i) => (i < 40 || i >= 60 ? l : (l + 2) % 7)); // 50 right, different ones
    const ra = loadRunSummary(fakeRun(root, "a", a, labels));
    const rb = loadRunSummary(fakeRun(root, "b", b, labels));
    assert.equal(ra.report.accuracy, 50 / 70);
    // the setting column says preset, input, subset and whether ImageNet weights were used
    const cfgs = [
      [{ model: "fer_cnn_small", preset: "cpu", pretrained: false }, "cpu preset, 48px"],
      [
        { model: "convnext_tiny", preset: "cpu", maxTrainImages: 4000, pretrained: false },
        "cpu preset, 48px, 4000 train imgs, random init",
      ],
      [{ model: "efficientnet_b3", pretrained: true }, "48px, ImageNet init"],
    ] as const;
    cfgs.forEach(([extra, want], i) =>
      assert.equal(loadRunSummary(fakeRun(root, `s${i}`, a, labels, extra)).preset, want)
    );
    // an ensemble folder names its members and TTA
    const ens = {
      kind: "ensemble",
      model: "ensemble",
      members: [{ run: "x" }, { run: "y" }],
      tta_description: "10crop (probabilities averaged over 10 views)",
    };
    assert.equal(
      loadRunSummary(fakeRun(root, "ens", a, labels, ens)).preset,
      "ensemble of x + y; TTA 10crop (probabilities averaged over 10 views)",
    );
    const est = metricEstimates([ra, rb], { resamples: 200 });
    const accA = est.find((e) => e.model === "a" && e.metric === "accuracy")!;
    assert.ok(accA.lo <= accA.value && accA.value <= accA.hi && accA.hi - accA.lo > 0);
    // the study's accuracy and macro-F1 for each of its runs, as references without intervals
    const study = est.filter((e) => e.model.startsWith("study: "));
    assert.equal(study.length, 2 * STUDY_RESULTS.length);
    assert.deepEqual(
      study.filter((e) => e.model === "study: ConvNeXt-Tiny (ImageNet-22k)").map((e) => [e.metric, e.value]),
      [["accuracy", 0.723], ["macro F1", 0.71]],
    );
    assert.ok(study.every((e) => Number.isNaN(e.lo) && Number.isNaN(e.hi)));
    assert.equal(perClassF1Rows([ra, rb]).length, 2 * 7 + 7);
    const mc = pairwiseMcNemar([ra, rb]);
    assert.equal(mc.length, 1);
    assert.equal(mc[0]["only A right"], 10); // items 40..49
    assert.equal(mc[0]["only B right"], 10); // items 60..69
    assert.equal(mc[0]["p-value"], "1.0000");
    assert.deepEqual([0, 3e-7, 0.00009, 0.0001, 0.01234, NaN].map(formatPValue), [
      "< 0.0001",
      "< 0.0001",
      "< 0.0001",
      "0.0001",
      "0.0123",
      "n/a",
    ]);
    const diff = confusionDifference(ra, rb);
    assert.equal(diff.length, 7);
    const total = diff.reduce((s, r) => s + CLASSES.reduce((t, c) => t + (r[c] as number), 0), 0);
    assert.equal(total, 0); // same items, so the difference sums to zero
  } finally {
    rmSync(root, { recursive: true });
  }
});
