/**
 * Checkpoints in the TF.js layers format: a directory with `model.json` (topology + weights manifest) and one
 * weights file, loadable in a browser with `tf.loadLayersModel(".../model.json")` (after importing
 * lib/models/layers.ts, which registers the custom `LayerScale` layer).
 *
 * Atomic saves: the weights go to `weights-<sha256 prefix>.bin` (a new name whenever the content changes), each
 * file is written to a temp name, fsynced and renamed into place (lib/util/fs.ts `writeAtomic`), and `model.json` is renamed last. That rename
 * is the commit point: a save interrupted at any moment leaves either the previous checkpoint (its model.json
 * and the weights file it names are untouched) or the new one, never a mix. Weights files no longer named by
 * model.json are removed after the commit. (One writer per directory at a time.)
 *
 * model.json also carries `ferCheckpoint: { version, weightsBytes, weightsSha256 }`, which loading checks, so
 * truncated or corrupted weights are reported as such, with the file name. Caller metadata (model name,
 * options, epoch, ...) goes in the standard `userDefinedMetadata` field.
 */

import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import { dirname, join } from "node:path";
import { isTempName, writeAtomic } from "../util/fs.ts";
import "./layers.ts"; // registers LayerScale for deserialization

/** Any checkpoint problem; the message names the file. */
export class CheckpointError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "CheckpointError";
  }
}

/** Options for {@link saveCheckpoint}. */
export interface SaveOptions {
  /** JSON-serializable metadata stored as `userDefinedMetadata` (e.g. `{ model: "fer_cnn", epoch: 3 }`). */
  metadata?: Record<string, unknown>;
  /** Test hook: runs after the weights file is in place and before model.json is committed. */
  beforeCommit?: () => Promise<void> | void;
}

/** What {@link saveCheckpoint} wrote. */
export interface SaveResult {
  dir: string;
  modelJson: string;
  weights: string;
  weightsBytes: number;
  weightsSha256: string;
}

/** A loaded checkpoint's description. */
export interface CheckpointInfo {
  /** Path of model.json. */
  modelJson: string;
  /** Paths of the weights files. */
  weights: string[];
  /** `userDefinedMetadata` (or `{}`). */
  metadata: Record<string, unknown>;
}

const MODEL_JSON = "model.json";
const DTYPE_BYTES: Record<string, number> = { float32: 4, int32: 4, bool: 1 };

async function sha256Hex(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return [...d].map((b) => b.toString(16).padStart(2, "0")).join("");
}

function toBytes(data: tf.io.WeightData | undefined): Uint8Array<ArrayBuffer> {
  if (data === undefined) return new Uint8Array(0);
  return new Uint8Array(tf.io.CompositeArrayBuffer.join(data));
}

/**
 * Saves `model` to directory `dir` (created if needed) atomically: model.json + `weights-<hash>.bin`.
 * Replaces an existing checkpoint there.
 */
export async function saveCheckpoint(
  model: tfl.LayersModel,
  dir: string,
  opts: SaveOptions = {},
): Promise<SaveResult> {
  let artifacts: tf.io.ModelArtifacts | null = null;
  await model.save(tf.io.withSaveHandler((a) => {
    artifacts = a;
    return Promise.resolve({ modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: "JSON" } });
  }));
  const art = artifacts as tf.io.ModelArtifacts | null;
  if (!art || !art.modelTopology || !art.weightSpecs) {
    throw new CheckpointError(`${dir}: model produced no artifacts`);
  }
  const bytes = toBytes(art.weightData);
  const hash = await sha256Hex(bytes);
  const weightsName = `weights-${hash.slice(0, 16)}.bin`;
  const json = {
    format: "layers-model",
    generatedBy: art.generatedBy,
    convertedBy: null,
    modelTopology: art.modelTopology,
    weightsManifest: [{ paths: [weightsName], weights: art.weightSpecs }],
    userDefinedMetadata: opts.metadata ?? {},
    ferCheckpoint: { version: 1, weightsBytes: bytes.length, weightsSha256: hash },
  };
  await Deno.mkdir(dir, { recursive: true });
  const weightsPath = join(dir, weightsName);
  await writeAtomic(weightsPath, bytes, { fsync: true });
  await opts.beforeCommit?.();
  const modelJson = join(dir, MODEL_JSON);
  await writeAtomic(modelJson, JSON.stringify(json), { fsync: true });
  // Committed: drop weights files (and temp files of interrupted saves) that model.json no longer names.
  for await (const e of Deno.readDir(dir)) {
    const stale = (/^weights-[0-9a-f]{16}\.bin$/.test(e.name) && e.name !== weightsName) ||
      isTempName(e.name);
    if (e.isFile && stale) await Deno.remove(join(dir, e.name)).catch(() => {});
  }
  return { dir, modelJson, weights: weightsPath, weightsBytes: bytes.length, weightsSha256: hash };
}

interface ParsedCheckpoint {
  info: CheckpointInfo;
  artifacts: tf.io.ModelArtifacts;
  specs: tf.io.WeightsManifestEntry[];
}

function resolveModelJson(path: string): string {
  return path.endsWith(".json") ? path : join(path, MODEL_JSON);
}

async function readCheckpoint(path: string): Promise<ParsedCheckpoint> {
  const modelJson = resolveModelJson(path);
  let text: string;
  try {
    text = await Deno.readTextFile(modelJson);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new CheckpointError(`${modelJson}: no checkpoint (file not found)`);
    }
    throw new CheckpointError(`${modelJson}: cannot read: ${(e as Error).message}`);
  }
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new CheckpointError(
      `${modelJson}: not valid JSON (${(e as Error).message}); the checkpoint is corrupt`,
    );
  }
  const bad = (what: string): never => {
    throw new CheckpointError(`${modelJson}: not a TF.js layers model: ${what}`);
  };
  if (!json || typeof json !== "object" || Array.isArray(json)) bad("top level is not an object");
  if (!json.modelTopology || typeof json.modelTopology !== "object") bad("missing modelTopology");
  const manifest = json.weightsManifest;
  if (!Array.isArray(manifest)) bad("missing weightsManifest");
  const dir = dirname(modelJson);
  const specs: tf.io.WeightsManifestEntry[] = [];
  const weightPaths: string[] = [];
  const chunks: Uint8Array[] = [];
  for (const group of manifest as Record<string, unknown>[]) {
    if (!group || !Array.isArray(group.paths) || !Array.isArray(group.weights)) {
      bad("malformed weightsManifest");
    }
    let expected = 0;
    for (const s of group.weights as tf.io.WeightsManifestEntry[]) {
      if (!s || typeof s.name !== "string" || !Array.isArray(s.shape) || !(s.dtype in DTYPE_BYTES)) {
        bad(`malformed weight entry ${JSON.stringify(s)?.slice(0, 200)}`);
      }
      if (s.quantization) bad(`quantized weight ${s.name} is not supported`);
      if (!s.shape.every((d) => Number.isInteger(d) && d >= 0)) bad(`bad shape for ${s.name}`);
      expected += s.shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[s.dtype];
      specs.push(s);
    }
    let got = 0;
    for (const p of group.paths as unknown[]) {
      if (typeof p !== "string" || p.includes("/") || p.includes("\\") || p.startsWith(".")) {
        bad(`weights path ${JSON.stringify(p)} must be a plain file name beside model.json`);
      }
      const wp = join(dir, p as string);
      let data: Uint8Array;
      try {
        data = await Deno.readFile(wp);
      } catch (e) {
        const why = e instanceof Deno.errors.NotFound ? "file not found" : (e as Error).message;
        throw new CheckpointError(`${wp}: cannot read weights named by ${modelJson}: ${why}`);
      }
      weightPaths.push(wp);
      chunks.push(data);
      got += data.length;
    }
    if (got !== expected) {
      const which = weightPaths.slice(-(group.paths as unknown[]).length).join(", ");
      throw new CheckpointError(
        `${which}: ${got < expected ? "truncated" : "too long"}: ${got} bytes, but ${modelJson} describes ` +
          `${expected} bytes of weights; the checkpoint is corrupt`,
      );
    }
  }
  const all = new Uint8Array(chunks.reduce((a, c) => a + c.length, 0));
  let off = 0;
  for (const c of chunks) {
    all.set(c, off);
    off += c.length;
  }
  const fc = json.ferCheckpoint as { weightsSha256?: string } | undefined;
  if (fc?.weightsSha256 && (await sha256Hex(all)) !== fc.weightsSha256) {
    throw new CheckpointError(
      `${
        weightPaths.join(", ")
      }: SHA-256 differs from the one recorded in ${modelJson}; the weights are corrupt`,
    );
  }
  const metadata = (json.userDefinedMetadata ?? {}) as Record<string, unknown>;
  return {
    info: { modelJson, weights: weightPaths, metadata },
    specs,
    artifacts: {
      modelTopology: json.modelTopology as tf.io.ModelArtifacts["modelTopology"],
      format: json.format as string | undefined,
      generatedBy: json.generatedBy as string | undefined,
      weightSpecs: specs,
      weightData: all.buffer,
    },
  };
}

/** Loads a checkpoint (directory or model.json path) as a new model. Throws {@link CheckpointError}. */
export async function loadCheckpoint(
  path: string,
): Promise<{ model: tfl.LayersModel; info: CheckpointInfo }> {
  const ck = await readCheckpoint(path);
  try {
    const model = await tfl.loadLayersModel(tf.io.fromMemory(ck.artifacts), { strict: true });
    return { model, info: ck.info };
  } catch (e) {
    throw new CheckpointError(`${ck.info.modelJson}: cannot build the model: ${(e as Error).message}`);
  }
}

/**
 * Loads a checkpoint's weights into an existing model (e.g. one from `createModel`), matching weights by name.
 * Missing, unexpected or differently shaped weights are a {@link CheckpointError} listing each, and nothing is
 * assigned then.
 */
export async function loadCheckpointWeights(model: tfl.LayersModel, path: string): Promise<CheckpointInfo> {
  const ck = await readCheckpoint(path);
  const specByName = new Map(ck.specs.map((s) => [s.name, s]));
  const missing: string[] = [], unexpected: string[] = [], mismatched: string[] = [];
  const seen = new Set<string>();
  for (const w of model.weights) {
    const s = specByName.get(w.originalName);
    seen.add(w.originalName);
    if (!s) missing.push(`${w.originalName} [${w.shape}]`);
    else if (s.shape.length !== w.shape.length || s.shape.some((d, i) => d !== w.shape[i])) {
      mismatched.push(`${w.originalName} is [${s.shape}] in the checkpoint, [${w.shape}] in the model`);
    }
  }
  for (const s of ck.specs) if (!seen.has(s.name)) unexpected.push(`${s.name} [${s.shape}]`);
  const section = (title: string, items: string[]) =>
    items.length
      ? `\n${title} (${items.length}):\n  ${items.slice(0, 10).join("\n  ")}${
        items.length > 10 ? `\n  ... ${items.length - 10} more` : ""
      }`
      : "";
  const text = section("shape mismatches", mismatched) + section("missing in checkpoint", missing) +
    section("not in the model", unexpected);
  if (text) throw new CheckpointError(`${ck.info.modelJson}: does not match model "${model.name}":${text}`);
  const tensors = tf.io.decodeWeights(ck.artifacts.weightData!, ck.specs);
  try {
    for (const w of model.weights) w.write(tensors[w.originalName]);
  } finally {
    tf.dispose(Object.values(tensors));
  }
  return ck.info;
}
