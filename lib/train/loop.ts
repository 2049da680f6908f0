/**
 * The training loop, written to read top to bottom (in the spirit of nanoGPT's train.py): a plain config
 * (lib/train/config.ts), the run folder, data, model, loss and optimizer, then a loop of epochs (train,
 * validate, log, early-stop, checkpoint), then one evaluation of the best model on the test split. The run
 * folder's files are read and written through lib/runs/ only.
 *
 * Validation uses a stratified split of the training folder (`valFraction`), never the test split: the
 * original study early-stopped on test, a leak not repeated here. Test is touched once, at the end.
 *
 * Resume determinism: everything random is drawn from streams of the run's one seed (`RunRandom`,
 * lib/util/rng.ts), each a pure function of (seed, epoch): the weight initialisation, the batch order, the
 * augmentation (`transform(x, [epoch, step])`) and the draws tfjs makes internally (dropout masks, through
 * `Math.random`, which `withRandom` replaces for the duration of an epoch's training steps). The learning rate
 * is a pure function of the epoch (or, with the warm-up + cosine schedule, of the step), and the mixup draws
 * come from (seed, epoch, step) too. After each epoch the weights (including BatchNorm statistics), the
 * optimizer state and the loop state are written atomically to `last.safetensors` (lib/runs/state.ts); a
 * resumed run loads them and continues with the next epoch exactly as an uninterrupted run would.
 *
 * Cost accounting: every history row carries the epoch's process CPU seconds (`cpu_s`) and the run's running
 * totals of wall and CPU seconds over all sessions so far (`wall_total_s`, `cpu_total_s`, including data
 * loading and model building; a resumed session adds its own time to the totals of the last saved epoch; time
 * spent on an epoch that a kill interrupted is not counted). test_report.json records the final totals.
 */
import * as tf from "@tensorflow/tfjs-core";
import type * as tfl from "@tensorflow/tfjs-layers";
import { existsSync, mkdirSync } from "node:fs";
import type { Transform } from "../data/augment.ts";
import { batches, recordSkipped, type Split } from "../data/dataset.ts";
import { setPrecision } from "../engine/init.ts";
import { evaluate } from "../eval/evaluate.ts";
import { classificationReport, confusionMatrix, formatReport } from "../eval/metrics.ts";
import { writePredictionsCsv } from "../eval/predictions.ts";
import { loadCheckpointWeights, saveCheckpoint } from "../models/checkpoint.ts";
import { createModel } from "../models/registry.ts";
import {
  checkFingerprint,
  loadRunDataset,
  recordedRoot,
  runSplits,
  splitsFingerprint,
} from "../runs/data.ts";
import {
  type HistoryRow,
  predictionRows,
  readConfig,
  removeDerivedPredictions,
  setAsideLostHistory,
  writeConfig,
  writeHistory,
  writeTestReport,
} from "../runs/files.ts";
import { newRunName, runDirFor, runPaths } from "../runs/paths.ts";
import { lockRun } from "../runs/lock.ts";
import {
  initialState,
  loadState,
  type LoopState,
  readState,
  removeRunTemps,
  saveState,
} from "../runs/state.ts";
import { cpuSeconds } from "../util/cost.ts";
import { RunRandom, withRandom } from "../util/rng.ts";
import { DEFAULT_CONFIG, runTransform, type TrainConfig } from "./config.ts";
import { inverseFrequencyWeights, type LossFn, makeLoss } from "./losses.ts";
import { mixBatch, mixupDraw } from "./mixup.ts";
import { cosineAnnealingLr, makeOptimizer, type Optimizer, OptimizerError, warmupCosineLr } from "./optim.ts";
import { Progress, type ProgressMode } from "./progress.ts";

/** The type of `train`'s config, owned by lib/train/config.ts (re-exported as part of `train`'s signature). */
export type { TrainConfig };

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

/** Data for a run: train (split into train/val here) and test; `root` is recorded in the run when given. */
export type RunData = { classes: string[]; train: Split; test: Split; sample?: boolean; root?: string };

/** Hooks for tests and notebooks. */
export type TrainDeps = {
  /** Data to use instead of `loadDataset`. */
  data?: RunData;
  /** Model factory instead of the registry (its random draws come from the run's init stream). */
  createModel?: (cfg: TrainConfig, numClasses: number) => tfl.LayersModel;
  /** Called after each epoch's checkpoint is written (throwing here simulates a kill). */
  onEpochEnd?: (info: { epoch: number; row: HistoryRow; model: tfl.LayersModel }) => void | Promise<void>;
  /** Called after each training batch (`step`: batches done in the epoch) and its resume state, if one was due. */
  onBatchEnd?: (info: { epoch: number; step: number }) => void | Promise<void>;
  /**
   * Seconds between the resume states saved inside an epoch (default 600: a killed run loses at most about ten
   * minutes; 0 saves after every batch, Infinity only after epochs). A state saved inside an epoch resumes it at
   * the next batch, exactly as an uninterrupted run would go on.
   */
  saveEverySeconds?: number;
  /** Continue the run in `cfg.run` from its last saved state (a `dataRoot` given then reads the data there). */
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

/**
 * Trains a model as `cfg` says and evaluates the best checkpoint on the test split once. The run is locked for
 * the whole time (lib/runs/lock.ts): a second trainer of the same run is refused, naming the first.
 */
export async function train(config: Partial<TrainConfig>, deps: TrainDeps = {}): Promise<TrainResult> {
  const outDir = config.outDir ?? DEFAULT_CONFIG.outDir;
  const run = config.run ?? newRunName(config.experiment ?? DEFAULT_CONFIG.experiment);
  const dir = runDirFor(outDir, run);
  mkdirSync(outDir, { recursive: true });
  const lock = lockRun(dir);
  try {
    return await trainLocked({ ...config, outDir, run }, deps);
  } finally {
    lock.release();
  }
}

/** {@link train}, once the run's lock is held. */
async function trainLocked(config: Partial<TrainConfig>, deps: TrainDeps): Promise<TrainResult> {
  const log = deps.log ?? ((s: string) => console.log(s));
  const session = { wall0: performance.now(), cpu0: cpuSeconds() };

  // ---- run folder and config ------------------------------------------------------------------------------
  const outDir = config.outDir!;
  const run = config.run!;
  const paths = runPaths(runDirFor(outDir, run));
  let cfg: TrainConfig = { ...DEFAULT_CONFIG, ...config, outDir, run };
  let resumeState: LoopState | null = null;
  if (deps.resume) {
    if (!existsSync(paths.config)) throw new TrainError(`cannot resume: no ${paths.config}`);
    const saved = readConfig(paths);
    // The saved config wins; only the epoch budget may be extended (and the data read from a new place).
    cfg = { ...saved, outDir, run, epochs: config.epochs ?? saved.epochs };
    if (existsSync(paths.last)) resumeState = await readState(paths);
    else {
      // no resume state: killed in its first epoch, or its weights were lost (a new machine) after some epochs
      const lost = setAsideLostHistory(paths);
      log(
        lost.epochs
          ? `${paths.last} is missing although the run's history records ${lost.epochs} epoch(s): their ` +
            `weights are lost, so ${run} starts again from epoch 1 (the lost epochs' history is kept as ` +
            `${lost.file})`
          : `no complete epoch in ${paths.dir}; starting it from epoch 1`,
      );
    }
  } else if (existsSync(paths.config)) {
    throw new TrainError(
      `run folder ${paths.dir} already exists: pass --resume ${run} or choose another --run`,
    );
  }
  const stale = removeRunTemps(paths);
  if (stale.length) {
    log(`removed ${stale.length} temporary file(s) of interrupted writes: ${stale.join(", ")}`);
  }

  // ---- data ---------------------------------------------------------------------------------------------
  // the dataset root: one given (relative to the working directory), else the one a resumed run recorded, else
  // the default ($FER2013_DIR, data/fer2013, the committed sample)
  const data: RunData = deps.data ??
    await loadRunDataset(cfg, {
      override: config.dataRoot ?? undefined,
      configPath: paths.config,
      verbose: true,
    });
  const classes = data.classes;
  const { train: trainSet, val: valSet, test: testSet } = runSplits(cfg, data);
  log(
    `data: ${trainSet.labels.length} train, ${valSet.labels.length} val, ${testSet.labels.length} test images`,
  );
  const fingerprint = splitsFingerprint({ train: trainSet, val: valSet, test: testSet });
  if (resumeState) {
    const where = data.root ?? "the data given";
    checkFingerprint(cfg, fingerprint, { configPath: paths.config, root: where, action: "resume" });
  }
  cfg.dataFingerprint = fingerprint;
  if (data.root) cfg.dataRoot = recordedRoot(data.root);
  const trainTf = runTransform(cfg, true);
  const evalTf = runTransform(cfg);

  // ---- model, loss, optimizer -----------------------------------------------------------------------------
  const rng = new RunRandom(cfg.seed);
  const model = await withRandom(
    rng.init(),
    () =>
      deps.createModel ? deps.createModel(cfg, classes.length) : createModel(cfg.model, {
        numClasses: classes.length,
        inputShape: [cfg.inputSize, cfg.inputSize, cfg.channels],
        seed: cfg.seed,
        ...cfg.modelOptions,
        // on resume the saved weights replace any pretrained ones: skip loading (and downloading) them
        pretrained: cfg.pretrained && !resumeState,
        log,
      }),
  );
  const lossFn: LossFn = makeLoss({
    kind: cfg.loss,
    smoothing: cfg.labelSmoothing,
    gamma: cfg.focalGamma,
    weights: cfg.loss === "weighted_ce"
      ? inverseFrequencyWeights(trainSet.labels, classes.length)
      : undefined,
  });
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  let opt: Optimizer;
  try {
    opt = makeOptimizer(cfg, vars);
  } catch (e) {
    model.dispose();
    throw e instanceof OptimizerError ? new TrainError(e.message) : e;
  }

  // the run folder is created once data and model are known to work
  mkdirSync(paths.dir, { recursive: true });
  writeConfig(paths, cfg);
  recordSkipped(paths.dir, data); // skipped.json: the files and links the data loader left out

  // ---- loop state (restored on resume) -----------------------------------------------------------------------
  let state = initialState();
  const lastRow = resumeState?.history.at(-1);
  const totalsBase = resumeState?.partial
    ? { wall: resumeState.partial.wallTotal, cpu: resumeState.partial.cpuTotal }
    : { wall: lastRow?.wall_total_s ?? 0, cpu: lastRow?.cpu_total_s ?? 0 };
  if (resumeState) {
    const loaded = await loadState(paths, model, opt);
    state = { ...loaded, sessions: (loaded.sessions ?? 1) + 1 };
    writeHistory(paths, state.history); // a kill may have come between the state and the history write
    const where = state.partial
      ? `in epoch ${state.nextEpoch + 1} after batch ${state.partial.step}`
      : `after epoch ${state.nextEpoch}`;
    log(`resumed ${run} ${where} (best val_acc ${state.bestValAcc.toFixed(4)})`);
  }
  // ---- arithmetic: the training steps in the config's precision; validation and test in float32, so that
  // `evaluate` reproduces every figure the run reports
  const precision = cfg.precision ?? "float32";
  if (precision !== "float32") {
    const { reason } = setPrecision(precision);
    setPrecision("float32");
    log(
      reason
        ? `precision: ${precision} asked, float32 used (${reason})`
        : `precision: ${precision} convolutions and dense layers in the training steps (validation and test in ` +
          "float32)",
    );
  }
  let stopped: TrainResult["stopped"] = state.done ? "early_stopped" : "completed";
  const saveEvery = deps.saveEverySeconds ?? 600;
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
  const sessionTotals = () => ({
    wall: totalsBase.wall + (performance.now() - session.wall0) / 1000,
    cpu: totalsBase.cpu + cpuSeconds() - session.cpu0,
  });
  try {
    for (let epoch = state.nextEpoch; epoch < cfg.epochs && !state.done; epoch++) {
      const lr = lrAt(epoch, 0);
      opt.lr = lr;
      const t0 = performance.now();
      const cpu0 = cpuSeconds();
      // an epoch a resumed run stopped in: its sums, random stream and time so far
      const done = state.partial;
      delete state.partial;
      const random = rng.steps(epoch, done?.random);
      const spent = () => ({
        seconds: (done?.seconds ?? 0) + (performance.now() - t0) / 1000,
        cpuSeconds: (done?.cpuSeconds ?? 0) + cpuSeconds() - cpu0,
      });
      // inside the epoch, the resume state is saved every `saveEvery` seconds (between two batches)
      let lastSave = performance.now();
      const afterStep = async (sums: EpochSums) => {
        if ((performance.now() - lastSave) / 1000 >= saveEvery) {
          const totals = sessionTotals();
          const partial = {
            ...sums,
            random: random.state(),
            ...spent(),
            wallTotal: totals.wall,
            cpuTotal: totals.cpu,
          };
          await saveState(paths, model, opt, { ...state, partial });
          lastSave = performance.now();
        }
        await deps.onBatchEnd?.({ epoch, step: sums.step });
      };
      const bar = new Progress(
        `epoch ${epoch + 1}/${cfg.epochs}`,
        trainSet.labels.length,
        deps.progress,
        done?.seen ?? 0,
      );
      const step: StepContext = {
        model,
        vars,
        opt,
        lossFn,
        transform: trainTf,
        bar,
        lrAt: cfg.schedule === "warmup_cosine" ? lrAt : null,
        mixup: cfg.mixupAlpha ?? 0,
        rng,
      };
      setPrecision(precision);
      const { lossSum, correct, seen } = await withRandom(
        random,
        () =>
          trainEpoch(
            trainSet,
            epoch,
            { batchSize: cfg.batchSize, seed: rng.orderSeed(epoch) },
            step,
            done ?? { step: 0, lossSum: 0, correct: 0, seen: 0 },
            afterStep,
          ),
      ).finally(() => setPrecision("float32"));
      const trainSeconds = spent().seconds;

      const val = await evaluate(model, valSet, evalTf, lossFn, cfg.batchSize);
      if (!Number.isFinite(val.loss)) throw new Diverged(`non-finite validation loss at epoch ${epoch + 1}`);
      const row: HistoryRow = {
        epoch: epoch + 1,
        train_loss: lossSum / seen,
        train_acc: correct / seen,
        val_loss: val.loss,
        val_acc: val.accuracy,
        lr,
        seconds: spent().seconds,
        img_s: seen / trainSeconds,
        cpu_s: spent().cpuSeconds,
        wall_total_s: sessionTotals().wall,
        cpu_total_s: sessionTotals().cpu,
      };
      state.history.push(row);

      // early stopping on validation accuracy; the best weights are kept
      let note = "";
      if (val.accuracy > state.bestValAcc) {
        state.bestValAcc = val.accuracy;
        state.bestEpoch = epoch + 1;
        state.badEpochs = 0;
        const metadata = { run, model: cfg.model, epoch: epoch + 1, val_acc: val.accuracy, classes };
        await saveCheckpoint(model, paths.best, { metadata });
        const derived = removeDerivedPredictions(paths);
        if (derived.length) log(`removed the earlier best model's ${derived.join(", ")}`);
        note = "  * best";
      } else if (++state.badEpochs >= cfg.patience) {
        state.done = true;
        note = `  early stop (no improvement for ${cfg.patience} epochs)`;
      }
      state.nextEpoch = epoch + 1;
      await saveState(paths, model, opt, state);
      writeHistory(paths, state.history);
      await bar.end(formatRow(row, cfg.epochs) + note);
      if (state.done) stopped = "early_stopped";
      await deps.onEpochEnd?.({ epoch, row, model });
    }
  } catch (e) {
    if (!(e instanceof Diverged)) {
      opt.dispose();
      model.dispose();
      throw e;
    }
    stopped = "diverged";
    message = `${e.message}; training stopped. The best checkpoint (epoch ${state.bestEpoch}) is kept.`;
    log(`ERROR: ${message}`);
  }
  opt.dispose();

  // ---- final evaluation of the best model on test (once) -------------------------------------------------------
  if (state.bestEpoch < 0) {
    model.dispose();
    throw new TrainError(`${message || "no epoch completed"}; no checkpoint to evaluate in ${paths.dir}`);
  }
  await loadCheckpointWeights(model, paths.best);
  const test = await evaluate(model, testSet, evalTf, lossFn, cfg.batchSize, true);
  model.dispose();
  const report = classificationReport(testSet.labels, test.preds!, classes);
  const text = `${cfg.experiment} (${cfg.model}), best epoch ${state.bestEpoch}, test split\n\n` +
    formatReport(report, { digits: 4 });
  writeTestReport(paths, {
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
    wall_seconds: sessionTotals().wall,
    cpu_seconds: sessionTotals().cpu,
    sessions: state.sessions ?? 1,
    report,
    confusion_matrix: confusionMatrix(testSet.labels, test.preds!, classes.length),
  }, text);
  writePredictionsCsv(
    paths.predictions,
    predictionRows(testSet, test.preds!, test.probs!, classes.length, data.root),
    classes,
  );
  log(text);
  log(`run folder: ${paths.dir}`);
  return {
    runDir: paths.dir,
    history: state.history,
    bestEpoch: state.bestEpoch,
    bestValAcc: state.bestValAcc,
    stopped,
    message,
    test: { loss: test.loss, accuracy: report.accuracy, macroF1: report.macro_avg.f1 },
  };
}

// ---- helpers (in the order the loop uses them) -------------------------------------------------------------

class Diverged extends Error {}

/** What one training step needs. */
type StepContext = {
  model: tfl.LayersModel;
  vars: tf.Variable[];
  opt: Optimizer;
  lossFn: LossFn;
  transform: Transform;
  bar: Progress;
  /** The per-step learning rate (warm-up + cosine), or null when the rate is set once per epoch. */
  lrAt: ((epoch: number, step: number) => number) | null;
  /** Mixup's α (0: off); the draws come from `rng`'s mixup stream. */
  mixup: number;
  rng: RunRandom;
};

/** An epoch's progress: batches done and the sums of loss × images, correct predictions and images. */
type EpochSums = { step: number; lossSum: number; correct: number; seen: number };

/**
 * One epoch of training steps over `split` in the seeded batch order (run under the epoch's random stream, so
 * that the tfjs-internal draws all come from it), continuing from `from` (batch `from.step`, with its sums).
 * `afterStep` runs after each step with the sums so far. Returns the epoch's sums.
 */
async function trainEpoch(
  split: Split,
  epoch: number,
  order: { batchSize: number; seed: number },
  { model, vars, opt, lossFn, transform, bar, lrAt, mixup, rng }: StepContext,
  from: EpochSums,
  afterStep: (sums: EpochSums) => Promise<void>,
): Promise<EpochSums> {
  let { lossSum, correct, seen, step } = from;
  for (const { x, y } of batches(split, { ...order, shuffle: true, fromBatch: step })) {
    if (lrAt) opt.lr = lrAt(epoch, step);
    let xa = transform(x, [epoch, step]);
    const b = y.shape[0];
    const mix = mixup > 0 ? mixupDraw(b, mixup, rng.mixupSeed(epoch, step)) : null;
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
    await afterStep({ step, lossSum, correct, seen });
  }
  return { step, lossSum, correct, seen };
}

/** One epoch summary line. */
function formatRow(r: HistoryRow, epochs: number): string {
  return `epoch ${r.epoch}/${epochs}  train_loss ${r.train_loss.toFixed(4)} acc ${r.train_acc.toFixed(4)}  ` +
    `val_loss ${r.val_loss.toFixed(4)} acc ${r.val_acc.toFixed(4)}  lr ${r.lr.toExponential(2)}  ` +
    `${r.seconds.toFixed(1)}s ${r.img_s.toFixed(0)} img/s`;
}
