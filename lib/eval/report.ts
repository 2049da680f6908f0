/**
 * A run folder as Markdown: what was trained, the per-epoch history table, the test report and the totals.
 * Used by `deno task report <run>` to paste a run's results (e.g. into the README) without retyping numbers.
 */
import { existsSync } from "node:fs";
import { basename } from "node:path";
import {
  type HistoryRow,
  readConfig,
  readHistory,
  readTestReport,
  RunError,
  runPaths,
} from "../runs/runs.ts";

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
  ];
  return `${cfg.experiment} (${cfg.model}${cfg.preset ? `, ${cfg.preset} preset` : ""}): ` +
    `${input}, batch ${cfg.batchSize}, ${opt} ` +
    `(weight decay ${cfg.weightDecay}), ${sched}, ${cfg.epochs} epochs max, patience ` +
    `${cfg.patience}, loss ${cfg.loss}, seed ${cfg.seed}` +
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
