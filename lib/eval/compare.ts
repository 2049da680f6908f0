/**
 * Comparing runs (notebooks/05_comparison.ipynb): accuracy and macro-F1 with bootstrap intervals, per-class F1,
 * McNemar tests on the shared test images, confusion-matrix differences, and the original study's numbers.
 */
import { CLASSES } from "../data/classes.ts";
import { type ClassificationReport, classificationReport, confusionMatrix } from "./metrics.ts";
import type { ClassF1, MetricEstimate } from "../viz/plots.ts";
import { type PredictionRow, readPredictionsCsv } from "./predictions.ts";
import { bootstrapCI, mcnemar } from "./stats.ts";
import { readConfig, runPaths } from "../runs/runs.ts";

import { STUDY_RESULTS, studyLabel } from "./study.ts";

/** A run loaded for comparison. */
export type RunSummary = {
  name: string;
  runDir: string;
  experiment: string;
  preset: string;
  rows: PredictionRow[];
  report: ClassificationReport;
  confusion: number[][];
};

/** Loads a run's config and test predictions (predictions.csv). `name` defaults to its experiment. */
export function loadRunSummary(runDir: string, name?: string): RunSummary {
  const paths = runPaths(runDir);
  const cfg = readConfig(paths);
  const { rows } = readPredictionsCsv(paths.predictions);
  const y = rows.map((r) => r.label);
  const p = rows.map((r) => r.pred);
  // an ensemble folder (lib/eval/ensemble.ts) names its members and TTA instead of a training setting
  const ens = cfg as unknown as { kind?: string; members?: { run: string }[]; tta_description?: string };
  return {
    name: name ?? cfg.experiment,
    runDir,
    experiment: cfg.experiment,
    preset: ens.kind === "ensemble"
      ? `ensemble of ${ens.members?.map((m) => m.run).join(" + ")}; TTA ${ens.tta_description ?? "none"}`
      : [
        ...(cfg.preset ? [`${cfg.preset} preset`] : []),
        `${cfg.inputSize}px`,
        ...(cfg.maxTrainImages === null ? [] : [`${cfg.maxTrainImages} train imgs`]),
        // whether ImageNet weights were used, for the models the study fine-tuned (not for the FER CNN)
        // a JS peer (lib/peers): weights as its authors trained them
        ...(typeof cfg.model === "string" && cfg.model.startsWith("peer:") ? ["its authors' weights"] : []),
        ...(typeof cfg.model !== "string" || cfg.model.startsWith("fer_cnn") ||
            cfg.model.startsWith("peer:") ||
            typeof cfg.pretrained !== "boolean"
          ? []
          : [cfg.pretrained ? "ImageNet init" : "random init"]),
      ].join(", "),
    rows,
    report: classificationReport(y, p, [...CLASSES]),
    confusion: confusionMatrix(y, p, CLASSES.length),
  };
}

/** Accuracy and macro-F1 with bootstrap 95% intervals per run, plus the study's published values as references. */
export function metricEstimates(
  runs: RunSummary[],
  opts: { resamples?: number; seed?: number } = {},
): MetricEstimate[] {
  const out: MetricEstimate[] = [];
  for (const r of runs) {
    const ci = bootstrapCI(r.rows.map((x) => x.label), r.rows.map((x) => x.pred), CLASSES.length, opts);
    out.push({
      model: r.name,
      metric: "accuracy",
      value: ci.accuracy.estimate,
      lo: ci.accuracy.lower,
      hi: ci.accuracy.upper,
    });
    out.push({
      model: r.name,
      metric: "macro F1",
      value: ci.macro_f1.estimate,
      lo: ci.macro_f1.lower,
      hi: ci.macro_f1.upper,
    });
  }
  for (const s of STUDY_RESULTS) {
    out.push({ model: studyLabel(s), metric: "accuracy", value: s.accuracy, lo: NaN, hi: NaN });
    out.push({ model: studyLabel(s), metric: "macro F1", value: s.macroF1, lo: NaN, hi: NaN });
  }
  return out;
}

/** Per-class F1 of every run, plus the study's published per-class F1s (ConvNeXt-Tiny). */
export function perClassF1Rows(runs: RunSummary[], withStudy = true): ClassF1[] {
  const rows: ClassF1[] = runs.flatMap((r) =>
    CLASSES.map((c) => ({ model: r.name, class: c, f1: r.report.per_class[c].f1 }))
  );
  if (withStudy) {
    for (const s of STUDY_RESULTS) {
      if (s.perClassF1) {
        for (const c of CLASSES) rows.push({ model: studyLabel(s), class: c, f1: s.perClassF1[c] });
      }
    }
  }
  return rows;
}

/** McNemar's test for every pair of runs on the test images both predicted (matched by path). */
export function pairwiseMcNemar(runs: RunSummary[]): Record<string, string | number>[] {
  const out: Record<string, string | number>[] = [];
  for (let i = 0; i < runs.length; i++) {
    for (let j = i + 1; j < runs.length; j++) {
      const a = new Map(runs[i].rows.map((r) => [r.path, r]));
      const shared = runs[j].rows.filter((r) => a.has(r.path));
      const label = shared.map((r) => r.label);
      const m = mcnemar(label, shared.map((r) => a.get(r.path)!.pred), shared.map((r) => r.pred));
      out.push({
        "run A": runs[i].name,
        "run B": runs[j].name,
        images: shared.length,
        "only A right": m.b,
        "only B right": m.c,
        statistic: Number(m.statistic.toFixed(3)),
        "p-value": formatPValue(m.pValue),
        method: m.method,
      });
    }
  }
  return out;
}

/** A p-value as text with one rule for every size: `< 0.0001` below 1e-4, else four decimals. */
export function formatPValue(p: number): string {
  if (!Number.isFinite(p)) return "n/a";
  return p < 1e-4 ? "< 0.0001" : p.toFixed(4);
}

/** Confusion-matrix difference B − A (counts) as table rows: true class per row, predicted per column. */
export function confusionDifference(a: RunSummary, b: RunSummary): Record<string, string | number>[] {
  return CLASSES.map((c, i) => ({
    "true \\ pred": c,
    ...Object.fromEntries(CLASSES.map((p, j) => [p, b.confusion[i][j] - a.confusion[i][j]])),
  }));
}
