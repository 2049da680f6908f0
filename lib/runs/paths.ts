/**
 * Where a run's files live: the runs folder, run names (checked so that no name leads outside it), the run
 * folder a CLI argument names, and the name of every file in a run folder.
 */
import { existsSync, statSync } from "node:fs";
import { isAbsolute, join, relative, resolve } from "node:path";
import { PROJECT_ROOT } from "../util/project.ts";

/** The project's `checkpoints/` folder. */
const CHECKPOINTS = join(PROJECT_ROOT, "checkpoints");

/**
 * The default folder holding run folders: `checkpoints/` in the project, or `FER_RUNS_DIR` when set (the
 * notebook runner's smoke mode points it at a temporary folder, so pipeline checks never mix with real runs).
 */
export const RUNS_DIR: string = (() => {
  let env: string | undefined;
  try {
    env = Deno.env.get("FER_RUNS_DIR");
  } catch {
    env = undefined; // no --allow-env: the default
  }
  return env ? resolve(env) : CHECKPOINTS;
})();

/** A run that cannot be used or created; the message names the file or the name and what is wrong. */
export class RunError extends Error {
  override name = "RunError";
}

/** The files of a run folder (absolute paths). */
export type RunPaths = {
  dir: string;
  /** The run's TrainConfig (lib/train/config.ts), written when training starts. */
  config: string;
  /** Per-epoch history (lib/runs/files.ts `HistoryRow`), JSON and CSV. */
  historyJson: string;
  historyCsv: string;
  /** Resume state: weights, AdamW moments and loop state after the last complete epoch (lib/runs/state.ts). */
  last: string;
  /** Best model so far, a TF.js layers checkpoint folder (lib/models/checkpoint.ts). */
  best: string;
  /** Test report of the best model (JSON and text), written once at the end. */
  testReportJson: string;
  testReportTxt: string;
  /** Validation report (same format), written by an ensemble chosen on validation (lib/eval/ensemble.ts). */
  valReportJson: string;
  valReportTxt: string;
  /** Test / validation predictions (lib/eval/predictions.ts format). */
  predictions: string;
  predictionsVal: string;
  /** Files and links the data loader skipped (written by lib/data/dataset.ts `recordSkipped`). */
  skipped: string;
};

/** The paths of every file in the run folder `dir`. */
export function runPaths(dir: string): RunPaths {
  return {
    dir,
    config: join(dir, "config.json"),
    historyJson: join(dir, "history.json"),
    historyCsv: join(dir, "history.csv"),
    last: join(dir, "last.safetensors"),
    best: join(dir, "best"),
    testReportJson: join(dir, "test_report.json"),
    testReportTxt: join(dir, "test_report.txt"),
    valReportJson: join(dir, "val_report.json"),
    valReportTxt: join(dir, "val_report.txt"),
    predictions: join(dir, "predictions.csv"),
    predictionsVal: join(dir, "predictions_val.csv"),
    skipped: join(dir, "skipped.json"),
  };
}

/** True when the run folder holds its best model (`best/model.json`); committed run folders do not (git keeps no weights). */
export function hasBestModel(paths: RunPaths): boolean {
  return existsSync(join(paths.best, "model.json"));
}

/**
 * The predictions CSV of a split under a test-time augmentation: `predictions.csv` / `predictions_val.csv`
 * without TTA (`tta` "none" or absent), `predictions_tta-<mode>.csv` / `predictions_val_tta-<mode>.csv` with it
 * (views' probabilities averaged, the default), `…_tta-<mode>-logit.csv` with logits averaged.
 */
export function predictionsPath(
  paths: RunPaths,
  split: "test" | "val",
  tta = "none",
  average: "prob" | "logit" = "prob",
): string {
  const plain = split === "test" ? paths.predictions : paths.predictionsVal;
  if (tta === "none") return plain;
  return plain.replace(/\.csv$/, `_tta-${tta}${average === "logit" ? "-logit" : ""}.csv`);
}

/**
 * Checks a run name: one folder name (no `/`, `\`, `..`, leading `.` or control characters), so that the run
 * folder stays inside the runs folder. Returns the name; throws {@link RunError} naming the bad name.
 */
export function checkRunName(name: string): string {
  // deno-lint-ignore no-control-regex
  if (!name || /[\\/\x00-\x1f]/.test(name) || name.startsWith(".")) {
    throw new RunError(
      `bad run name ${JSON.stringify(name)}: a run is one folder name under the runs folder ` +
        `(no "/", "\\", leading "." or "..")`,
    );
  }
  return name;
}

/** The folder of run `name` under `outDir` (the name checked by {@link checkRunName}). */
export function runDirFor(outDir: string, name: string): string {
  const dir = join(outDir, checkRunName(name));
  const rel = relative(resolve(outDir), resolve(dir));
  if (!rel || rel.startsWith("..") || isAbsolute(rel)) {
    throw new RunError(`bad run name ${JSON.stringify(name)}`);
  }
  return dir;
}

/** A fresh run name: `<experiment>-<UTC timestamp to the second>`. */
export function newRunName(experiment: string, now = new Date()): string {
  return `${experiment}-${now.toISOString().replace(/[:.]/g, "-").slice(0, 19)}`;
}

/**
 * The run folder a CLI argument names: a path (an existing folder, or anything with a `/`), else a run name
 * under `outDir` (default checkpoints/). Throws {@link RunError} when it has no config.json.
 */
export function resolveRunDir(run: string, outDir = RUNS_DIR): string {
  const isPath = /[\\/]/.test(run) || run === "." || run === ".." ||
    (existsSync(run) && statSync(run).isDirectory());
  const dir = isPath ? resolve(run) : runDirFor(outDir, run);
  const config = runPaths(dir).config;
  if (!existsSync(config)) {
    const under = outDir === CHECKPOINTS ? "checkpoints/" : outDir;
    throw new RunError(`${config} not found (is "${run}" a run folder or a run under ${under}?)`);
  }
  return dir;
}
