/**
 * A run folder as Markdown: what was trained, the per-epoch history table, the test report and the totals.
 * Used by `deno task report <run>` to paste a run's results (e.g. into the README) without retyping numbers.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { loadRunConfig, RunError } from "../runs/runs.ts";
import type { HistoryRow } from "../train/loop.ts";

function readJson<T>(path: string): T {
  if (!existsSync(path)) throw new RunError(`${path} not found (has the run finished an epoch / its test?)`);
  try {
    return JSON.parse(Deno.readTextFileSync(path)) as T;
  } catch (e) {
    throw new RunError(`${path}: ${(e as Error).message}`);
  }
}

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
  const cfg = loadRunConfig(runDir);
  const history = readJson<HistoryRow[]>(join(runDir, "history.json"));
  const summary = readJson<
    { best_epoch: number; stopped: string; test_accuracy: number; report: { macro_avg: { f1: number } } }
  >(
    join(runDir, "test_report.json"),
  );
  const reportPath = join(runDir, "test_report.txt");
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
