/**
 * Test-time augmentation: a run's model applied to several deterministic views of each image (the centre crop
 * and its mirror, torchvision's five_crop or ten_crop; lib/data/views.ts `ttaViews`), the views' outputs
 * averaged (lib/eval/combine.ts) — softmax probabilities (`prob`, the default) or logits (`logit`, then one
 * softmax). Used by `deno task evaluate|predict --tta`, the ensembles (lib/eval/ensemble.ts) and the notebooks.
 */
import { existsSync } from "node:fs";
import * as tf from "@tensorflow/tfjs-core";
import type * as tfl from "@tensorflow/tfjs-layers";
import { makeTransforms, type Transform } from "../data/augment.ts";
import { TTA_MODES, type TtaMode, ttaViews } from "../data/views.ts";
import { averageViews, NO_TTA, type TtaAverage, type TtaSpec } from "./combine.ts";
import { batches, type Split } from "../data/dataset.ts";
import {
  bestValAccuracy,
  checkRunClasses,
  loadRunConfig,
  loadRunModel,
  predictionRows,
  predictionsPath,
  predictRun,
  resolveRunDir,
  runClasses,
  type RunDataOptions,
  runPaths,
  type RunPredictions,
  runSplit,
} from "../runs/runs.ts";
import { fileAccuracy, type PredictionRow, readPredictionsCsv, writePredictionsCsv } from "./predictions.ts";
import type { TrainConfig } from "../train/config.ts";
import { forInference } from "../models/fold.ts";

export type { TtaAverage, TtaSpec };

/** Parses `none|hflip|5crop|10crop` and `prob|logit`; a clear error otherwise. */
export function parseTta(mode: string, average = "prob"): TtaSpec {
  if (!(TTA_MODES as readonly string[]).includes(mode)) {
    throw new RangeError(`--tta must be one of ${TTA_MODES.join(", ")}, got "${mode}"`);
  }
  if (average !== "prob" && average !== "logit") {
    throw new RangeError(`--tta-average must be prob or logit, got "${average}"`);
  }
  return { mode: mode as TtaMode, average };
}

/** A short label for reports: `none`, or e.g. `10crop (probabilities averaged over 10 views)`. */
export function describeTta(t: TtaSpec, views = ttaViewCount(t.mode)): string {
  if (t.mode === "none") return "none (single centre view)";
  return `${t.mode} (${t.average === "prob" ? "probabilities" : "logits"} averaged over ${views} views)`;
}

function ttaViewCount(mode: TtaMode): number {
  return { none: 1, hflip: 2, "5crop": 5, "10crop": 10 }[mode];
}

/**
 * One evaluation transform per view of `mode` for a run's config. Crop-trained runs (`cropFrom`) get crops of the
 * `cropFrom` image; other runs only `none` and `hflip` (their input is the whole image, there is nothing to
 * crop). `none` equals the run's plain evaluation transform.
 */
export function ttaTransforms(cfg: TrainConfig, mode: TtaMode): Transform[] {
  const from = cfg.cropFrom ?? cfg.inputSize;
  if (cfg.cropFrom == null && (mode === "5crop" || mode === "10crop")) {
    throw new RangeError(
      `${mode} TTA needs a run trained on crops (cropFrom in its config.json); this run sees whole ` +
        `${cfg.inputSize} px images — use --tta hflip`,
    );
  }
  return ttaViews(mode, from, cfg.inputSize).map((view) =>
    makeTransforms({
      size: [cfg.inputSize, cfg.inputSize],
      channels: cfg.channels,
      mean: cfg.mean,
      std: cfg.std,
      train: false,
      ...(cfg.cropFrom != null ? { cropFrom: cfg.cropFrom } : {}),
      view,
    })
  );
}

/** Index of the largest value in each row of `n·c` probabilities (first on ties, as numpy's argmax). */
export function argmaxRows(probs: Float32Array, c: number): Int32Array {
  const n = probs.length / c;
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let k = 1; k < c; k++) if (probs[i * c + k] > probs[i * c + best]) best = k;
    out[i] = best;
  }
  return out;
}

/** A model's TTA probabilities on a split (`n·c`, in split order), in eval mode, batch by batch. */
export function predictWithTta(
  model: tfl.LayersModel,
  split: Split,
  transforms: Transform[],
  average: TtaAverage,
  batchSize = 64,
): Float32Array {
  const c = model.outputs[0].shape[1] as number;
  const n = split.labels.length;
  const probs = new Float32Array(n * c);
  let at = 0;
  const inf = forInference(model); // batch norms folded on CPU backends (lib/models/fold.ts)
  try {
    for (const { x, y } of batches(split, { batchSize, shuffle: false })) {
      const views = transforms.map((t) =>
        tf.tidy(() => (inf.model.apply(t(x), { training: false }) as tf.Tensor).dataSync() as Float32Array)
      );
      probs.set(averageViews(views, c, average), at * c);
      at += y.shape[0];
      tf.dispose([x, y]);
    }
  } finally {
    inf.release();
  }
  return probs;
}

/**
 * A run's predictions on a split with TTA (one row per image, probabilities averaged as `tta` says), on the data
 * the run recorded (or `opts.data`, checked against the run's fingerprint), as lib/runs/predict.ts `predictRun`.
 */
export async function predictRunTta(
  run: string,
  which: "test" | "val",
  tta: TtaSpec,
  opts: RunDataOptions = {},
): Promise<RunPredictions> {
  const runDir = resolveRunDir(run);
  const cfg = loadRunConfig(runDir);
  const transforms = ttaTransforms(cfg, tta.mode);
  const { split, root, classes: dataClasses, data } = await runSplit(runDir, which, opts);
  const { model, classes } = await loadRunModel(runDir);
  try {
    checkRunClasses(runDir, root, dataClasses, classes);
    const probs = predictWithTta(model, split, transforms, tta.average, cfg.batchSize);
    const c = classes.length;
    const rows = predictionRows(split, argmaxRows(probs, c), probs, c, root);
    return { runDir, cfg, classes, rows, root, data };
  } finally {
    model.dispose();
  }
}

/**
 * The validation accuracy of each TTA mode evaluated for a run: `none` is the best epoch's own (its history),
 * every other mode that `deno task evaluate <run> --split val --tta <mode>` (or {@link evaluateRunTta}) has
 * evaluated is read from its `predictions_val_tta-<mode>.csv`. Cheapest mode first; reads no test file.
 */
export function valTtaAccuracies(runDir: string): { mode: TtaMode; valAccuracy: number | null }[] {
  const out: { mode: TtaMode; valAccuracy: number | null }[] = [
    { mode: "none", valAccuracy: accuracyUnder(runDir, "val", NO_TTA) },
  ];
  for (const m of TTA_MODES.filter((m) => m !== "none")) {
    const acc = accuracyUnder(runDir, "val", { mode: m, average: "prob" });
    if (acc !== null) out.push({ mode: m, valAccuracy: acc });
  }
  return out;
}

/**
 * The TTA chosen on validation for a run: among the modes {@link valTtaAccuracies} lists, the one with the best
 * validation accuracy. Ties keep the cheaper mode. The test split plays no part. Probabilities averaged, as
 * `evaluate` does by default.
 */
export function chosenTta(
  runDir: string,
): { mode: TtaMode; average: TtaAverage; valAccuracy: number | null } {
  return { ...bestOf(valTtaAccuracies(runDir)), average: "prob" };
}

/** The mode with the best validation accuracy; ties keep the earlier (cheaper) one, none measured gives `none`. */
function bestOf(
  rows: { mode: TtaMode; valAccuracy: number | null }[],
): { mode: TtaMode; valAccuracy: number | null } {
  let best: { mode: TtaMode; valAccuracy: number | null } = { mode: "none", valAccuracy: null };
  for (const r of rows) {
    if (r.valAccuracy !== null && (best.valAccuracy === null || r.valAccuracy > best.valAccuracy)) best = r;
  }
  return best;
}

/**
 * The TTA chosen on validation among `modes`, by {@link chosenTta}'s rule (best validation accuracy, ties to the
 * cheaper mode): each of `modes` the run supports (five and ten crops need a crop-trained run) that has no
 * validation predictions yet is evaluated first — which needs the run's best model — and written where
 * `deno task evaluate <run> --split val --tta <mode>` writes it. `rows` are the validation accuracies compared
 * (`none`: the best epoch's); the test split is not touched.
 */
export async function chooseTta(
  runDir: string,
  modes: TtaMode[],
): Promise<{ rows: { mode: TtaMode; "val accuracy": number | null }[]; best: TtaSpec }> {
  const cfg = loadRunConfig(runDir);
  const usable = modes.filter((m) => m !== "none" && (cfg.cropFrom || (m !== "5crop" && m !== "10crop")));
  const evaluated = new Set(valTtaAccuracies(runDir).map((r) => r.mode));
  for (const mode of usable) {
    if (!evaluated.has(mode)) await evaluateRunTta(runDir, "val", { mode, average: "prob" });
  }
  const compared = valTtaAccuracies(runDir).filter((r) => modes.includes(r.mode));
  return {
    rows: compared.map((r) => ({ mode: r.mode, "val accuracy": r.valAccuracy })),
    best: { mode: bestOf(compared).mode, average: "prob" },
  };
}

/**
 * A run's accuracy on `split` under `tta`, from the files its evaluations wrote: validation without TTA is its
 * best epoch's (the history), anything else the predictions file of that split and TTA; null when not measured.
 */
export function accuracyUnder(runDir: string, split: "test" | "val", tta: TtaSpec): number | null {
  const paths = runPaths(runDir);
  if (split === "val" && tta.mode === "none") return bestValAccuracy(paths);
  return fileAccuracy(predictionsPath(paths, split, tta.mode, tta.average), runClasses(runDir));
}

/**
 * The model to use on new faces among `runDirs`: the run with the best validation accuracy under its own chosen
 * TTA ({@link chosenTta}), with that TTA. Chosen on validation only; runs without a history are left out, ties
 * keep the earlier run, and null means no run is left. (Validation accuracies compare like with like when the
 * runs share their split: the same split seed and validation fraction, as every preset and `--seed` keep.)
 */
export function bestOnValidation(
  runDirs: string[],
): { runDir: string; tta: TtaSpec; valAccuracy: number } | null {
  let best: { runDir: string; tta: TtaSpec; valAccuracy: number } | null = null;
  for (const runDir of runDirs) {
    const { mode, average, valAccuracy } = chosenTta(runDir);
    if (valAccuracy !== null && (best === null || valAccuracy > best.valAccuracy)) {
      best = { runDir, tta: { mode, average }, valAccuracy };
    }
  }
  return best;
}

/**
 * A run's predictions on a split under `tta` (`none`: the run's evaluation transform alone), written where
 * `deno task evaluate` writes them (`predictionsPath`) when the data match the run's fingerprint; `written`
 * is then that file, else null (the data cannot be checked against the run's, so its files stay untouched).
 */
export async function evaluateRunTta(
  run: string,
  which: "test" | "val",
  tta: TtaSpec,
  opts: RunDataOptions = {},
): Promise<RunPredictions & { written: string | null }> {
  const res = tta.mode === "none"
    ? await predictRun(run, which, opts)
    : await predictRunTta(run, which, tta, opts);
  const out = predictionsPath(runPaths(res.runDir), which, tta.mode, tta.average);
  if (res.data !== "match") return { ...res, written: null };
  writePredictionsCsv(out, res.rows, res.classes);
  return { ...res, written: out };
}

/**
 * A run's predictions of a split under `tta`, as `deno task evaluate` writes them: read from that file when it
 * is there — the run's model is then not needed, and committed run folders carry their predictions but not
 * their weights — else evaluated and written ({@link evaluateRunTta}). A file read here belongs to the model the
 * run holds: the training loop removes a run's derived predictions whenever its best model changes. `opts.data`
 * (other data than the run recorded) always evaluates.
 */
export async function runPredictions(
  run: string,
  which: "test" | "val",
  tta: TtaSpec,
  opts: RunDataOptions = {},
): Promise<{ runDir: string; cfg: TrainConfig; classes: string[]; rows: PredictionRow[]; read: boolean }> {
  const runDir = resolveRunDir(run);
  const file = predictionsPath(runPaths(runDir), which, tta.mode, tta.average);
  if (opts.data === undefined && existsSync(file)) {
    const classes = runClasses(runDir);
    return {
      runDir,
      cfg: loadRunConfig(runDir),
      classes,
      rows: readPredictionsCsv(file, { classes }).rows,
      read: true,
    };
  }
  const r = await evaluateRunTta(run, which, tta, opts);
  return { runDir: r.runDir, cfg: r.cfg, classes: r.classes, rows: r.rows, read: false };
}

/** A TTA a command will apply, and where it came from (for the printed line and the export's metadata). */
export type ResolvedTta = TtaSpec & {
  /** `validation`: `auto`, the run's choice on validation ({@link chosenTta}); `given`: named by the user. */
  source: "validation" | "given";
  /** Validation accuracy of the choice, when `source` is `validation` and the run has a history. */
  valAccuracy: number | null;
};

/**
 * `--tta MODE` for a run: `auto` is the mode chosen on validation ({@link chosenTta}), any other value is parsed
 * by {@link parseTta}. The mode is checked against the run (five and ten crops need a crop-trained run).
 */
export function resolveTta(runDir: string, mode: string, average = "prob"): ResolvedTta {
  let spec: ResolvedTta;
  if (mode === "auto") {
    const chosen = chosenTta(runDir);
    const { average: how } = parseTta("none", average);
    spec = { mode: chosen.mode, average: how, source: "validation", valAccuracy: chosen.valAccuracy };
  } else if ((TTA_MODES as readonly string[]).includes(mode)) {
    spec = { ...parseTta(mode, average), source: "given", valAccuracy: null };
  } else {
    throw new RangeError(`--tta must be auto or one of ${TTA_MODES.join(", ")}, got "${mode}"`);
  }
  ttaTransforms(loadRunConfig(runDir), spec.mode); // throws for crops on a whole-image run
  return spec;
}

/** One line for a command's output: `TTA hflip (chosen on validation: 71.25 %, probabilities averaged)`. */
export function describeResolvedTta(t: ResolvedTta): string {
  const how = t.average === "prob" ? "probabilities averaged" : "logits averaged";
  if (t.source === "given") return `TTA ${t.mode}${t.mode === "none" ? "" : ` (${how})`}`;
  const acc = t.valAccuracy === null ? "" : `: ${(100 * t.valAccuracy).toFixed(2)} %`;
  return `TTA ${t.mode} (chosen on validation${acc}${t.mode === "none" ? "" : `, ${how}`})`;
}
