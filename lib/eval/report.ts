/**
 * A run folder as Markdown: what was trained, the per-epoch history table, the test report and the totals.
 * Used by `deno task report <run>` to paste a run's results (e.g. into the README) without retyping numbers.
 */
import { existsSync } from "node:fs";
import {
  type HistoryRow,
  readConfig,
  readHistory,
  readTestReport,
  RunError,
  runPaths,
} from "../runs/runs.ts";

/** A Markdown table of the history. */
export function historyTable(rows: HistoryRow[]): string {
  const head = "| epoch | train loss | train acc | val loss | val acc | lr | seconds | img/s |";
  const sep = "| ----- | ---------- | --------- | -------- | ------- | -- | ------- | ----- |";
  const body = rows.map((r) =>
    `| ${r.epoch} | ${r.train_loss.toFixed(4)} | ${r.train_acc.toFixed(4)} | ${r.val_loss.toFixed(4)} | ` +
    `${r.val_acc.toFixed(4)} | ${r.lr.toExponential(2)} | ${r.seconds.toFixed(0)} | ${r.img_s.toFixed(0)} |`
  );
  return [head, sep, ...body].join("\n");
}

/** The whole run as Markdown. */
export function runMarkdown(runDir: string): string {
  const paths = runPaths(runDir);
  const cfg = readConfig(paths);
  const history = readHistory(paths);
  const summary = readTestReport(paths);
  if (!summary) throw new RunError(`${paths.testReportJson} not found (has the run finished its test?)`);
  const reportPath = paths.testReportTxt;
  const reportText = existsSync(reportPath) ? Deno.readTextFileSync(reportPath).trimEnd() : "";
  const seconds = history.reduce((s, r) => s + r.seconds, 0);
  const what = `${cfg.experiment} (${cfg.model}${cfg.preset ? `, ${cfg.preset} preset` : ""}): ` +
    `${cfg.inputSize}×${cfg.inputSize}×${cfg.channels}, batch ${cfg.batchSize}, AdamW lr ${cfg.lr} ` +
    `(weight decay ${cfg.weightDecay}), cosine T_max ${cfg.tMax}, ${cfg.epochs} epochs max, patience ` +
    `${cfg.patience}, loss ${cfg.loss}, seed ${cfg.seed}` +
    (cfg.maxTrainImages ? `, training subset ${cfg.maxTrainImages} images` : "");
  return [
    what,
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
    `${summary.report.macro_avg.f1.toFixed(4)}`,
  ].join("\n");
}
