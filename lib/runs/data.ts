/**
 * The data of a run: where it lives (the root a run records, relative to the project when inside it), the
 * train/val/test splits it sees (stratified validation split and seeded caps, derived from its config), and the
 * fingerprint check that keeps evaluation and resume on exactly the data the run was trained on.
 */
import { existsSync } from "node:fs";
import { isAbsolute, join, relative, resolve } from "node:path";
import {
  cap,
  dataIdentity,
  type Dataset,
  loadDataset,
  resolveDataRoot,
  type Split,
  trainValSplit,
} from "../data/dataset.ts";
import type { TrainConfig } from "../train/config.ts";
import { PROJECT_ROOT } from "../util/project.ts";
import { RunError } from "./paths.ts";

/** How a run records a dataset root: relative to the project when inside it (portable), else absolute. */
export function recordedRoot(root: string): string {
  const abs = resolve(root);
  const rel = relative(PROJECT_ROOT, abs);
  return rel && !rel.startsWith("..") && !isAbsolute(rel) ? rel : abs;
}

/** The absolute dataset root a recorded root names (relative roots are relative to the project). */
export function recordedRootPath(recorded: string): string {
  return isAbsolute(recorded) ? recorded : join(PROJECT_ROOT, recorded);
}

/**
 * The dataset root a run reads: `override` (a `--data` argument, relative to the working directory) when given,
 * else the root the run recorded, else the default ($FER2013_DIR, data/fer2013, the committed sample).
 */
export function runDataRoot(cfg: Pick<TrainConfig, "dataRoot">, override?: string): string {
  if (override) return resolve(override);
  if (cfg.dataRoot) return recordedRootPath(cfg.dataRoot);
  return resolveDataRoot().root;
}

/** The splits a run sees. */
export type RunSplits = { train: Split; val: Split; test: Split };

/**
 * The train/val/test splits of a run: its validation split held out of the training folder (stratified, seeded)
 * and each split capped as its config says (a seeded random subset), both with `splitSeed` (default `seed`).
 */
export function runSplits(cfg: TrainConfig, data: { train: Split; test: Split }): RunSplits {
  const seed = cfg.splitSeed ?? cfg.seed;
  const split = trainValSplit(data.train, { valFraction: cfg.valFraction, seed });
  return {
    train: cap(split.train, cfg.maxTrainImages, seed),
    val: cap(split.val, cfg.maxEvalImages, seed),
    test: cap(data.test, cfg.maxEvalImages, seed),
  };
}

/**
 * The settings that, with the data, decide a run's validation images: the held-out fraction, the seed of the
 * split (`splitSeed`, else `seed`) and the cap. Runs with equal descriptions on the same data validate on the
 * same images (what an ensemble chosen on validation needs).
 */
export function describeValSplit(
  cfg: Pick<TrainConfig, "valFraction" | "seed" | "splitSeed" | "maxEvalImages">,
) {
  return `${+(cfg.valFraction * 100).toFixed(4)} % of train, split seed ${cfg.splitSeed ?? cfg.seed}` +
    (cfg.maxEvalImages ? `, capped at ${cfg.maxEvalImages} images` : "");
}

/** The fingerprint of a run's splits (lib/data/dataset.ts `dataIdentity`: file names, labels and pixels). */
export function splitsFingerprint(s: RunSplits): string {
  return dataIdentity([s.train, s.val, s.test]);
}

/**
 * Throws a {@link RunError} when `fingerprint` differs from the one the run recorded, naming the config file, the
 * dataset root that was read and the remedy. A run that recorded none passes.
 */
export function checkFingerprint(
  cfg: Pick<TrainConfig, "dataFingerprint" | "dataRoot" | "run">,
  fingerprint: string,
  ctx: { configPath: string; root: string; action: string },
): void {
  if (!cfg.dataFingerprint || cfg.dataFingerprint === fingerprint) return;
  const recorded = cfg.dataRoot ? recordedRootPath(cfg.dataRoot) : "the default dataset";
  throw new RunError(
    `cannot ${ctx.action} ${cfg.run ?? ""}: the data differ from those it was trained on ` +
      `(${ctx.configPath} records data ${cfg.dataFingerprint.slice(0, 12)} from ${recorded}; ` +
      `${ctx.root} holds ${fingerprint.slice(0, 12)}); point --data at the original dataset`,
  );
}

/**
 * Loads a run's dataset from {@link runDataRoot} (`override`, else the recorded root, else the default, resolved
 * by loadDataset). A missing folder is a {@link RunError} naming it and the remedy.
 */
export async function loadRunDataset(
  cfg: Pick<TrainConfig, "dataRoot" | "dataSize">,
  opts: { override?: string; configPath: string; verbose?: boolean },
): Promise<Dataset> {
  const explicit = opts.override ?? cfg.dataRoot;
  const root = explicit ? runDataRoot(cfg, opts.override) : undefined;
  if (root && !existsSync(root)) {
    throw new RunError(
      `dataset folder ${root} not found (${opts.override ? "--data" : `recorded in ${opts.configPath}`}); ` +
        `pass --data DIR with the dataset this run was trained on`,
    );
  }
  return await loadDataset({ root, size: cfg.dataSize, channels: 1, verbose: opts.verbose ?? false });
}
