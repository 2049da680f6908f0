/**
 * A run folder as Markdown: what was trained, the per-epoch history table, the test report and the totals.
 * Used by `deno task report <run>` to paste a run's results (e.g. into the README) without retyping numbers.
 */
import { existsSync } from "node:fs";
import { basename } from "node:path";
import {
  type HistoryRow,
  predictionsPath,
  readConfig,
  readHistory,
  readTestReport,
  runClasses,
  RunError,
  runPaths,
} from "../runs/runs.ts";
import type { TtaMode } from "../data/views.ts";
import { modelParams } from "../models/registry.ts";
import { classificationReport } from "./metrics.ts";
import { fileAccuracy, readPredictionsCsv } from "./predictions.ts";
import { chosenTta } from "./tta.ts";
import { ensembleMembers } from "./ensemble.ts";

/**
 * A Markdown table of the history. Runs that record CPU time (every run since the cost accounting, see
 * lib/train/loop.ts) get a column with the run's cumulative CPU-hours at the end of each epoch — the x axis of
 * an accuracy-vs-CPU-hours curve.
 */
export function historyTable(rows: HistoryRow[]): string {
  const cpu = rows.length > 0 && rows.every((r) => r.cpu_total_s !== undefined);
  const head = "| epoch | train loss | train acc | val loss | val acc | lr | seconds | img/s |" +
    (cpu ? " CPU-h (total) |" : "");
  const sep = "| ----- | ---------- | --------- | -------- | ------- | -- | ------- | ----- |" +
    (cpu ? " ------------- |" : "");
  const body = rows.map((r) =>
    `| ${r.epoch} | ${r.train_loss.toFixed(4)} | ${r.train_acc.toFixed(4)} | ${r.val_loss.toFixed(4)} | ` +
    `${r.val_acc.toFixed(4)} | ${r.lr.toExponential(2)} | ${r.seconds.toFixed(0)} | ${r.img_s.toFixed(0)} |` +
    (cpu ? ` ${(r.cpu_total_s! / 3600).toFixed(2)} |` : "")
  );
  return [head, sep, ...body].join("\n");
}

/** Wall time and CPU time of a run over all its sessions (test_report.json, else the last history row). */
export function runCost(
  history: HistoryRow[],
  summary: { wall_seconds?: number; cpu_seconds?: number; sessions?: number },
): { wallHours: number; cpuHours: number; sessions: number | null } | null {
  const last = history.at(-1);
  const wall = summary.wall_seconds ?? last?.wall_total_s;
  const cpu = summary.cpu_seconds ?? last?.cpu_total_s;
  if (wall === undefined || cpu === undefined) return null;
  return { wallHours: wall / 3600, cpuHours: cpu / 3600, sessions: summary.sessions ?? null };
}

/**
 * The whole run as Markdown. A run still in training (a history but no test report yet) gets its history, its
 * progress (epochs done of its budget, best validation accuracy so far), its cost so far and how to resume.
 */
export function runMarkdown(runDir: string): string {
  const paths = runPaths(runDir);
  const cfg = readConfig(paths);
  const history = readHistory(paths);
  const summary = readTestReport(paths);
  if (!summary) {
    if (!history.length) {
      throw new RunError(`${paths.testReportJson} not found (has the run finished its test?)`);
    }
    return inProgressMarkdown(runDir, cfg, history);
  }
  const reportPath = paths.testReportTxt;
  const reportText = existsSync(reportPath) ? Deno.readTextFileSync(reportPath).trimEnd() : "";
  const seconds = history.reduce((s, r) => s + r.seconds, 0);
  const cost = runCost(history, summary);
  return [
    describeConfig(cfg),
    "",
    historyTable(history),
    "",
    "```",
    reportText,
    "```",
    "",
    `${summary.stopped}; ${history.length} epochs, sum of epoch times ${
      (seconds / 60).toFixed(1)
    } min; best ` +
    `epoch ${summary.best_epoch}; test accuracy ${summary.test_accuracy.toFixed(4)}, macro-F1 ` +
    `${summary.report.macro_avg.f1.toFixed(4)}` +
    (cost
      ? `\n\ncost: wall time ${cost.wallHours.toFixed(2)} h, CPU time ${cost.cpuHours.toFixed(2)} CPU-hours` +
        (cost.sessions ? ` over ${cost.sessions} session${cost.sessions === 1 ? "" : "s"}` : "") +
        " (data loading, training, validation and the test evaluation)"
      : ""),
  ].join("\n");
}

/** One line saying what was trained: model, input, batch, optimizer, schedule, budget, loss, extras. */
function describeConfig(cfg: ReturnType<typeof readConfig>): string {
  const opt = cfg.optimizer === "sgd"
    ? `SGD${cfg.nesterov ?? true ? " Nesterov" : ""} momentum ${cfg.momentum ?? 0.9} lr ${cfg.lr}`
    : `AdamW lr ${cfg.lr}`;
  const sched = cfg.schedule === "warmup_cosine"
    ? `warm-up ${cfg.warmupEpochs ?? 0} epochs + per-step cosine over ${cfg.tMax} epochs`
    : `cosine T_max ${cfg.tMax}`;
  const input = cfg.cropFrom
    ? `${cfg.inputSize}×${cfg.inputSize}×${cfg.channels} crops of ${cfg.cropFrom}`
    : `${cfg.inputSize}×${cfg.inputSize}×${cfg.channels}`;
  const extras = [
    ...(cfg.erasing ? [`random erasing p ${cfg.erasing.p ?? 0.5}`] : []),
    ...(cfg.mixupAlpha ? [`mixup α ${cfg.mixupAlpha}`] : []),
    ...(cfg.precision === "bfloat16" ? ["bfloat16 convolutions and dense layers in training"] : []),
  ];
  return `${cfg.experiment} (${cfg.model}${cfg.preset ? `, ${cfg.preset} preset` : ""}): ` +
    `${input}, batch ${cfg.batchSize}, ${opt} ` +
    `(weight decay ${cfg.weightDecay}), ${sched}, ${cfg.epochs} epochs max, patience ` +
    `${cfg.patience}, loss ${cfg.loss}, seed ${cfg.seed}` +
    (cfg.splitSeed !== undefined && cfg.splitSeed !== cfg.seed
      ? ` (validation split of seed ${cfg.splitSeed})`
      : "") +
    (cfg.maxTrainImages ? `, training subset ${cfg.maxTrainImages} images` : "") +
    (extras.length ? `, ${extras.join(", ")}` : "");
}

/** A run that has not finished: history, progress, cost so far and the resume command. */
function inProgressMarkdown(
  runDir: string,
  cfg: ReturnType<typeof readConfig>,
  history: HistoryRow[],
): string {
  const best = history.reduce((a, b) => (b.val_acc > a.val_acc ? b : a));
  const cost = runCost(history, {});
  const run = basename(runDir);
  return [
    describeConfig(cfg),
    "",
    historyTable(history),
    "",
    `in progress: ${history.length} of at most ${cfg.epochs} epochs done; best validation accuracy so far ` +
    `${best.val_acc.toFixed(4)} (epoch ${best.epoch}); no test evaluation yet` +
    (cost
      ? `\n\ncost so far: wall time ${cost.wallHours.toFixed(2)} h, CPU time ${
        cost.cpuHours.toFixed(2)
      } CPU-hours`
      : "") +
    `\n\nresume: deno task train --resume ${run}`,
  ].join("\n");
}

/** One row of {@link resultsTable}: a run's recipe, size, cost and accuracy with and without TTA. */
export type ResultRow = {
  run: string;
  recipe: string;
  params: number | null;
  /** Median training images per second over the epochs (wall clock; threads as the run had them). */
  imgPerS: number | null;
  cpuHours: number | null;
  epochs: string;
  valAcc: number | null;
  /**
   * The TTA chosen on validation (the mode with the best validation accuracy among those evaluated); for an
   * ensemble its members' mode, `auto` when each member has its own.
   */
  tta: TtaMode | "auto";
  /** With `auto`: each member's own mode, in member order (the table shows them). */
  memberTta?: string[];
  valAccTta: number | null;
  testAcc: number | null;
  testAccTta: number | null;
  /** Macro-F1 on test of the final choice (with the chosen TTA when its test predictions exist). */
  testMacroF1: number | null;
};

/**
 * A run's row for the results table. Validation accuracy without TTA is the best epoch's; with TTA it is read
 * from the `predictions_val_tta-<mode>.csv` files `deno task evaluate <run> --split val --tta <mode>` wrote,
 * and the mode with the best validation accuracy is the chosen one; its test accuracy comes from
 * `predictions_tta-<mode>.csv` when that test evaluation was made. An ensemble folder (lib/eval/ensemble.ts)
 * reports its members, their summed CPU-hours and its own TTA.
 */
export function resultRow(runDir: string): ResultRow {
  const paths = runPaths(runDir);
  const raw = JSON.parse(Deno.readTextFileSync(paths.config)) as Record<string, unknown>;
  const summary = readTestReport(paths);
  const run = basename(runDir);
  if (raw.kind === "ensemble") {
    const members = raw.members as { run: string; tta?: { mode: TtaMode } }[];
    // one mode for every member, or `auto` (each member's own choice on validation)
    const tta = raw.tta === "auto" ? "auto" : (raw.tta as { mode: TtaMode }).mode;
    let costs: (ReturnType<typeof runCost> | null)[] = [null]; // a member's run folder missing: no cost
    try {
      costs = ensembleMembers(runDir).map((m) =>
        runCost(readHistory(runPaths(m.dir)), readTestReport(runPaths(m.dir)) ?? {})
      );
    } catch (e) {
      if (!(e instanceof RunError)) throw e;
    }
    const valFile = paths.valReportJson;
    const val = existsSync(valFile)
      ? JSON.parse(Deno.readTextFileSync(valFile)).test_accuracy as number
      : null;
    return {
      run,
      recipe: `ensemble of ${members.map((m) => m.run).join(" + ")}`,
      params: null,
      imgPerS: null,
      cpuHours: costs.every((c) => c) ? costs.reduce((s, c) => s + c!.cpuHours, 0) : null,
      epochs: "–",
      valAcc: null,
      tta,
      ...(tta === "auto" ? { memberTta: members.map((m) => m.tta?.mode ?? "?") } : {}),
      valAccTta: val,
      testAcc: null,
      testAccTta: summary?.test_accuracy ?? null,
      testMacroF1: summary?.report.macro_avg.f1 ?? null,
    };
  }
  const cfg = readConfig(paths);
  const history = readHistory(paths);
  const best = history.length ? history.reduce((a, b) => (b.val_acc > a.val_acc ? b : a)) : null;
  const rates = history.map((r) => r.img_s).sort((a, b) => a - b);
  const cost = runCost(history, summary ?? {});
  const { mode: tta, valAccuracy: valAccTta } = chosenTta(runDir);
  const ttaTest = tta === "none" ? null : predictionsPath(paths, "test", tta);
  const classes = runClasses(runDir);
  const testAccTta = ttaTest ? fileAccuracy(ttaTest, classes) : summary?.test_accuracy ?? null;
  const finalRows = ttaTest && existsSync(ttaTest) ? readPredictionsCsv(ttaTest, { classes }).rows : null;
  let params: number | null = null;
  try {
    params = modelParams(cfg.model, {
      numClasses: summary?.report ? Object.keys(summary.report.per_class).length : 7,
    });
  } catch {
    params = null; // a model this checkout no longer registers
  }
  return {
    run,
    // the arithmetic is part of the recipe when it is not float32 (lib/train/config.ts `precision`)
    recipe: `${cfg.experiment} (${cfg.preset ?? "custom"}${
      cfg.precision === "bfloat16" ? ", bfloat16" : ""
    })`,
    params,
    imgPerS: rates.length ? rates[Math.floor(rates.length / 2)] : null,
    cpuHours: cost?.cpuHours ?? null,
    epochs: `${history.length}${summary ? "" : ` of ${cfg.epochs}, training`}` +
      (best ? ` (best ${best.epoch})` : ""),
    valAcc: best?.val_acc ?? null,
    tta,
    valAccTta,
    testAcc: summary?.test_accuracy ?? null,
    testAccTta,
    testMacroF1: finalRows
      ? classificationReport(finalRows.map((r) => r.label), finalRows.map((r) => r.pred), [...classes])
        .macro_avg
        .f1
      : summary?.report.macro_avg.f1 ?? null,
  };
}

/**
 * The runs as one Markdown table: recipe → params → img/s → CPU-hours → validation and test accuracy, without
 * and with the TTA chosen on validation (the README's results table, regenerated by
 * `deno task report --table <run>...`).
 */
export function resultsTable(runDirs: string[]): string {
  const f = (v: number | null, d = 4) => (v === null ? "–" : v.toFixed(d));
  const head =
    "| run | recipe | params | img/s | CPU-h | epochs | val acc | TTA (chosen on val) | val acc TTA | " +
    "test acc | test acc TTA | test macro-F1 |";
  const sep = "| --- | --- | ---: | ---: | ---: | --- | ---: | --- | ---: | ---: | ---: | ---: |";
  const body = runDirs.map(resultRow).map((r) =>
    `| ${r.run} | ${r.recipe} | ${r.params === null ? "–" : `${(r.params / 1e6).toFixed(2)} M`} | ` +
    `${f(r.imgPerS, 0)} | ${f(r.cpuHours, 2)} | ${r.epochs} | ${f(r.valAcc)} | ${
      r.memberTta ? `auto (${r.memberTta.join(", ")})` : r.tta
    } | ${f(r.valAccTta)} | ` +
    `${f(r.testAcc)} | ${f(r.testAccTta)} | ${f(r.testMacroF1)} |`
  );
  return [head, sep, ...body].join("\n");
}
