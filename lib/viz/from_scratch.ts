/**
 * The steps of notebooks/06_from_scratch.ipynb, so its cells stay one or two lines: find (or, in smoke mode,
 * train) the runs the parameter cell names, choose the test-time augmentation on validation, evaluate the
 * chosen single model and the ensemble once on test, and put them beside the study's and the JavaScript
 * models' numbers.
 */
import { existsSync } from "node:fs";
import { basename } from "node:path";
import { CLASSES } from "../data/dataset.ts";
import type { TtaMode } from "../data/views.ts";
import { classificationReport, confusionMatrix } from "../eval/metrics.ts";
import type { RunSummary } from "../eval/compare.ts";
import { STUDY_RESULTS, studyLabel } from "../eval/study.ts";
import { chooseThenTestEnsemble, type SubsetScore } from "../eval/ensemble.ts";
import { runCost } from "../eval/report.ts";
import type { PredictionRow } from "../eval/predictions.ts";
import { JS_MODEL_RESULTS } from "../eval/references.ts";
import { chooseTta, chosenTta, runPredictions, type TtaSpec } from "../eval/tta.ts";
import { loadRunConfig, readHistory, readTestReport, runDirFor, runPaths, RUNS_DIR } from "../runs/runs.ts";
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
    /** Every subset scored on validation, best first (the input of {@link ensembleBudget}). */
    subsets: SubsetScore[];
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
    subsets: c.tried,
  };
}

/** A fraction as a percentage with two decimals, e.g. "72.40 %". */
const pct = (v: number) => `${(100 * v).toFixed(2)} %`;

/** A single run or an ensemble on the cost curve: its members, their summed CPU-hours, its validation accuracy. */
export type BudgetPoint = { members: string[]; cpuHours: number; valAcc: number };

/**
 * The points that beat every cheaper one: the most validation accuracy each CPU-hour budget buys (a tie goes
 * to the cheaper point).
 */
export function budgetFrontier(points: BudgetPoint[]): BudgetPoint[] {
  const sorted = [...points].sort((a, b) => a.cpuHours - b.cpuHours || b.valAcc - a.valAcc);
  const out: BudgetPoint[] = [];
  for (const p of sorted) if (out.length === 0 || p.valAcc > out.at(-1)!.valAcc) out.push(p);
  return out;
}

/**
 * The cost curve of the ensembles: each run alone (with its TTA chosen on validation) and each subset the
 * ensemble search scored on validation (`subsets`, {@link ensembleValThenTest}), at the summed CPU-hours of its
 * members' training; runs whose CPU-hours were not recorded are left out, with the subsets holding them.
 */
export function ensembleBudget(
  runDirs: string[],
  subsets: SubsetScore[],
): { points: BudgetPoint[]; frontier: BudgetPoint[] } {
  const hours = new Map<string, number>();
  const points: BudgetPoint[] = [];
  for (const dir of runDirs) {
    const paths = runPaths(dir);
    const cost = runCost(readHistory(paths), readTestReport(paths) ?? {});
    const acc = chosenTta(dir).valAccuracy;
    if (cost === null || acc === null) continue;
    const run = basename(dir);
    hours.set(run, cost.cpuHours);
    points.push({ members: [run], cpuHours: cost.cpuHours, valAcc: acc });
  }
  for (const s of subsets) {
    if (!s.members.every((m) => hours.has(m))) continue;
    const cpuHours = s.members.reduce((sum, m) => sum + hours.get(m)!, 0);
    points.push({ members: s.members, cpuHours, valAcc: s.accuracy });
  }
  return { points, frontier: budgetFrontier(points) };
}

/** A straight line through accuracy against log2(CPU-hours): accuracy = intercept + perDoubling · log2(hours). */
export type LogHoursFit = { intercept: number; perDoubling: number; points: number };

/**
 * The least-squares {@link LogHoursFit} of the points with CPU-hours above zero, or null with fewer than two
 * distinct CPU-hour values.
 */
export function fitLogHours(points: BudgetPoint[]): LogHoursFit | null {
  const used = points.filter((p) => p.cpuHours > 0);
  const xs = used.map((p) => Math.log2(p.cpuHours));
  const ys = used.map((p) => p.valAcc);
  const n = xs.length;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  const sxx = xs.reduce((a, x) => a + (x - mx) ** 2, 0);
  if (n < 2 || !(sxx > 1e-12)) return null;
  const perDoubling = xs.reduce((a, x, i) => a + (x - mx) * (ys[i] - my), 0) / sxx;
  return { intercept: my - perDoubling * mx, perDoubling, points: n };
}

/** The CPU-hours at which the fitted line reaches `accuracy`, or null when it does not rise. */
export function hoursFor(fit: LogHoursFit, accuracy: number): number | null {
  return fit.perDoubling > 0 ? 2 ** ((accuracy - fit.intercept) / fit.perDoubling) : null;
}

/** The frontier as table rows. */
export function budgetRows(frontier: BudgetPoint[]): Record<string, string | number>[] {
  return frontier.map((p) => ({
    members: p.members.join(" + "),
    "CPU-hours": Number(p.cpuHours.toFixed(2)),
    "val accuracy": p.valAcc,
  }));
}

/**
 * The frontier against CPU-hours with its fitted line (dashed, drawn on to where it reaches `target` plus the
 * chosen ensemble's validation-to-test drop — the validation accuracy that would mean `target` on test — at
 * most four times the frontier's largest budget), and those two accuracies as references; the y axis spans the
 * points, not 0–100 %, so tenths of a point stay visible.
 */
export function budgetPlot(
  frontier: BudgetPoint[],
  fit: LogHoursFit | null,
  target: number,
  valTestDrop = 0,
): string {
  const maxH = Math.max(...frontier.map((p) => p.cpuHours));
  const aim = target + Math.max(valTestDrop, 0);
  const series = [{ run: "best on validation for the budget", points: frontier }];
  if (fit) {
    const reach = hoursFor(fit, aim);
    const end = Math.min(Math.max(reach ?? maxH, maxH), 4 * maxH);
    const start = Math.min(...frontier.filter((p) => p.cpuHours > 0).map((p) => p.cpuHours));
    const points = Array.from({ length: 25 }, (_, i) => {
      const h = start * (end / start) ** (i / 24);
      return { cpuHours: h, valAcc: fit.intercept + fit.perDoubling * Math.log2(h) };
    });
    series.push({
      run: `fit: ${(100 * fit.perDoubling).toFixed(2)} points per doubling of CPU-hours`,
      points: points.map((p) => ({ members: [], ...p })),
    });
  }
  const references = [{ label: `${pct(target)}: the ensemble target`, value: target }];
  if (aim > target) {
    references.push({ label: `${pct(aim)}: the target plus the validation-to-test drop`, value: aim });
  }
  const accs = series.flatMap((s) => s.points.map((p) => p.valAcc)).concat(aim);
  const lo = Math.floor(Math.min(...accs) * 100 - 0.5) / 100;
  const hi = Math.ceil(Math.max(...accs) * 100 + 0.5) / 100;
  return accuracyVsCpuHoursPlot(
    series.map((s, i) => ({ run: s.run, points: s.points, dashed: i === 1 })),
    {
      title: "Ensembles: validation accuracy per CPU-hour of training",
      xLabel: "CPU-hours (the members' training, summed)",
      yDomain: [lo, hi],
      references,
    },
  );
}

/**
 * What more CPU-hours would buy, in words: the frontier's last step, the fitted rate per doubling and, when the
 * line rises, where it reaches `target` on validation and — with the chosen ensemble's validation-to-test drop
 * `valTestDrop` added — on test. An extrapolation from the points measured, said as one.
 */
export function budgetText(
  frontier: BudgetPoint[],
  fit: LogHoursFit | null,
  target: number,
  valTestDrop: number,
): string {
  const last = frontier.at(-1);
  if (!last) return "No run with recorded CPU-hours: no cost curve.";
  const prev = frontier.at(-2);
  const step = prev
    ? ` (the frontier's last step: +${(100 * (last.valAcc - prev.valAcc)).toFixed(2)} points for ` +
      `+${(last.cpuHours - prev.cpuHours).toFixed(1)} CPU-hours)`
    : "";
  const head = `The most accurate combination on validation, ${last.members.join(" + ")}, costs ` +
    `${last.cpuHours.toFixed(1)} CPU-hours of training for ${pct(last.valAcc)}${step}`;
  if (!fit) return `${head}; too few budgets to fit a trend.`;
  const rate = `Over the ${frontier.length} budgets on the frontier, each doubling of CPU-hours added ` +
    `${(100 * fit.perDoubling).toFixed(2)} points of validation accuracy`;
  const onVal = hoursFor(fit, target);
  const onTest = hoursFor(fit, target + valTestDrop);
  if (onVal === null || onTest === null) {
    return `${head}. ${rate}: the curve no longer rises, so more runs of these recipes will not reach ` +
      `${pct(target)}.`;
  }
  return `${head}. ${rate}; extrapolated at that rate, ${pct(target)} on validation needs about ` +
    `${onVal.toFixed(0)} CPU-hours, and ${pct(target)} on test (the chosen ensemble scored ` +
    `${(100 * Math.abs(valTestDrop)).toFixed(2)} points ${
      valTestDrop >= 0 ? "lower" : "higher"
    } on test than on ` +
    `validation) about ${onTest.toFixed(0)} CPU-hours of members like these — an extrapolation from ` +
    `${fit.points} points, not a measurement.`;
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

/** The results paragraph, generated from the runs (no number is typed in the notebook). */
export function resultsText(
  single: { name: string; plain: RunSummary; tta: RunSummary; ttaLabel: string } | null,
  ensemble: { name: string; summary: RunSummary; members: number } | null,
): string {
  if (!single) return "No finished run yet: train the runs named in the parameter cell, then re-execute.";
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
      "What more training would give: the validation accuracy against CPU-hours charts above, per run and " +
        "for the ensembles.",
    );
  }
  return lines.join("\n");
}
