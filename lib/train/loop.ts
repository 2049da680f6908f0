/**
 * The training loop, written to read top to bottom (in the spirit of nanoGPT's train.py): a plain config
 * object, data, model, optimizer, then a loop of epochs (train, validate, log, early-stop, checkpoint), then one
 * evaluation of the best model on the test split.
 *
 * Validation uses a stratified split of the training folder (`valFraction`), never the test split: the
 * original study early-stopped on test, a leak not repeated here. Test is touched once, at the end.
 *
 * Resume determinism: everything random in an epoch is derived from (seed, epoch) alone — the batch order
 * (`batches(..., seed: mixSeed(seed, epoch))`), the augmentation (`transform(x, [epoch, step])`) and the
 * randomness tfjs draws internally (dropout masks, via `Math.random`, which is replaced by a generator seeded
 * with mixSeed(seed, epoch) for the duration of the epoch). The learning rate is a pure function of the epoch.
 * After each epoch the weights (including BatchNorm statistics), the AdamW state and the loop state (epoch,
 * history, best accuracy, epochs without improvement) are written atomically to `last.safetensors`; a resumed
 * run loads them and continues with the next epoch exactly as an uninterrupted run would. Mixup draws come from
 * (seed, epoch, step) too, and the per-step warm-up + cosine rate is a pure function of the step.
 *
 * Cost accounting: every history row carries the epoch's process CPU seconds (`cpu_s`) and the run's running
 * totals of wall and CPU seconds over all sessions so far (`wall_total_s`, `cpu_total_s`, including data
 * loading and model building; a resumed session adds its own time to the totals of the last saved epoch; time
 * spent on an epoch that a kill interrupted is not counted). test_report.json records the final totals.
 */
import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import { existsSync, mkdirSync } from "node:fs";
import process from "node:process";
import { randomBeta } from "d3-random";
import { join } from "node:path";
import {
  type AugmentOptions,
  type ErasingOptions,
  IMAGENET_MEAN,
  IMAGENET_STD,
  makeTransforms,
  type Transform,
} from "../data/augment.ts";
import {
  batches,
  CLASSES,
  dataIdentity,
  loadDataset,
  PROJECT_ROOT,
  recordSkipped,
  type Split,
  subset,
  trainValSplit,
} from "../data/dataset.ts";
import { inverseFrequencyWeights, type LossFn, makeLoss } from "./losses.ts";
import { classificationReport, confusionMatrix, formatReport } from "../eval/metrics.ts";
import { loadCheckpointWeights, saveCheckpoint } from "../models/checkpoint.ts";
import { createModel, defaultConfig } from "../models/registry.ts";
import { AdamW, cosineAnnealingLr, type Optimizer, SGD, warmupCosineLr } from "./optim.ts";
import { hostBackend } from "../engine/webgpu.ts";
import { formatPredictionsCsv, type PredictionRow } from "../eval/predictions.ts";
import { Progress, type ProgressMode } from "./progress.ts";
import { mixSeed, mulberry32, shuffleInPlace } from "../util/rng.ts";
import { loadPretrained } from "../models/weights/convert.ts";
import {
  readSafetensors,
  type TensorToWrite,
  toFloat32,
  writeSafetensors,
} from "../models/weights/safetensors.ts";

/** Everything a run depends on. Plain values only; saved as config.json in the run folder. */
export type TrainConfig = {
  /** Experiment name (lib/train/experiments.ts) — informational. */
  experiment: string;
  /** Preset the config came from (`paper`, `cpu`, `smoke`), null for hand-made configs — informational. */
  preset?: string | null;
  /**
   * Identity of the train/val/test images the run used (lib/data/dataset.ts `dataIdentity`), set when the run starts;
   * a resume on different data is refused.
   */
  dataFingerprint?: string | null;
  /** Model name for `createModel` (lib/models/registry.ts) and extra options passed to it. */
  model: string;
  modelOptions?: Record<string, unknown>;
  /** Start from timm's ImageNet weights (lib/weights) when the model has them; false: random init. */
  pretrained: boolean;
  /** Model input: square size in pixels and channels (3 = gray expanded, ImageNet-style; 1 = gray). */
  inputSize: number;
  channels: 1 | 3;
  /** Normalize mean/std on the 0..1 scale (per channel, or one value). */
  mean: number[];
  std: number[];
  /** Size the images are decoded to before the transforms (FER2013 is 48×48). */
  dataSize: number;
  batchSize: number;
  /** Maximum number of epochs. */
  epochs: number;
  /** Optimizer: "adamw" (torch AdamW, decoupled decay; default) or "sgd" (torch SGD, coupled L2 decay). */
  optimizer?: "adamw" | "sgd";
  /** Base learning rate and weight decay of the optimizer. */
  lr: number;
  weightDecay: number;
  /** SGD momentum (default 0.9) and Nesterov (default true); ignored by AdamW. */
  momentum?: number;
  nesterov?: boolean;
  /**
   * "cosine" (default): CosineAnnealingLR stepped once per epoch (tMax in epochs; `tMax: 0` keeps the lr
   * constant). "warmup_cosine": per step, linear warm-up over `warmupEpochs` from 1 % of `lr`, then cosine to
   * `etaMin` at the end of epoch `tMax` (lib/train/optim.ts warmupCosineLr).
   */
  schedule?: "cosine" | "warmup_cosine";
  warmupEpochs?: number;
  tMax: number;
  etaMin: number;
  /** Early stopping: epochs without a better validation accuracy before stopping. */
  patience: number;
  /** "ce", "label_smoothing", "weighted_ce" (inverse class frequency of the training split) or "focal". */
  loss: "ce" | "label_smoothing" | "weighted_ce" | "focal";
  labelSmoothing: number;
  focalGamma: number;
  /** Fraction of the training folder held out (stratified) for validation. */
  valFraction: number;
  seed: number;
  /** Augmentation settings (lib/data/augment.ts; study defaults), or false for none. */
  augment: AugmentOptions | false;
  /**
   * Crop-based training (lib/data/augment.ts): images are resized to `cropFrom` and `inputSize` crops taken
   * (random in training, the centre in evaluation); null: resize to `inputSize` (the study's pipeline).
   */
  cropFrom?: number | null;
  /** torchvision RandomErasing in training (after Normalize), or false. */
  erasing?: ErasingOptions | false;
  /** Mixup (Zhang et al. 2018) with Beta(α, α) mixing weights per batch; 0 = off. */
  mixupAlpha?: number;
  /** Cap on training images (seeded random subset), for smoke runs; null for all. */
  maxTrainImages: number | null;
  /** Cap on validation and test images, for smoke runs; null for all. */
  maxEvalImages: number | null;
  /** Dataset root (null: $FER2013_DIR, data/fer2013, else the committed sample). */
  dataRoot: string | null;
  /** Folder holding run folders (default checkpoints/). */
  outDir: string;
  /** Run name (folder under outDir); default `<experiment>-<timestamp>`. */
  run: string | null;
};

/** Defaults for every field (the study's baseline recipe at 224 px). */
export const DEFAULT_CONFIG: TrainConfig = {
  experiment: "custom",
  model: "efficientnet_b3",
  pretrained: true,
  inputSize: 224,
  channels: 3,
  mean: IMAGENET_MEAN,
  std: IMAGENET_STD,
  dataSize: 48,
  batchSize: 64,
  epochs: 20,
  lr: 3e-4,
  weightDecay: 0.01,
  tMax: 10,
  etaMin: 0,
  patience: 2,
  loss: "ce",
  labelSmoothing: 0,
  focalGamma: 2,
  valFraction: 0.1,
  seed: 42,
  augment: {},
  maxTrainImages: null,
  maxEvalImages: null,
  dataRoot: null,
  outDir: join(PROJECT_ROOT, "checkpoints"),
  run: null,
};

/** One row of the training history. */
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

/** What `train` returns. */
export type TrainResult = {
  runDir: string;
  history: HistoryRow[];
  bestEpoch: number;
  bestValAcc: number;
  /** "completed" (all epochs), "early_stopped", or "diverged" (non-finite loss; see `message`). */
  stopped: "completed" | "early_stopped" | "diverged";
  message: string;
  test: { loss: number; accuracy: number; macroF1: number } | null;
};

/** Data for a run: train (split into train/val here) and test. */
export type RunData = { classes: string[]; train: Split; test: Split; sample?: boolean };

/** Hooks for tests and notebooks. */
export type TrainDeps = {
  /** Data to use instead of `loadDataset`. */
  data?: RunData;
  /** Model factory instead of the registry (called under the run's seeded Math.random). */
  createModel?: (cfg: TrainConfig, numClasses: number) => tfl.LayersModel;
  /** Called after each epoch's checkpoint is written (throwing here simulates a kill). */
  onEpochEnd?: (info: { epoch: number; row: HistoryRow; model: tfl.LayersModel }) => void | Promise<void>;
  /** Continue the run in `cfg.run` from its last complete epoch. */
  resume?: boolean;
  /** Progress display mode (default: detected). */
  progress?: ProgressMode;
  /** Log sink (default console.log). */
  log?: (line: string) => void;
};

/** Error for a run that cannot start or continue; the message says why. */
export class TrainError extends Error {
  override name = "TrainError";
}

/** Trains a model as `cfg` says and evaluates the best checkpoint on the test split once. */
export async function train(config: Partial<TrainConfig>, deps: TrainDeps = {}): Promise<TrainResult> {
  const log = deps.log ?? ((s: string) => console.log(s));
  const session = { wall0: performance.now(), cpu0: cpuSeconds() };

  // ---- run folder and config ------------------------------------------------------------------------------
  let cfg: TrainConfig = { ...DEFAULT_CONFIG, ...config };
  const run = cfg.run ?? `${cfg.experiment}-${new Date().toISOString().replace(/[:.]/g, "-").slice(0, 19)}`;
  const runDir = join(cfg.outDir, run);
  const lastPath = join(runDir, "last.safetensors");
  const bestDir = join(runDir, "best");
  let resumeState: LoopState | null = null;
  if (deps.resume) {
    if (!existsSync(join(runDir, "config.json"))) {
      throw new TrainError(`cannot resume: no ${runDir}/config.json`);
    }
    const saved = JSON.parse(Deno.readTextFileSync(join(runDir, "config.json"))) as TrainConfig;
    // The saved config wins; only the epoch budget may be extended on resume.
    cfg = { ...DEFAULT_CONFIG, ...saved, outDir: cfg.outDir, run, epochs: config.epochs ?? saved.epochs };
    if (existsSync(lastPath)) resumeState = JSON.parse((await readSafetensors(lastPath)).metadata!.state);
    else log(`no complete epoch in ${runDir}; starting it from epoch 1`);
  } else if (existsSync(join(runDir, "config.json"))) {
    throw new TrainError(`run folder ${runDir} already exists: pass --resume ${run} or choose another --run`);
  }
  cfg.run = run;

  // ---- data ---------------------------------------------------------------------------------------------
  const data = deps.data ??
    await loadDataset({ root: cfg.dataRoot ?? undefined, size: cfg.dataSize, channels: 1, verbose: true });
  const classes = data.classes;
  const split = trainValSplit(data.train, { valFraction: cfg.valFraction, seed: cfg.seed });
  const trainSet = cap(split.train, cfg.maxTrainImages, cfg.seed);
  const valSet = cap(split.val, cfg.maxEvalImages, cfg.seed);
  const testSet = cap(data.test, cfg.maxEvalImages, cfg.seed);
  log(
    `data: ${trainSet.labels.length} train, ${valSet.labels.length} val, ${testSet.labels.length} test images`,
  );
  const dataId = dataIdentity([trainSet, valSet, testSet]);
  if (resumeState && cfg.dataFingerprint && cfg.dataFingerprint !== dataId) {
    throw new TrainError(
      `cannot resume ${run}: the data differ from those it was trained on (${join(runDir, "config.json")} ` +
        `records data ${cfg.dataFingerprint.slice(0, 12)}, these are ${dataId.slice(0, 12)}); ` +
        `point --data / FER2013_DIR at the original dataset`,
    );
  }
  cfg.dataFingerprint = dataId;
  const shape = { size: [cfg.inputSize, cfg.inputSize] as [number, number], channels: cfg.channels };
  const crop = cfg.cropFrom ? { cropFrom: cfg.cropFrom } : {};
  const trainTf = makeTransforms({
    ...shape,
    ...crop,
    mean: cfg.mean,
    std: cfg.std,
    train: cfg.augment !== false,
    augment: cfg.augment || {},
    seed: cfg.seed,
    erasing: cfg.erasing ?? false,
  });
  const evalTf = makeTransforms({ ...shape, ...crop, mean: cfg.mean, std: cfg.std, train: false });

  // ---- model, loss, optimizer -----------------------------------------------------------------------------
  const realRandom = Math.random;
  Math.random = mulberry32(mixSeed(cfg.seed, 0x6d6f64)); // weight initialisation
  let model: tfl.LayersModel;
  try {
    model = deps.createModel
      ? deps.createModel(cfg, classes.length)
      // on resume the saved weights replace any pretrained ones: skip loading (and downloading) them
      : await createFromRegistry({ ...cfg, pretrained: cfg.pretrained && !resumeState }, classes.length, log);
  } finally {
    Math.random = realRandom;
  }
  const lossFn: LossFn = makeLoss({
    kind: cfg.loss,
    smoothing: cfg.labelSmoothing,
    gamma: cfg.focalGamma,
    weights: cfg.loss === "weighted_ce"
      ? inverseFrequencyWeights(trainSet.labels, classes.length)
      : undefined,
  });
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const opt = makeOptimizer(cfg, vars);

  // the run folder is created once data and model are known to work
  mkdirSync(runDir, { recursive: true });
  writeAtomic(join(runDir, "config.json"), JSON.stringify(cfg, null, 2) + "\n");
  recordSkipped(runDir, data); // skipped.json: the files and links the data loader left out

  // ---- loop state (restored on resume) -----------------------------------------------------------------------
  let state: LoopState = {
    nextEpoch: 0,
    history: [],
    bestValAcc: -1,
    bestEpoch: -1,
    badEpochs: 0,
    done: false,
    sessions: 1,
  };
  const lastRow = resumeState?.history.at(-1);
  const totalsBase = { wall: lastRow?.wall_total_s ?? 0, cpu: lastRow?.cpu_total_s ?? 0 };
  if (resumeState) {
    state = { ...resumeState, sessions: (resumeState.sessions ?? 1) + 1 };
    await loadState(lastPath, model, opt);
    log(`resumed ${run} after epoch ${state.nextEpoch} (best val_acc ${state.bestValAcc.toFixed(4)})`);
  }
  let stopped: TrainResult["stopped"] = state.done ? "early_stopped" : "completed";
  let message = "";

  // ---- epochs ----------------------------------------------------------------------------------------------
  const stepsPerEpoch = Math.ceil(trainSet.labels.length / cfg.batchSize);
  const lrAt = (epoch: number, step: number): number => {
    if (cfg.schedule === "warmup_cosine") {
      return warmupCosineLr(epoch * stepsPerEpoch + step, {
        baseLr: cfg.lr,
        total: cfg.tMax * stepsPerEpoch,
        warmup: Math.round((cfg.warmupEpochs ?? 0) * stepsPerEpoch),
        etaMin: cfg.etaMin,
      });
    }
    return cfg.tMax > 0 ? cosineAnnealingLr(epoch, cfg.lr, cfg.tMax, cfg.etaMin) : cfg.lr;
  };
  const mixup = cfg.mixupAlpha ?? 0;
  try {
    for (let epoch = state.nextEpoch; epoch < cfg.epochs && !state.done; epoch++) {
      const lr = lrAt(epoch, 0);
      opt.lr = lr;
      Math.random = mulberry32(mixSeed(cfg.seed, epoch, 0x64726f70)); // dropout & other tfjs-internal draws
      const t0 = performance.now();
      const cpu0 = cpuSeconds();
      const bar = new Progress(`epoch ${epoch + 1}/${cfg.epochs}`, trainSet.labels.length, deps.progress);
      let lossSum = 0;
      let correct = 0;
      let seen = 0;
      let step = 0;
      const order = { batchSize: cfg.batchSize, shuffle: true, seed: mixSeed(cfg.seed, epoch) };
      for (const { x, y } of batches(trainSet, order)) {
        if (cfg.schedule === "warmup_cosine") opt.lr = lrAt(epoch, step);
        let xa = trainTf(x, [epoch, step]);
        const b = y.shape[0];
        const mix = mixup > 0 ? mixupDraw(b, mixup, mixSeed(cfg.seed, epoch, step, 0x6d6978)) : null;
        let y2: tf.Tensor | null = null;
        if (mix) {
          const mixed = mixBatch(xa, mix);
          xa.dispose();
          xa = mixed;
          y2 = tf.gather(y, mix.perm);
        }
        const kept: { correct?: tf.Tensor } = {};
        const { value, grads } = tf.variableGrads(() => {
          const logits = model.apply(xa, { training: true }) as tf.Tensor;
          kept.correct = tf.keep(tf.sum(tf.cast(tf.equal(tf.argMax(logits, 1), y), "int32")));
          if (!mix) return lossFn(logits, y);
          // mixup loss: λ·L(ŷ, y) + (1 − λ)·L(ŷ, y[perm])
          return tf.add(
            tf.mul(lossFn(logits, y), mix.lambda),
            tf.mul(lossFn(logits, y2!), 1 - mix.lambda),
          ) as tf.Scalar;
        }, vars);
        // the batch's metrics are the only values read back per step (asynchronously: GPU backends cannot read
        // synchronously under Deno)
        const loss = (await value.data())[0];
        const ok = (await kept.correct!.data())[0];
        tf.dispose([x, y, xa, value, kept.correct!, ...(y2 ? [y2] : [])]);
        if (!Number.isFinite(loss)) {
          tf.dispose(Object.values(grads));
          throw new Diverged(`non-finite training loss (${loss}) at epoch ${epoch + 1}, step ${step + 1}`);
        }
        opt.step(grads);
        tf.dispose(Object.values(grads));
        lossSum += loss * b;
        correct += ok;
        seen += b;
        step++;
        bar.tick(seen, lossSum / seen, correct / seen);
      }
      const trainSeconds = (performance.now() - t0) / 1000;
      Math.random = realRandom;

      const val = await evaluate(model, valSet, evalTf, lossFn, cfg.batchSize);
      if (!Number.isFinite(val.loss)) throw new Diverged(`non-finite validation loss at epoch ${epoch + 1}`);
      const row: HistoryRow = {
        epoch: epoch + 1,
        train_loss: lossSum / seen,
        train_acc: correct / seen,
        val_loss: val.loss,
        val_acc: val.accuracy,
        lr,
        seconds: (performance.now() - t0) / 1000,
        img_s: seen / trainSeconds,
        cpu_s: cpuSeconds() - cpu0,
        wall_total_s: totalsBase.wall + (performance.now() - session.wall0) / 1000,
        cpu_total_s: totalsBase.cpu + cpuSeconds() - session.cpu0,
      };
      state.history.push(row);

      // early stopping on validation accuracy; the best weights are kept
      let note = "";
      if (val.accuracy > state.bestValAcc) {
        state.bestValAcc = val.accuracy;
        state.bestEpoch = epoch + 1;
        state.badEpochs = 0;
        await saveBest(bestDir, model, {
          run,
          model: cfg.model,
          epoch: epoch + 1,
          val_acc: val.accuracy,
          classes,
        });
        note = "  * best";
      } else if (++state.badEpochs >= cfg.patience) {
        state.done = true;
        note = `  early stop (no improvement for ${cfg.patience} epochs)`;
      }
      state.nextEpoch = epoch + 1;
      await saveState(lastPath, model, opt, state);
      writeHistory(runDir, state.history);
      await bar.end(formatRow(row, cfg.epochs) + note);
      if (state.done) stopped = "early_stopped";
      await deps.onEpochEnd?.({ epoch, row, model });
    }
  } catch (e) {
    if (!(e instanceof Diverged)) {
      Math.random = realRandom;
      opt.dispose();
      model.dispose();
      throw e;
    }
    stopped = "diverged";
    message = `${e.message}; training stopped. The best checkpoint (epoch ${state.bestEpoch}) is kept.`;
    log(`ERROR: ${message}`);
  } finally {
    Math.random = realRandom;
  }
  opt.dispose();

  // ---- final evaluation of the best model on test (once) -------------------------------------------------------
  if (state.bestEpoch < 0) {
    model.dispose();
    throw new TrainError(`${message || "no epoch completed"}; no checkpoint to evaluate in ${runDir}`);
  }
  await loadCheckpointWeights(model, bestDir);
  const test = await evaluate(model, testSet, evalTf, lossFn, cfg.batchSize, true);
  model.dispose();
  const report = classificationReport(testSet.labels, test.preds!, classes);
  const summary = {
    run,
    experiment: cfg.experiment,
    model: cfg.model,
    best_epoch: state.bestEpoch,
    best_val_acc: state.bestValAcc,
    stopped,
    message,
    test_loss: test.loss,
    test_accuracy: report.accuracy,
    sample_data: data.sample ?? false,
    wall_seconds: totalsBase.wall + (performance.now() - session.wall0) / 1000,
    cpu_seconds: totalsBase.cpu + cpuSeconds() - session.cpu0,
    sessions: state.sessions,
    report,
    confusion_matrix: confusionMatrix(testSet.labels, test.preds!, classes.length),
  };
  writeAtomic(join(runDir, "test_report.json"), JSON.stringify(summary, null, 2) + "\n");
  const text = `${cfg.experiment} (${cfg.model}), best epoch ${state.bestEpoch}, test split\n\n` +
    formatReport(report, { digits: 4 });
  writeAtomic(join(runDir, "test_report.txt"), text + "\n");
  writePredictions(join(runDir, "predictions.csv"), testSet, test.preds!, test.probs!, classes);
  log(text);
  log(`run folder: ${runDir}`);
  return {
    runDir,
    history: state.history,
    bestEpoch: state.bestEpoch,
    bestValAcc: state.bestValAcc,
    stopped,
    message,
    test: { loss: test.loss, accuracy: report.accuracy, macroF1: report.macro_avg.f1 },
  };
}

/**
 * Sets the tfjs backend: `initEngine()` from lib/engine/init.ts (the fast native engine; `FER_BACKEND` overrides)
 * when that module is present and works, else the plain `cpu` backend (slow for convolutions; says so).
 */
export async function setupBackend(): Promise<{ name: string; threads: number }> {
  const spec = "../engine/init.ts"; // imported lazily: the engine is optional
  try {
    const engine = await import(spec);
    return await engine.initEngine();
  } catch (e) {
    await import("@tensorflow/tfjs-backend-cpu");
    await tf.setBackend("cpu");
    console.warn(
      `note: native engine unavailable (${(e as Error).message.split("\n")[0]}); using the slow cpu backend`,
    );
    return { name: "cpu", threads: 1 };
  }
}

// ---- helpers (in the order the loop uses them) -------------------------------------------------------------

/** Loop state saved with every epoch. */
type LoopState = {
  nextEpoch: number;
  history: HistoryRow[];
  bestValAcc: number;
  bestEpoch: number;
  badEpochs: number;
  done: boolean;
  /** Sessions (first start + resumes) that trained this run so far. */
  sessions?: number;
};

/** Process CPU time (user + system, all threads) in seconds. */
export function cpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

/** The optimizer a config names (AdamW by default). */
export function makeOptimizer(cfg: TrainConfig, vars: tf.Variable[]): Optimizer {
  const kind = cfg.optimizer ?? "adamw";
  if (kind === "adamw") return new AdamW(vars, { lr: cfg.lr, weightDecay: cfg.weightDecay });
  if (kind === "sgd") {
    if (!hostBackend()) {
      throw new TrainError(
        `optimizer "sgd" runs on the cpu, native and wasm backends (tensors in JS memory); this is ` +
          `"${tf.getBackend()}": use optimizer "adamw" or FER_BACKEND=native`,
      );
    }
    return new SGD(vars, {
      lr: cfg.lr,
      weightDecay: cfg.weightDecay,
      momentum: cfg.momentum ?? 0.9,
      nesterov: cfg.nesterov ?? true,
    });
  }
  throw new TrainError(`unknown optimizer "${kind}" (adamw, sgd)`);
}

/** One batch's mixup draw: the weight λ ~ Beta(α, α) and the partner permutation. */
export type MixupDraw = { lambda: number; perm: Int32Array };

/** Draws λ (d3-random's Beta sampler) and a permutation from a generator seeded with `seed`. */
export function mixupDraw(b: number, alpha: number, seed: number): MixupDraw {
  const rand = mulberry32(seed);
  const lambda = randomBeta.source(rand)(alpha, alpha)();
  const perm = shuffleInPlace(Int32Array.from({ length: b }, (_, i) => i), rand);
  return { lambda, perm };
}

/** `λ·x + (1 − λ)·x[perm]` along the batch axis (a new tensor; `x` is not disposed). */
export function mixBatch(x: tf.Tensor4D, mix: MixupDraw): tf.Tensor4D {
  return tf.tidy(() =>
    tf.add(tf.mul(x, mix.lambda), tf.mul(tf.gather(x, mix.perm), 1 - mix.lambda)) as tf.Tensor4D
  );
}

class Diverged extends Error {}

/** A seeded random subset of at most `n` rows (kept in the original order), or the split itself. */
export function cap(split: Split, n: number | null, seed: number): Split {
  if (n === null || split.labels.length <= n) return split;
  const rand = mulberry32(mixSeed(seed, 0x636170));
  const idx = shuffleInPlace(Array.from({ length: split.labels.length }, (_, i) => i), rand);
  return subset(split, idx.slice(0, n).sort((a, b) => a - b));
}

/**
 * The model a config names, from lib/models/registry.ts, with timm's ImageNet weights loaded when
 * `cfg.pretrained` is set and the model has a pretrained tag (the classifier stays freshly initialised).
 */
export async function createFromRegistry(
  cfg: TrainConfig,
  numClasses: number,
  log: (s: string) => void = console.log,
): Promise<tfl.LayersModel> {
  const model = createModel(cfg.model, {
    numClasses,
    inputShape: [cfg.inputSize, cfg.inputSize, cfg.channels],
    seed: cfg.seed,
    ...cfg.modelOptions,
  });
  const mc = defaultConfig(cfg.model);
  if (cfg.pretrained && mc.pretrained && mc.nameMap) {
    try {
      const r = await loadPretrained(model, mc.pretrained, { nameMap: mc.nameMap });
      log(
        `pretrained: ${mc.pretrained} from ${r.path}${r.classifierReinitialized ? " (new classifier)" : ""}`,
      );
    } catch (e) {
      model.dispose();
      throw new TrainError(
        `${
          (e as Error).message
        }\n(to train ${cfg.model} from random initialisation instead, set pretrained: false)`,
      );
    }
  }
  return model;
}

/** Saves the best model as a TF.js layers checkpoint (lib/models/checkpoint.ts: model.json + weights). */
async function saveBest(
  dir: string,
  model: tfl.LayersModel,
  metadata: Record<string, unknown>,
): Promise<void> {
  await saveCheckpoint(model, dir, { metadata });
}

/**
 * Loss, accuracy (and with `keep`, predictions and probabilities) of a model on a split, in eval mode. Values
 * are read back once per batch, asynchronously.
 */
export async function evaluate(
  model: tfl.LayersModel,
  split: Split,
  transform: Transform,
  lossFn: LossFn,
  batchSize: number,
  keep = false,
): Promise<{ loss: number; accuracy: number; preds?: Int32Array; probs?: Float32Array }> {
  const n = split.labels.length;
  const c = model.outputs[0].shape[1] as number;
  const preds = keep ? new Int32Array(n) : undefined;
  const probs = keep ? new Float32Array(n * c) : undefined;
  let lossSum = 0;
  let correct = 0;
  let at = 0;
  for (const { x, y } of batches(split, { batchSize, shuffle: false })) {
    const [l, p, pr] = tf.tidy(() => {
      const logits = model.apply(transform(x), { training: false }) as tf.Tensor;
      return [lossFn(logits, y), tf.argMax(logits, 1), tf.softmax(logits)];
    });
    const b = y.shape[0];
    lossSum += (await l.data())[0] * b;
    const pv = await p.data();
    const yv = await y.data();
    for (let i = 0; i < b; i++) if (pv[i] === yv[i]) correct++;
    if (preds && probs) {
      preds.set(pv, at);
      probs.set(await pr.data(), at * c);
    }
    at += b;
    tf.dispose([x, y, l, p, pr]);
  }
  return { loss: n ? lossSum / n : NaN, accuracy: n ? correct / n : NaN, preds, probs };
}

/** Writes a file atomically (temporary file in the same folder, then rename). */
export function writeAtomic(path: string, text: string): void {
  const tmp = `${path}.${Deno.pid}.tmp`;
  Deno.writeTextFileSync(tmp, text);
  Deno.renameSync(tmp, path);
}

/**
 * Saves all model weights (trainable and BatchNorm statistics), in `model.weights` order, to a safetensors
 * file atomically (used for the resume state, which must hold weights and optimizer moments in one file so a
 * kill can never pair one epoch's weights with another's moments). Names are `weight.<index>`.
 */
export async function saveWeights(
  path: string,
  model: tfl.LayersModel,
  metadata: Record<string, string> = {},
  extra: Map<string, TensorToWrite> = new Map(),
): Promise<void> {
  const tensors = new Map<string, TensorToWrite>();
  for (const [i, w] of model.weights.entries()) {
    tensors.set(`weight.${i}`, {
      dtype: "F32",
      shape: w.shape as number[],
      data: await w.read().data() as Float32Array,
    });
  }
  for (const [k, v] of extra) tensors.set(k, v);
  const names = JSON.stringify(model.weights.map((w) => w.originalName));
  await writeSafetensors(path, tensors, { format: "fer-deno-weights-v1", names, ...metadata });
}

/** Loads weights written by {@link saveWeights} into a model of the same architecture (shapes checked). */
export async function loadWeights(path: string, model: tfl.LayersModel): Promise<Record<string, string>> {
  const file = await readSafetensors(path, { filter: (n) => n.startsWith("weight.") });
  const ws = model.weights;
  if (file.tensors.size !== ws.length) {
    throw new TrainError(`${path}: ${file.tensors.size} weight tensors, the model has ${ws.length}`);
  }
  const values = ws.map((w, i) => {
    const t = file.tensors.get(`weight.${i}`);
    if (!t || t.shape.join("x") !== w.shape.join("x")) {
      throw new TrainError(
        `${path}: weight ${i} (${w.originalName}) has shape [${t?.shape}] in the file, [${w.shape}] in the model`,
      );
    }
    return tf.tensor(toFloat32(t), w.shape as number[]);
  });
  model.setWeights(values);
  tf.dispose(values);
  return file.metadata ?? {};
}

/**
 * Writes weights + optimizer state + loop state (as JSON metadata) to one file, atomically. AdamW's moments are
 * `adam_m.<i>` / `adam_v.<i>` with metadata `adam_step`, SGD's buffers `sgd_buf.<i>` with `sgd_step` (i: the
 * index among the trainable weights).
 */
async function saveState(
  path: string,
  model: tfl.LayersModel,
  opt: Optimizer,
  state: LoopState,
): Promise<void> {
  const slots = await opt.readSlots();
  const extra = new Map<string, TensorToWrite>();
  model.trainableWeights.forEach((w, i) => {
    const name = (w.read() as tf.Variable).name;
    for (const [slot, values] of Object.entries(slots)) {
      extra.set(`${opt.stateName}_${slot}.${i}`, {
        dtype: "F32",
        shape: w.shape as number[],
        data: values[name],
      });
    }
  });
  await saveWeights(
    path,
    model,
    { state: JSON.stringify(state), [`${opt.stateName}_step`]: String(opt.stepCount) },
    extra,
  );
}

/** Restores what {@link saveState} wrote. */
async function loadState(path: string, model: tfl.LayersModel, opt: Optimizer): Promise<void> {
  const meta = await loadWeights(path, model);
  const prefix = `${opt.stateName}_`;
  if (meta[`${prefix}step`] === undefined) {
    throw new TrainError(
      `${path}: no ${opt.stateName} optimizer state (was the run trained with another optimizer?)`,
    );
  }
  const file = await readSafetensors(path, { filter: (n) => n.startsWith(prefix) });
  const slots: Record<string, Record<string, Float32Array>> = {};
  model.trainableWeights.forEach((w, i) => {
    const name = (w.read() as tf.Variable).name;
    const found = [...file.tensors.keys()].filter((k) => k.endsWith(`.${i}`));
    if (found.length === 0) {
      throw new TrainError(`${path}: no optimizer state for weight ${i} (${w.originalName})`);
    }
    for (const k of found) {
      const slot = k.slice(prefix.length, k.lastIndexOf("."));
      (slots[slot] ??= {})[name] = toFloat32(file.tensors.get(k)!);
    }
  });
  opt.importSlots(Number(meta[`${prefix}step`]), slots);
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

/** history.json and history.csv. */
function writeHistory(runDir: string, history: HistoryRow[]): void {
  writeAtomic(join(runDir, "history.json"), JSON.stringify(history, null, 2) + "\n");
  const lines = [
    HISTORY_COLUMNS.join(","),
    ...history.map((r) => HISTORY_COLUMNS.map((k) => r[k] ?? "").join(",")),
  ];
  writeAtomic(join(runDir, "history.csv"), lines.join("\n") + "\n");
}

/** One epoch summary line. */
function formatRow(r: HistoryRow, epochs: number): string {
  return `epoch ${r.epoch}/${epochs}  train_loss ${r.train_loss.toFixed(4)} acc ${r.train_acc.toFixed(4)}  ` +
    `val_loss ${r.val_loss.toFixed(4)} acc ${r.val_acc.toFixed(4)}  lr ${r.lr.toExponential(2)}  ` +
    `${r.seconds.toFixed(1)}s ${r.img_s.toFixed(0)} img/s`;
}

/** predictions.csv (lib/eval/predictions.ts format: `path,label,pred,p_<class>...`, class names for label/pred). */
export function writePredictions(
  path: string,
  split: Split,
  preds: Int32Array,
  probs: Float32Array,
  classes: string[],
): void {
  const c = classes.length;
  const rows: PredictionRow[] = Array.from(preds, (pred, i) => ({
    path: split.paths[i],
    label: split.labels[i],
    pred,
    probs: Array.from(probs.subarray(i * c, (i + 1) * c)),
  }));
  writeAtomic(path, formatPredictionsCsv(rows, classes));
}

/** The class names this toolkit expects (re-exported for the CLIs). */
export { CLASSES };
