/**
 * Trained runs on disk (`checkpoints/<run>/`): find a run, read its config, load its best model, and predict
 * a split the way training evaluated it (same decode size, eval transform, validation split and caps).
 */
import type * as tfl from "@tensorflow/tfjs-layers";
import { existsSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { makeTransforms, type Transform } from "../data/augment.ts";
import { CLASSES, loadDataset, type Split, trainValSplit } from "../data/dataset.ts";
import { makeLoss } from "../train/losses.ts";
import { loadCheckpoint } from "../models/checkpoint.ts";
import type { PredictionRow } from "../eval/predictions.ts";
import { accuracyCurvesPlot, confusionMatrixPlot, lossCurvesPlot, saveFigure } from "../viz/plots.ts";
import { cap, DEFAULT_CONFIG, evaluate, type TrainConfig } from "../train/loop.ts";

/**
 * The run's transform: evaluation (resize — or the centre crop of crop-trained runs —, channels, normalize) or,
 * with `train`, its augmentation too.
 */
export function runTransform(cfg: TrainConfig, train = false, seed = cfg.seed): Transform {
  return makeTransforms({
    size: [cfg.inputSize, cfg.inputSize],
    channels: cfg.channels,
    mean: cfg.mean,
    std: cfg.std,
    train,
    ...(cfg.cropFrom ? { cropFrom: cfg.cropFrom } : {}),
    ...(train ? { augment: cfg.augment || {}, seed, erasing: cfg.erasing ?? false } : {}),
  });
}

/** A run that cannot be used; the message names the file. */
export class RunError extends Error {
  override name = "RunError";
}

/** The run folder: a path to a folder, or a name under checkpoints/. */
export function resolveRunDir(run: string): string {
  const dir = existsSync(run) && statSync(run).isDirectory()
    ? resolve(run)
    : join(DEFAULT_CONFIG.outDir, run);
  if (!existsSync(join(dir, "config.json"))) {
    throw new RunError(
      `${join(dir, "config.json")} not found (is "${run}" a run folder or a run under checkpoints/?)`,
    );
  }
  return dir;
}

/** The run's saved config over the defaults. */
export function loadRunConfig(runDir: string): TrainConfig {
  const path = join(runDir, "config.json");
  try {
    return { ...DEFAULT_CONFIG, ...JSON.parse(Deno.readTextFileSync(path)) };
  } catch (e) {
    throw new RunError(`${path}: ${(e as Error).message}`);
  }
}

/** The run's best model (TF.js layers checkpoint) with its class names; the caller disposes the model. */
export async function loadRunModel(runDir: string): Promise<{ model: tfl.LayersModel; classes: string[] }> {
  const path = join(runDir, "best", "model.json");
  if (!existsSync(path)) throw new RunError(`${path} not found: the run has no best checkpoint yet`);
  const ck = await loadCheckpoint(path);
  const classes = Array.isArray(ck.info.metadata.classes)
    ? ck.info.metadata.classes as string[]
    : [...CLASSES];
  return { model: ck.model, classes };
}

/** The run's test split, or its validation split (re-derived from the training folder with the run's seed). */
export async function runSplit(cfg: TrainConfig, which: "test" | "val"): Promise<Split> {
  const ds = await loadDataset({
    root: cfg.dataRoot ?? undefined,
    size: cfg.dataSize,
    channels: 1,
    verbose: false,
  });
  const split = which === "test"
    ? ds.test
    : trainValSplit(ds.train, { valFraction: cfg.valFraction, seed: cfg.seed }).val;
  return cap(split, cfg.maxEvalImages, cfg.seed);
}

/** Predicts a split with a run's best model: one row per image (label, prediction, probabilities). */
export async function predictRun(
  run: string,
  which: "test" | "val" = "test",
): Promise<{ runDir: string; cfg: TrainConfig; classes: string[]; rows: PredictionRow[] }> {
  const runDir = resolveRunDir(run);
  const cfg = loadRunConfig(runDir);
  const { model, classes } = await loadRunModel(runDir);
  try {
    const split = await runSplit(cfg, which);
    const transform = runTransform(cfg);
    const loss = makeLoss({ kind: "ce" });
    const r = await evaluate(model, split, transform, loss, cfg.batchSize, true);
    const c = classes.length;
    const rows = Array.from(r.preds!, (pred, i) => ({
      path: split.paths[i],
      label: split.labels[i],
      pred,
      probs: Array.from(r.probs!.subarray(i * c, (i + 1) * c)),
    }));
    return { runDir, cfg, classes, rows };
  } finally {
    model.dispose();
  }
}

/** A run's figures as SVG strings: accuracy and loss curves (history.json), confusion matrix (test_report.json). */
export function runFigures(runDir: string): Record<string, string> {
  const history = JSON.parse(Deno.readTextFileSync(join(runDir, "history.json")));
  const name = runDir.split("/").pop();
  const out: Record<string, string> = {
    accuracy: accuracyCurvesPlot(history, { title: `Train vs val accuracy — ${name}` }),
    loss: lossCurvesPlot(history, { title: `Train vs val loss — ${name}` }),
  };
  const reportPath = join(runDir, "test_report.json");
  if (existsSync(reportPath)) {
    const rep = JSON.parse(Deno.readTextFileSync(reportPath));
    const classes = Object.keys(rep.report.per_class);
    out.confusion = confusionMatrixPlot(rep.confusion_matrix, classes, {
      title: `Confusion matrix (test) — ${name}`,
    });
  }
  return out;
}

/** Saves a run's figures as SVG and PNG into the run folder (`accuracy.svg`, `loss.svg`, `confusion.svg`, …). */
export async function saveRunFigures(runDir: string): Promise<string[]> {
  const saved: string[] = [];
  for (const [k, svg] of Object.entries(runFigures(runDir))) {
    const f = await saveFigure(svg, join(runDir, k), { png: true });
    saved.push(f.svg, ...(f.png ? [f.png] : []));
  }
  return saved;
}
