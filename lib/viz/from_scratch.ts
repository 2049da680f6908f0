/**
 * The steps of notebooks/06_from_scratch.ipynb, so its cells stay one or two lines: find (or, in smoke mode,
 * train) the runs the parameter cell names, choose the test-time augmentation on validation, evaluate the
 * chosen single model and the ensemble once on test, and put them beside the study's and the JavaScript
 * models' numbers.
 */
import { existsSync } from "node:fs";
import { CLASSES } from "../data/dataset.ts";
import type { TtaMode } from "../data/views.ts";
import { classificationReport, confusionMatrix } from "../eval/metrics.ts";
import type { RunSummary } from "../eval/compare.ts";
import { STUDY_RESULTS, studyLabel } from "../eval/study.ts";
import { chooseThenTestEnsemble } from "../eval/ensemble.ts";
import type { PredictionRow } from "../eval/predictions.ts";
import { JS_MODEL_RESULTS } from "../eval/references.ts";
import { chosenTta, evaluateRunTta, runPredictions, type TtaSpec, valTtaAccuracies } from "../eval/tta.ts";
import { loadRunConfig, readHistory, runDirFor, runPaths, RUNS_DIR } from "../runs/runs.ts";
import { experimentConfig, retrainCommand, withEpochs, withSeed } from "../train/experiments.ts";
import type { TrainConfig } from "../train/config.ts";
import { trainInNotebook } from "./notebook.ts";
import { print } from "./display.ts";
import { accuracyVsCpuHoursPlot } from "./plots.ts";

/** A run folder: a path, or a name under checkpoints/. */
function runPath(run: string): string {
  return /[\\/]/.test(run) || existsSync(runPaths(run).config) ? run : runDirFor(RUNS_DIR, run);
}

/** True when the run exists and has finished (its test report is written). */
export function runFinished(run: string): boolean {
  return existsSync(runPaths(runPath(run)).testReportJson);
}

/**
 * A run a notebook wants: its folder name and how it is trained (the experiment's preset, another seed, epochs,
 * the training steps' arithmetic).
 */
export type WantedRun = {
  run: string;
  experiment: string;
  seed?: number;
  epochs?: number;
  precision?: TrainConfig["precision"];
};

/**
 * The command that trains a wanted run with the default preset, e.g.
 * `deno task train vgg_fer --preset cpu --seed 1 --epochs 60 --precision bfloat16 --run NAME`
 * (lib/train/experiments.ts `retrainCommand`).
 */
export function trainCommand(w: WantedRun): string {
  let cfg = experimentConfig(w.experiment);
  if (w.seed !== undefined) cfg = withSeed(cfg, w.seed);
  if (w.precision) cfg = { ...cfg, precision: w.precision };
  return retrainCommand(withEpochs(cfg, w.epochs).cfg, w.run);
}

/**
 * The wanted runs, one per experiment and seed: what a smoke run keeps of a recipe (its preset fixes the epochs,
 * and the arithmetic is float32 there), so the others would train the same tiny run again.
 */
export function distinctRecipes(wanted: WantedRun[]): WantedRun[] {
  const seen = new Set<string>();
  return wanted.filter((w) => {
    const key = `${w.experiment}|${w.seed ?? ""}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/**
 * The run folders for the notebook: each named run when it has finished; in smoke mode (CI), a fresh smoke run
 * of each named experiment (and seed; the smoke preset's epochs) instead (the named long runs are not there).
 * Missing runs are listed with the command that trains them; the result holds only the finished ones.
 */
export async function notebookRuns(wanted: WantedRun[], smoke: boolean): Promise<string[]> {
  if (smoke) {
    const out: string[] = [];
    for (const w of distinctRecipes(wanted)) {
      const cfg = experimentConfig(w.experiment, "smoke");
      out.push((await trainInNotebook(w.seed === undefined ? cfg : withSeed(cfg, w.seed))).runDir);
    }
    return out;
  }
  const found: string[] = [];
  for (const w of wanted) {
    if (runFinished(w.run)) found.push(runPath(w.run));
    else {
      await print(
        `run ${w.run} has not finished: train it with \`${trainCommand(w)}\` ` +
          `(resume with \`deno task train --resume ${w.run}\`)`,
      );
    }
  }
  return found;
}

/** The recipe of each run as table rows (the settings that differ between recipes). */
export function recipeRows(runDirs: string[]): Record<string, string | number>[] {
  return runDirs.map((d) => {
    const c = loadRunConfig(d);
    return {
      run: d.split("/").pop()!,
      model: c.model,
      input: c.cropFrom ? `${c.inputSize} px crops of ${c.cropFrom}` : `${c.inputSize} px`,
      optimizer: c.optimizer === "sgd" ? `SGD Nesterov lr ${c.lr}` : `AdamW lr ${c.lr}`,
      schedule: c.schedule === "warmup_cosine"
        ? `warm-up ${c.warmupEpochs} + cosine ${c.tMax} ep`
        : `cosine ${c.tMax}`,
      "weight decay": c.weightDecay,
      loss: c.loss === "label_smoothing" ? `label smoothing ${c.labelSmoothing}` : c.loss,
      erasing: c.erasing ? `p ${c.erasing.p ?? 0.5}` : "none",
      mixup: c.mixupAlpha ? `α ${c.mixupAlpha}` : "none",
    };
  });
}

/** Validation accuracy against cumulative CPU-hours, epoch by epoch (the accuracy-per-CPU-hour curve). */
export function cpuHoursRows(runDir: string): Record<string, string | number>[] {
  const history = readHistory(runPaths(runDir));
  return history.map((r) => ({
    epoch: r.epoch,
    "CPU-hours": r.cpu_total_s === undefined ? "–" : Number((r.cpu_total_s / 3600).toFixed(3)),
    "wall hours": r.wall_total_s === undefined ? "–" : Number((r.wall_total_s / 3600).toFixed(3)),
    "val accuracy": r.val_acc,
  }));
}

/**
 * Validation accuracy against cumulative CPU-hours for every run, one line each, with the single-model target of
 * 0.70 and the best JavaScript model's test accuracy as dashed references (test figures, for scale: the curve is
 * validation).
 */
export function cpuHoursPlot(runDirs: string[]): string {
  const series = runDirs.map((d) => ({
    run: d.split("/").pop()!,
    points: readHistory(runPaths(d)).flatMap((r) =>
      r.cpu_total_s === undefined ? [] : [{ cpuHours: r.cpu_total_s / 3600, valAcc: r.val_acc }]
    ),
  }));
  const js = JS_MODEL_RESULTS.reduce((a, b) => (b.accuracy > a.accuracy ? b : a));
  return accuracyVsCpuHoursPlot(series, {
    references: [
      { label: "0.70: the single-model target (test)", value: 0.7 },
      { label: `${js.accuracy.toFixed(3)}: ${js.model} (test)`, value: js.accuracy },
    ],
  });
}

/**
 * The TTA chosen on validation for a run, by the rule `--tta auto` uses (lib/eval/tta.ts `chosenTta`): each of
 * `modes` the run supports that has no validation predictions yet is evaluated first and written where
 * `deno task evaluate <run> --split val --tta <mode>` writes it. `rows` are the validation accuracies compared
 * (`none`: the best epoch's); the test split is not touched here.
 */
export async function chooseTta(
  runDir: string,
  modes: TtaMode[],
): Promise<{ rows: { mode: TtaMode; "val accuracy": number | null }[]; best: TtaSpec }> {
  const cfg = loadRunConfig(runDir);
  const usable = modes.filter((m) => m !== "none" && (cfg.cropFrom || (m !== "5crop" && m !== "10crop")));
  const evaluated = new Set(valTtaAccuracies(runDir).map((r) => r.mode));
  for (const mode of usable) {
    if (!evaluated.has(mode)) await evaluateRunTta(runDir, "val", { mode, average: "prob" });
  }
  const rows = valTtaAccuracies(runDir)
    .filter((r) => modes.includes(r.mode))
    .map((r) => ({ mode: r.mode, "val accuracy": r.valAccuracy }));
  const { mode, average } = chosenTta(runDir);
  return { rows, best: { mode, average } };
}

/** A run's (or ensemble's) test predictions as a comparison summary (lib/eval/compare.ts). */
export function summaryOf(name: string, runDir: string, rows: PredictionRow[]): RunSummary {
  const y = rows.map((r) => r.label);
  const p = rows.map((r) => r.pred);
  return {
    name,
    runDir,
    experiment: name,
    preset: "",
    rows,
    report: classificationReport(y, p, [...CLASSES]),
    confusion: confusionMatrix(y, p, CLASSES.length),
  };
}

/**
 * Test predictions of a run with the chosen TTA: the file `deno task evaluate <run> --tta auto` wrote when there
 * is one (the final model's one test evaluation), else that evaluation, written to the same file
 * (lib/eval/tta.ts `runPredictions`).
 */
export async function testWithTta(runDir: string, tta: TtaSpec): Promise<PredictionRow[]> {
  return (await runPredictions(runDir, "test", tta)).rows;
}

/**
 * The ensemble: each run's TTA chosen on validation first ({@link chooseTta} over `modes`), then the members
 * chosen among the runs on validation (every subset of at least two, each member with its own TTA;
 * lib/eval/ensemble.ts), then test once with those members. `tried` lists every subset's validation accuracy,
 * best first; `tta` each member's mode.
 */
export async function ensembleValThenTest(
  runDirs: string[],
  modes: TtaMode[],
  name: string,
): Promise<
  {
    val: number;
    test: PredictionRow[];
    dir: string;
    members: string[];
    tta: string;
    tried: Record<string, string | number>[];
  }
> {
  const own = new Map<string, TtaMode>();
  for (const r of runDirs) own.set(r.split("/").pop()!, (await chooseTta(r, modes)).best.mode);
  const c = await chooseThenTestEnsemble(runDirs, { tta: "auto", name });
  const members = c.chosen.map((d) => d.split("/").pop()!);
  return {
    val: c.val.accuracy,
    test: c.test.rows,
    dir: c.test.dir,
    members,
    tta: members.map((m) => `${m}: ${own.get(m)}`).join(", "),
    tried: c.tried.map((t) => ({ members: t.members.join(" + "), "val accuracy": t.accuracy })),
  };
}

/** Our models beside the study's published numbers and the JavaScript models measured elsewhere. */
export function comparisonRows(ours: RunSummary[]): Record<string, string | number>[] {
  return [
    ...ours.map((s) => ({
      model: s.name,
      source: "this toolkit, trained from scratch here (test split)",
      accuracy: s.report.accuracy,
      "macro F1": s.report.macro_avg.f1,
      "fear F1": s.report.per_class.fear.f1,
      "sad F1": s.report.per_class.sad.f1,
      "disgust F1": s.report.per_class.disgust.f1,
    })),
    ...STUDY_RESULTS.map((s) => ({
      model: studyLabel(s),
      source: "published by the study (ImageNet weights, 224 px, early-stopped on test)",
      accuracy: s.accuracy,
      "macro F1": s.macroF1,
      "fear F1": s.perClassF1?.fear ?? "–",
      "sad F1": s.perClassF1?.sad ?? "–",
      "disgust F1": s.perClassF1?.disgust ?? "–",
    })),
    ...JS_MODEL_RESULTS.map((j) => ({
      model: j.model,
      source: j.source,
      accuracy: j.accuracy,
      "macro F1": j.macroF1 ?? "–",
      "fear F1": "–",
      "sad F1": "–",
      "disgust F1": "–",
    })),
  ];
}

/** The results paragraph, generated from the runs (no number is typed in the notebook). */
/**
 * The accuracies this notebook aims at without ImageNet weights: a single model at the study's pretrained level
 * (`lib/eval/study.ts`) and an ensemble above it, as the from-scratch literature reports (single
 * models ~0.72–0.73, ensembles ~+2.5 points).
 */
export const TARGETS = { single: 0.70, ensemble: 0.73 } as const;

/** The study's published test accuracies as a range, e.g. "69.7–72.3 %". */
function studyRange(): string {
  const acc = STUDY_RESULTS.map((r) => 100 * r.accuracy);
  return `${Math.min(...acc).toFixed(1)}–${Math.max(...acc).toFixed(1)} %`;
}

/** "met (+1.23 points)" or "not met (0.45 points short)". */
function against(accuracy: number, target: number): string {
  const d = (100 * Math.abs(accuracy - target)).toFixed(2);
  return accuracy >= target ? `met (+${d} points)` : `not met (${d} points short)`;
}

export function resultsText(
  single: { name: string; plain: RunSummary; tta: RunSummary; ttaLabel: string } | null,
  ensemble: { name: string; summary: RunSummary; members: number } | null,
): string {
  if (!single) return "No finished run yet: train the runs named in the parameter cell, then re-execute.";
  const pct = (v: number) => `${(100 * v).toFixed(2)} %`;
  const best = JS_MODEL_RESULTS.reduce((a, b) => (b.accuracy > a.accuracy ? b : a));
  const s = single.tta.report;
  const lines = [
    `Single model ${single.name}: test accuracy ${pct(single.plain.report.accuracy)} without TTA, ` +
    `${pct(s.accuracy)} with ${single.ttaLabel} (macro-F1 ${s.macro_avg.f1.toFixed(4)}; F1 fear ` +
    `${s.per_class.fear.f1.toFixed(3)}, sad ${s.per_class.sad.f1.toFixed(3)}, disgust ` +
    `${s.per_class.disgust.f1.toFixed(3)}).`,
    `The best JavaScript model measured elsewhere (${best.model}) reaches ${
      pct(best.accuracy)
    }: the single ` +
    `model is ${s.accuracy > best.accuracy ? "above" : "below"} it by ` +
    `${(100 * Math.abs(s.accuracy - best.accuracy)).toFixed(2)} points.`,
    `Target for one model trained here from scratch, ≥ ${pct(TARGETS.single)} (the study reached ` +
    `${studyRange()} with ImageNet weights): ${against(s.accuracy, TARGETS.single)}.`,
  ];
  if (ensemble) {
    const e = ensemble.summary.report;
    lines.push(
      `Ensemble of ${ensemble.members} runs (${ensemble.name}): test accuracy ${pct(e.accuracy)}, macro-F1 ` +
        `${e.macro_avg.f1.toFixed(4)} (F1 fear ${e.per_class.fear.f1.toFixed(3)}, sad ` +
        `${e.per_class.sad.f1.toFixed(3)}, disgust ${e.per_class.disgust.f1.toFixed(3)}); target ≥ ` +
        `${pct(TARGETS.ensemble)}: ${against(e.accuracy, TARGETS.ensemble)}.`,
    );
  } else {
    lines.push(
      `Ensemble target, ≥ ${
        pct(TARGETS.ensemble)
      }: no ensemble yet (it needs at least two finished runs of the ` +
        "parameter cell).",
    );
  }
  const missed = s.accuracy < TARGETS.single || !ensemble ||
    ensemble.summary.report.accuracy < TARGETS.ensemble;
  if (missed) {
    lines.push(
      "What more training would give: the validation accuracy against CPU-hours chart above, per run.",
    );
  }
  return lines.join("\n");
}
