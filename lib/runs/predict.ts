/**
 * A trained run's best model on its data: load the model with the run's class names, re-derive the split it was
 * evaluated on (same decode size, transform, validation split and caps, from the recorded dataset root), check
 * the data's fingerprint, and predict.
 */
import type * as tfl from "@tensorflow/tfjs-layers";
import { existsSync } from "node:fs";
import { basename } from "node:path";
import { CLASSES } from "../data/classes.ts";
import type { Split } from "../data/dataset.ts";
import { evaluate } from "../eval/evaluate.ts";
import type { PredictionRow } from "../eval/predictions.ts";
import { loadCheckpoint } from "../models/checkpoint.ts";
import { runTransform, type TrainConfig } from "../train/config.ts";
import { retrainCommand } from "../train/experiments.ts";
import { makeLoss } from "../train/losses.ts";
import { checkFingerprint, loadRunDataset, runDataRoot, runSplits, splitsFingerprint } from "./data.ts";
import { predictionRows, readConfig, readTestReport } from "./files.ts";
import { resolveRunDir, RunError, runPaths } from "./paths.ts";

/** The run's saved config over the defaults. */
export function loadRunConfig(runDir: string): TrainConfig {
  return readConfig(runPaths(runDir));
}

/**
 * The class names of a run, in label order: those its best checkpoint records, else its test report's, else
 * the seven FER2013 classes (runs made before either was recorded).
 */
export function runClasses(runDir: string, metadata: Record<string, unknown> = {}): string[] {
  if (Array.isArray(metadata.classes)) return metadata.classes as string[];
  const report = readTestReport(runPaths(runDir));
  return report?.report?.classes ? [...report.report.classes] : [...CLASSES];
}

/** The run's best model (TF.js layers checkpoint) with its class names; the caller disposes the model. */
export async function loadRunModel(runDir: string): Promise<{ model: tfl.LayersModel; classes: string[] }> {
  const paths = runPaths(runDir);
  const path = paths.best + "/model.json";
  if (!existsSync(path)) {
    const report = readTestReport(paths);
    if (!report) throw new RunError(`${path} not found: the run has no best checkpoint yet`);
    // a finished run whose folder came without its weights (a clone: run folders are committed without them)
    const cpu = report.cpu_seconds ? `, ${(report.cpu_seconds / 3600).toFixed(1)} CPU-hours` : "";
    throw new RunError(
      `${runDir} has finished (test accuracy ${report.test_accuracy.toFixed(4)}${cpu}) but its weights are ` +
        `not here (no ${path}; run folders are committed without weights). To get the model, train its recipe ` +
        `again: ${retrainCommand(readConfig(paths), `${basename(runDir)}-again`)}`,
    );
  }
  const ck = await loadCheckpoint(path);
  return { model: ck.model, classes: runClasses(runDir, ck.info.metadata) };
}

/** Options for {@link runSplit} and {@link predictRun}. */
export type RunDataOptions = {
  /** Dataset root to read instead of the recorded one (`--data`); it must hold the same data. */
  data?: string;
};

/** What {@link runSplit} returns. */
export type RunSplitResult = {
  split: Split;
  /** The dataset root read. */
  root: string;
  /** The dataset's class names. */
  classes: string[];
  /** "match": the data are those the run recorded; "unrecorded": the run recorded no fingerprint to check. */
  data: "match" | "unrecorded";
};

/**
 * The run's test split, or its validation split (re-derived from the training folder with the run's seed), read
 * from the recorded dataset root (or `opts.data`). Throws {@link RunError} when the data differ from the run's.
 */
export async function runSplit(
  runDir: string,
  which: "test" | "val",
  opts: RunDataOptions = {},
): Promise<RunSplitResult> {
  const paths = runPaths(runDir);
  const cfg = readConfig(paths);
  const ds = await loadRunDataset(cfg, { override: opts.data, configPath: paths.config });
  const root = runDataRoot(cfg, opts.data);
  const splits = runSplits(cfg, ds);
  checkFingerprint(cfg, splitsFingerprint(splits), { configPath: paths.config, root, action: "evaluate" });
  return {
    split: which === "test" ? splits.test : splits.val,
    root,
    classes: ds.classes,
    data: cfg.dataFingerprint ? "match" : "unrecorded",
  };
}

/** What {@link predictRun} returns. */
export type RunPredictions = {
  runDir: string;
  cfg: TrainConfig;
  /** The run's class names (label order). */
  classes: string[];
  rows: PredictionRow[];
} & Pick<RunSplitResult, "root" | "data">;

/**
 * Predicts a split with a run's best model: one row per image (label, prediction, probabilities). The data are
 * checked against the run's fingerprint, and the class names are the run's.
 */
/** Refuses data whose class folders differ from the classes the run's model was trained on. */
export function checkRunClasses(
  runDir: string,
  root: string,
  dataClasses: string[],
  classes: string[],
): void {
  if (dataClasses.join(",") !== classes.join(",")) {
    throw new RunError(
      `${root}: its classes [${dataClasses.join(", ")}] differ from the run's [${classes.join(", ")}] ` +
        `(${runPaths(runDir).best}/model.json)`,
    );
  }
}

export async function predictRun(
  run: string,
  which: "test" | "val" = "test",
  opts: RunDataOptions = {},
): Promise<RunPredictions> {
  const runDir = resolveRunDir(run);
  const cfg = loadRunConfig(runDir);
  const { split, root, classes: dataClasses, data } = await runSplit(runDir, which, opts);
  const { model, classes } = await loadRunModel(runDir);
  try {
    checkRunClasses(runDir, root, dataClasses, classes);
    const r = await evaluate(model, split, runTransform(cfg), makeLoss({ kind: "ce" }), cfg.batchSize, true);
    return {
      runDir,
      cfg,
      classes,
      rows: predictionRows(split, r.preds!, r.probs!, classes.length, root),
      root,
      data,
    };
  } finally {
    model.dispose();
  }
}
