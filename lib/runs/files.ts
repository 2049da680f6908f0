/**
 * Reading and writing the run folder's plain files: config.json, history.json/.csv, test_report.json/.txt and
 * predictions CSVs. Every write is atomic (lib/util/fs.ts); every read error names the file.
 */
import { existsSync, readdirSync, rmSync } from "node:fs";
import { isAbsolute, join, relative, resolve, sep } from "node:path";
import type { Split } from "../data/dataset.ts";
import type { ClassificationReport } from "../eval/metrics.ts";
import type { PredictionRow } from "../eval/predictions.ts";
import { DEFAULT_CONFIG, type TrainConfig } from "../train/config.ts";
import { writeAtomicSync } from "../util/fs.ts";
import { RunError, type RunPaths } from "./paths.ts";

/** One row of the training history (one epoch). */
export type HistoryRow = {
  epoch: number;
  train_loss: number;
  train_acc: number;
  val_loss: number;
  val_acc: number;
  lr: number;
  seconds: number;
  img_s: number;
  /** Process CPU seconds of this epoch (training and validation). */
  cpu_s?: number;
  /** Run totals up to the end of this epoch over all sessions (wall and process CPU seconds). */
  wall_total_s?: number;
  cpu_total_s?: number;
};

/** test_report.json: the best model's result on the test split. */
export type TestReport = {
  run: string;
  experiment: string;
  model: string;
  best_epoch: number;
  best_val_acc: number;
  stopped: string;
  message: string;
  test_loss: number;
  test_accuracy: number;
  sample_data: boolean;
  /** Run totals over all sessions: wall and process CPU seconds, and the number of sessions (absent in runs
   * made before cost accounting). */
  wall_seconds?: number;
  cpu_seconds?: number;
  sessions?: number;
  report: ClassificationReport;
  confusion_matrix: number[][];
};

function readJson<T>(path: string): T {
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch (e) {
    const why = e instanceof Deno.errors.NotFound
      ? "file not found (has the run finished an epoch / its test?)"
      : (e as Error).message;
    throw new RunError(`${path}: ${why}`);
  }
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    throw new RunError(`${path}: not valid JSON (${(e as Error).message})`);
  }
}

const json = (v: unknown) => JSON.stringify(v, null, 2) + "\n";

/** The run's saved config over the defaults (fields added since the run was made take their defaults). */
export function readConfig(paths: RunPaths): TrainConfig {
  return { ...DEFAULT_CONFIG, ...readJson<Partial<TrainConfig>>(paths.config) };
}

/** Writes config.json. */
export function writeConfig(paths: RunPaths, cfg: TrainConfig): void {
  writeAtomicSync(paths.config, json(cfg));
}

const HISTORY_COLUMNS: (keyof HistoryRow)[] = [
  "epoch",
  "train_loss",
  "train_acc",
  "val_loss",
  "val_acc",
  "lr",
  "seconds",
  "img_s",
  "cpu_s",
  "wall_total_s",
  "cpu_total_s",
];

/** Writes history.json and history.csv. */
export function writeHistory(paths: RunPaths, history: HistoryRow[]): void {
  writeAtomicSync(paths.historyJson, json(history));
  const lines = [
    HISTORY_COLUMNS.join(","),
    ...history.map((r) => HISTORY_COLUMNS.map((k) => r[k] ?? "").join(",")),
  ];
  writeAtomicSync(paths.historyCsv, lines.join("\n") + "\n");
}

/** history.json. */
export function readHistory(paths: RunPaths): HistoryRow[] {
  return readJson<HistoryRow[]>(paths.historyJson);
}

/**
 * Sets aside the history of a run whose resume state is gone (its weights lost, e.g. with the machine they were
 * on): history.json and history.csv are renamed to history.lost[-n].json/.csv, so the epochs and CPU time they
 * record stay on file while the run trains again from epoch 1. Returns the number of epochs set aside (0: no
 * history, nothing renamed) and the new name of history.json.
 */
export function setAsideLostHistory(paths: RunPaths): { epochs: number; file: string | null } {
  const history = existsSync(paths.historyJson) ? readHistory(paths) : [];
  if (!history.length) return { epochs: 0, file: null };
  const dir = paths.dir;
  let n = 0;
  const name = (ext: string) => join(dir, `history.lost${n ? `-${n}` : ""}.${ext}`);
  while (existsSync(name("json")) || existsSync(name("csv"))) n++;
  const file = name("json");
  Deno.renameSync(paths.historyJson, file);
  if (existsSync(paths.historyCsv)) Deno.renameSync(paths.historyCsv, name("csv"));
  return { epochs: history.length, file };
}

/** The best epoch's validation accuracy (no TTA) from history.json, or null when the run has no epoch yet. */
export function bestValAccuracy(paths: RunPaths): number | null {
  const history = existsSync(paths.historyJson) ? readHistory(paths) : [];
  return history.length ? Math.max(...history.map((r) => r.val_acc)) : null;
}

/** Writes test_report.json and test_report.txt. */
export function writeTestReport(paths: RunPaths, report: TestReport, text: string): void {
  writeAtomicSync(paths.testReportJson, json(report));
  writeAtomicSync(paths.testReportTxt, text + "\n");
}

/** test_report.json, or null when the run has none yet. */
export function readTestReport(paths: RunPaths): TestReport | null {
  return existsSync(paths.testReportJson) ? readJson<TestReport>(paths.testReportJson) : null;
}

/**
 * Prediction rows of a split: path (relative to the dataset `root` when given and inside it), label, predicted
 * class and the `c` class probabilities of each image.
 */
export function predictionRows(
  split: Split,
  preds: Int32Array,
  probs: Float32Array,
  c: number,
  root?: string,
): PredictionRow[] {
  // paths relative to the dataset root (portable: committed run folders name no machine's folders)
  const base = root ? resolve(root) : null;
  const shown = (p: string) => {
    if (!base) return p;
    const rel = relative(base, resolve(p));
    return rel.startsWith("..") || isAbsolute(rel) ? p : rel.split(sep).join("/");
  };
  return Array.from(preds, (pred, i) => ({
    path: shown(split.paths[i]),
    label: split.labels[i],
    pred,
    probs: Array.from(probs.subarray(i * c, (i + 1) * c)),
  }));
}

/**
 * Removes the predictions that `evaluate` derived from an earlier best model: `predictions_val.csv` and every
 * `predictions[_val]_tta-<mode>[-logit].csv` (lib/runs/paths.ts `predictionsPath`), so that a TTA is never chosen
 * (lib/eval/tta.ts `chosenTta`) or a test file reused from a model the run no longer holds. Called by the
 * training loop whenever it saves a new best model. Returns the names removed.
 */
export function removeDerivedPredictions(paths: RunPaths): string[] {
  if (!existsSync(paths.dir)) return [];
  const derived = readdirSync(paths.dir).filter((f) =>
    f === "predictions_val.csv" || /^predictions(_val)?_tta-[A-Za-z0-9]+(-logit)?\.csv$/.test(f)
  );
  for (const f of derived) rmSync(join(paths.dir, f), { force: true });
  return derived;
}
