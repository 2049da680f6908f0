/**
 * Resume state: `last.safetensors` holds, after each complete epoch and every few minutes inside one (the
 * training loop's `saveEverySeconds`), all model weights (trainable and BatchNorm statistics), the optimizer
 * state and the loop state (JSON metadata), in one file written atomically, so a kill can never pair one
 * step's weights with another's moments. The optimizer's slots are
 * `<stateName>_<slot>.<i>` (AdamW: `adam_m.<i>` / `adam_v.<i>`; SGD: `sgd_buf.<i>`; i: the index among the
 * trainable weights) with its step count in the metadata `<stateName>_step`. Also the clean-up of temporary files
 * that killed writes leave in a run folder.
 */
import * as tf from "@tensorflow/tfjs-core";
import type * as tfl from "@tensorflow/tfjs-layers";
import { relative } from "node:path";
import {
  readSafetensors,
  type SafeTensor,
  SafetensorsError,
  type TensorToWrite,
  toFloat32,
  writeSafetensors,
} from "../models/weights/safetensors.ts";
import type { Optimizer } from "../train/optim.ts";
import { removeTempsIn } from "../util/fs.ts";
import type { HistoryRow } from "./files.ts";
import { RunError, type RunPaths } from "./paths.ts";

/** The training loop's state after an epoch. */
export type LoopState = {
  /** 0-based index of the next epoch to run. */
  nextEpoch: number;
  history: HistoryRow[];
  bestValAcc: number;
  /** 1-based epoch of the best checkpoint, -1 before the first. */
  bestEpoch: number;
  /** Epochs since the last improvement (early stopping). */
  badEpochs: number;
  /** Early-stopped: no epoch is left to run. */
  done: boolean;
  /** Sessions (first start + resumes) that trained this run so far (absent in states saved before). */
  sessions?: number;
  /** Set when the state was saved inside epoch `nextEpoch`: how far it got, so a resume continues it there. */
  partial?: PartialEpoch;
};

/** An epoch stopped between two batches: what a resume needs to finish it as an uninterrupted run would. */
export type PartialEpoch = {
  /** Batches done (the next one to train is this index of the epoch's order). */
  step: number;
  /** The epoch's sums so far: loss × images, correct predictions, images. */
  lossSum: number;
  correct: number;
  seen: number;
  /** The state of the epoch's random stream for tfjs's draws (lib/util/rng.ts `RunRandom.steps`). */
  random: number;
  /** Seconds (wall and process CPU) this epoch has trained so far, over all sessions. */
  seconds: number;
  cpuSeconds: number;
  /** The run's wall and CPU totals at the save (history rows' `wall_total_s` / `cpu_total_s`). */
  wallTotal: number;
  cpuTotal: number;
};

/** The state before the first epoch. */
export function initialState(): LoopState {
  return { nextEpoch: 0, history: [], bestValAcc: -1, bestEpoch: -1, badEpochs: 0, done: false, sessions: 1 };
}

const FORMAT = "fer-deno-weights-v1";
const FLOAT_DTYPES = new Set(["F32", "F16", "BF16", "F64"]);

/**
 * Saves all model weights (trainable and BatchNorm statistics), in `model.weights` order, to a safetensors file
 * atomically. Names are `weight.<index>`; `extra` tensors and `metadata` strings are added.
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
  await writeSafetensors(path, tensors, { format: FORMAT, names, ...metadata });
}

/** A tensor of a weights file as float32, refusing integer and boolean dtypes (never weights). */
function floatValues(path: string, t: SafeTensor, what: string): Float32Array {
  if (!FLOAT_DTYPES.has(t.dtype)) {
    throw new RunError(
      `${path}: ${what} is ${t.dtype}; weights must be a float type (F32, F16, BF16 or F64)`,
    );
  }
  return toFloat32(t);
}

async function readFile(path: string, filter: (n: string) => boolean) {
  try {
    return await readSafetensors(path, { filter });
  } catch (e) {
    if (e instanceof SafetensorsError) throw new RunError(e.message);
    if (e instanceof Deno.errors.NotFound) throw new RunError(`${path}: file not found`);
    throw e;
  }
}

/** Loads weights written by {@link saveWeights} into a model of the same architecture (shapes checked). */
export async function loadWeights(path: string, model: tfl.LayersModel): Promise<Record<string, string>> {
  const file = await readFile(path, (n) => n.startsWith("weight."));
  const ws = model.weights;
  if (file.tensors.size !== ws.length) {
    throw new RunError(`${path}: ${file.tensors.size} weight tensors, the model has ${ws.length}`);
  }
  const arrays = ws.map((w, i) => {
    const t = file.tensors.get(`weight.${i}`);
    if (!t || t.shape.join("x") !== w.shape.join("x")) {
      throw new RunError(
        `${path}: weight ${i} (${w.originalName}) has shape [${t?.shape}] in the file, [${w.shape}] in the model`,
      );
    }
    return floatValues(path, t, `weight ${i} (${w.originalName})`);
  });
  const values = arrays.map((a, i) => tf.tensor(a, ws[i].shape as number[]));
  model.setWeights(values);
  tf.dispose(values);
  return file.metadata ?? {};
}

/** Writes weights + optimizer state + loop state to `paths.last`, atomically. */
export async function saveState(
  paths: RunPaths,
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
  const metadata = { state: JSON.stringify(state), [`${opt.stateName}_step`]: String(opt.stepCount) };
  await saveWeights(paths.last, model, metadata, extra);
}

function isInt(v: unknown): v is number {
  return Number.isInteger(v);
}

/** Parses and checks the loop state stored in a resume file's metadata; errors name the file. */
function parseState(path: string, metadata: Record<string, string> | null): LoopState {
  if (!metadata || metadata.format !== FORMAT || metadata.state === undefined) {
    throw new RunError(
      `${path}: not a resume state (no "${metadata ? "state" : "__metadata__"}" in its header); ` +
        `delete it to restart the run from epoch 1`,
    );
  }
  let s: LoopState;
  try {
    s = JSON.parse(metadata.state);
  } catch (e) {
    throw new RunError(`${path}: the loop state is not valid JSON (${(e as Error).message})`);
  }
  const ok = s && typeof s === "object" && isInt(s.nextEpoch) && s.nextEpoch >= 0 &&
    Array.isArray(s.history) && typeof s.bestValAcc === "number" && isInt(s.bestEpoch) &&
    isInt(s.badEpochs) && typeof s.done === "boolean";
  const p = s?.partial;
  const partialOk = p === undefined || (p !== null && typeof p === "object" && isInt(p.step) && p.step >= 0 &&
    isInt(p.random) && [p.lossSum, p.correct, p.seen, p.seconds, p.cpuSeconds, p.wallTotal, p.cpuTotal]
    .every((v) => typeof v === "number" && Number.isFinite(v)));
  if (!ok || !partialOk) {
    throw new RunError(`${path}: the loop state has missing or malformed fields: ${metadata.state}`);
  }
  const steps = Object.keys(metadata).filter((k) => k.endsWith("_step"));
  if (steps.length !== 1 || !/^\d+$/.test(metadata[steps[0]])) {
    const found = steps.map((k) => `"${k}"`).join(", ") || "none";
    throw new RunError(`${path}: missing or malformed optimizer step "<optimizer>_step" (found: ${found})`);
  }
  return s;
}

/** The loop state in `paths.last` (checked; nothing is loaded into a model). */
export async function readState(paths: RunPaths): Promise<LoopState> {
  const file = await readFile(paths.last, () => false);
  return parseState(paths.last, file.metadata);
}

/**
 * Restores what {@link saveState} wrote into `model` and `opt`; returns the loop state. A state saved by
 * another optimizer than `opt` is refused with an error that says so.
 */
export async function loadState(paths: RunPaths, model: tfl.LayersModel, opt: Optimizer): Promise<LoopState> {
  const path = paths.last;
  const state = await readState(paths);
  const meta = await loadWeights(path, model);
  const prefix = `${opt.stateName}_`;
  if (meta[`${prefix}step`] === undefined) {
    throw new RunError(
      `${path}: no ${opt.stateName} optimizer state (was the run trained with another optimizer?)`,
    );
  }
  const file = await readFile(path, (n) => n.startsWith(prefix));
  const slots: Record<string, Record<string, Float32Array>> = {};
  model.trainableWeights.forEach((w, i) => {
    const name = (w.read() as tf.Variable).name;
    const found = [...file.tensors.keys()].filter((k) => k.endsWith(`.${i}`));
    if (found.length === 0) {
      throw new RunError(`${path}: no optimizer state for weight ${i} (${w.originalName})`);
    }
    for (const k of found) {
      const slot = k.slice(prefix.length, k.lastIndexOf("."));
      (slots[slot] ??= {})[name] = floatValues(path, file.tensors.get(k)!, k);
    }
  });
  opt.importSlots(Number(meta[`${prefix}step`]), slots);
  return state;
}

/**
 * Removes the temporary files that writes interrupted by a kill left in a run folder (its files and its best/
 * checkpoint); returns their names relative to the run folder. Called when a run starts or resumes.
 */
export function removeRunTemps(paths: RunPaths): string[] {
  return [...removeTempsIn(paths.dir), ...removeTempsIn(paths.best)].map((p) => relative(paths.dir, p));
}
