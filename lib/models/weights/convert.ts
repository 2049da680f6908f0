/**
 * Assigns a PyTorch state dict (from safetensors) to the variables of a tfjs-layers model.
 *
 * The model side supplies a plain name map, `{ torchName, variable, kind }[]` (e.g. from `timmNameMap(model)` in
 * lib/models), so this module knows nothing about any architecture. `kind` says how to change the layout:
 *
 * - `conv`: torch `[out, in, kh, kw]` (OIHW) to tf `[kh, kw, in, out]` (HWIO);
 * - `depthwise`: torch `[C*mult, 1, kh, kw]` to tf `[kh, kw, C, mult]` (mult taken from the tf variable);
 * - `linear`: torch `[out, in]` to tf `[in, out]`;
 * - `param`: unchanged (biases, norm scales/shifts, running statistics, layer scales).
 *
 * Everything is converted and checked before the first variable is written, so a failed load leaves the model
 * untouched.
 */

import * as tf from "@tensorflow/tfjs-core";
import type { LayerVariable } from "@tensorflow/tfjs-layers";
import {
  readSafetensors,
  readSafetensorsHeader,
  type SafeTensor,
  type SafetensorsFile,
  toFloat32,
} from "./safetensors.ts";
import { type ResolveOptions, resolveWeights } from "./hub.ts";

/** How a torch parameter's layout maps to tf. */
export type ParamKind = "conv" | "depthwise" | "linear" | "param";

/** One model variable and the torch state-dict key that fills it. */
export interface NameMapEntry {
  torchName: string;
  /** The tfjs variable, or its name (`LayerVariable.name`, or `originalName` when that is unique). */
  variable: LayerVariable | string;
  kind: ParamKind;
}

/** Anything with tfjs-layers weights (a `tf.LayersModel`, a layer). */
export interface HasWeights {
  readonly weights: LayerVariable[];
}

/** A state dict: a parsed safetensors file, or its tensors by name. */
export type StateDict = SafetensorsFile | Map<string, SafeTensor> | Record<string, SafeTensor>;

/** A converted parameter in tf layout. */
export interface TfParam {
  shape: number[];
  values: Float32Array;
}

/** Raised for any mismatch between a state dict and a model (the message lists every problem). */
export class StateDictError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "StateDictError";
  }
}

function fmt(shape: readonly (number | null)[]): string {
  return `[${shape.join(", ")}]`;
}

/**
 * Converts one torch tensor to tf layout. `targetShape` (the tf variable's shape) is needed only to split the
 * depthwise output channels into `C * mult`; without it mult is 1.
 */
export function torchToTf(
  name: string,
  tensor: SafeTensor | TfParam,
  kind: ParamKind,
  targetShape?: readonly number[],
): TfParam {
  const src = "values" in tensor ? tensor.values : toFloat32(tensor);
  const s = tensor.shape;
  const bad = (want: string): never => {
    throw new StateDictError(`"${name}": ${kind} weight must be ${want} in torch layout, got ${fmt(s)}`);
  };
  switch (kind) {
    case "param":
      return { shape: [...s], values: src };
    case "linear": {
      if (s.length !== 2) bad("2-D [out, in]");
      const [o, i] = s;
      const out = new Float32Array(o * i);
      for (let a = 0; a < o; a++) for (let b = 0; b < i; b++) out[b * o + a] = src[a * i + b];
      return { shape: [i, o], values: out };
    }
    case "conv": {
      if (s.length !== 4) bad("4-D [out, in, kh, kw]");
      const [o, i, kh, kw] = s;
      const out = new Float32Array(o * i * kh * kw);
      for (let a = 0; a < o; a++) {
        for (let b = 0; b < i; b++) {
          for (let h = 0; h < kh; h++) {
            for (let w = 0; w < kw; w++) {
              out[((h * kw + w) * i + b) * o + a] = src[((a * i + b) * kh + h) * kw + w];
            }
          }
        }
      }
      return { shape: [kh, kw, i, o], values: out };
    }
    case "depthwise": {
      if (s.length !== 4 || s[1] !== 1) bad("4-D [C*mult, 1, kh, kw]");
      const [cm, , kh, kw] = s;
      const mult = targetShape && targetShape.length === 4 ? targetShape[3] : 1;
      if (!(mult >= 1) || cm % mult !== 0) {
        throw new StateDictError(
          `"${name}": ${cm} depthwise output channels are not a multiple of depth multiplier ${mult}`,
        );
      }
      const c = cm / mult;
      const out = new Float32Array(cm * kh * kw);
      // torch output channel k = ch * mult + m reads input channel ch; tf keeps the same order in [.., C, mult].
      for (let k = 0; k < cm; k++) {
        for (let h = 0; h < kh; h++) {
          for (let w = 0; w < kw; w++) out[(h * kw + w) * cm + k] = src[(k * kh + h) * kw + w];
        }
      }
      return { shape: [kh, kw, c, mult], values: out };
    }
    default:
      throw new StateDictError(`"${name}": unknown parameter kind ${JSON.stringify(kind)}`);
  }
}

function stateDictMap(sd: StateDict): Map<string, SafeTensor> {
  if (sd instanceof Map) return sd;
  if ("tensors" in sd && sd.tensors instanceof Map && "source" in sd) return (sd as SafetensorsFile).tensors;
  return new Map(Object.entries(sd as Record<string, SafeTensor>));
}

/** Options for {@link loadStateDict}. */
export interface LoadStateDictOptions {
  /** Fail on missing keys, unexpected keys and model variables absent from the map (default true). */
  strict?: boolean;
  /** Torch-name prefixes to leave at their fresh initialization (e.g. `["head.fc"]` for a new classifier). */
  skipPrefixes?: string[];
  /** State-dict keys with no tf counterpart, never reported as unexpected (default: `num_batches_tracked`). */
  ignore?: RegExp;
}

/** What {@link loadStateDict} did. */
export interface LoadReport {
  /** Torch names assigned to variables. */
  loaded: string[];
  /** Torch names left at fresh init because of `skipPrefixes`. */
  skipped: string[];
  /** Non-strict only: map entries absent from the state dict (their variables keep their values). */
  missing: string[];
  /** Non-strict only: state-dict keys that no map entry uses. */
  unexpected: string[];
  /** Non-strict only: model variables that no map entry names. */
  unmapped: string[];
}

/** Whether `name` equals one of `prefixes` or starts with `prefix + "."`. */
export function matchesPrefix(name: string, prefixes: readonly string[]): boolean {
  return prefixes.some((p) => name === p || name.startsWith(p.endsWith(".") ? p : `${p}.`));
}

function listing(title: string, items: string[], max = 25): string {
  if (!items.length) return "";
  const shown = items.slice(0, max).map((s) => `  ${s}`).join("\n");
  const more = items.length > max ? `\n  ... and ${items.length - max} more` : "";
  return `\n${title} (${items.length}):\n${shown}${more}`;
}

function resolveVariable(model: HasWeights, v: LayerVariable | string): LayerVariable | null {
  if (typeof v !== "string") return v;
  const weights = model.weights;
  const exact = weights.find((w) => w.name === v);
  if (exact) return exact;
  const byOriginal = weights.filter((w) => w.originalName === v);
  return byOriginal.length === 1 ? byOriginal[0] : null;
}

/**
 * Checks a state dict against a model through `nameMap`, converts every parameter, and, when everything fits,
 * writes them into the model's variables. Shape mismatches, unknown variables and duplicate entries always throw;
 * with `strict` (default) missing keys, unexpected keys and unmapped model variables throw as well. The error
 * lists every problem found.
 */
export function loadStateDict(
  model: HasWeights,
  stateDict: StateDict,
  nameMap: readonly NameMapEntry[],
  opts: LoadStateDictOptions = {},
): LoadReport {
  const strict = opts.strict ?? true;
  const skip = opts.skipPrefixes ?? [];
  const ignore = opts.ignore ?? /(^|\.)num_batches_tracked$/;
  const sd = stateDictMap(stateDict);

  const problems: string[] = [];
  const unknownVars: string[] = [];
  const duplicates: string[] = [];
  const mismatched: string[] = [];
  const missing: string[] = [];
  const skipped: string[] = [];
  const seenTorch = new Set<string>();
  const seenVars = new Set<LayerVariable>();
  const work: { torchName: string; variable: LayerVariable; param: TfParam }[] = [];

  for (const e of nameMap) {
    const variable = resolveVariable(model, e.variable);
    if (!variable) {
      unknownVars.push(
        `${e.torchName} -> ${String(e.variable)} (no such variable in the model, or ambiguous)`,
      );
      continue;
    }
    if (seenTorch.has(e.torchName)) duplicates.push(`torch name ${e.torchName} is mapped twice`);
    if (seenVars.has(variable)) duplicates.push(`variable ${variable.name} is mapped twice`);
    seenTorch.add(e.torchName);
    seenVars.add(variable);
    if (matchesPrefix(e.torchName, skip)) {
      skipped.push(e.torchName);
      continue;
    }
    const t = sd.get(e.torchName);
    if (!t) {
      missing.push(`${e.torchName} (for ${variable.name})`);
      continue;
    }
    let param: TfParam;
    try {
      param = torchToTf(e.torchName, t, e.kind, variable.shape as number[]);
    } catch (err) {
      mismatched.push(`${(err as Error).message} (for ${variable.name} ${fmt(variable.shape)})`);
      continue;
    }
    const want = variable.shape;
    if (param.shape.length !== want.length || param.shape.some((d, k) => d !== want[k])) {
      mismatched.push(
        `${e.torchName}: torch ${fmt(t.shape)} -> ${e.kind} ${fmt(param.shape)}, but ${variable.name} is ${
          fmt(want)
        }`,
      );
      continue;
    }
    work.push({ torchName: e.torchName, variable, param });
  }
  for (const name of sd.keys()) {
    if (matchesPrefix(name, skip) && !seenTorch.has(name)) skipped.push(name);
  }
  const unexpected = [...sd.keys()].filter((k) =>
    !seenTorch.has(k) && !ignore.test(k) && !matchesPrefix(k, skip)
  );
  const unmapped = model.weights.filter((w) => !seenVars.has(w)).map((w) => `${w.name} ${fmt(w.shape)}`);

  problems.push(
    listing("unknown variables in the name map", unknownVars),
    listing("duplicate name-map entries", duplicates),
    listing("shape mismatches", mismatched),
  );
  if (strict) {
    problems.push(
      listing("missing keys (in the name map, not in the state dict)", missing),
      listing("unexpected keys (in the state dict, not in the name map)", unexpected),
      listing("model variables not in the name map", unmapped),
    );
  }
  const text = problems.join("");
  if (text) {
    const src = "source" in stateDict && typeof stateDict.source === "string"
      ? ` from ${stateDict.source}`
      : "";
    throw new StateDictError(`cannot load state dict${src}; nothing was assigned:${text}`);
  }

  for (const w of work) {
    tf.tidy(() => {
      w.variable.write(tf.tensor(w.param.values, w.param.shape, w.variable.dtype));
    });
  }
  return {
    loaded: work.map((w) => w.torchName),
    skipped,
    missing: strict ? [] : missing,
    unexpected: strict ? [] : unexpected,
    unmapped: strict ? [] : unmapped,
  };
}

/**
 * Classifier prefix of timm checkpoints by model family: `classifier` for EfficientNet, `head.fc` for ConvNeXt;
 * null when unknown.
 */
export function timmClassifierPrefix(tag: string): string | null {
  const arch = tag.split(".")[0];
  if (/^(tf_)?efficientnet/.test(arch) || /^mobilenetv[23]/.test(arch)) return "classifier";
  if (/^convnext/.test(arch)) return "head.fc";
  return null;
}

/** Options for {@link loadPretrained}: where to find the file (see hub.ts) and how to map it. */
export interface PretrainedOptions<M extends HasWeights = HasWeights> extends ResolveOptions {
  /** The name map, or a function building it from the model (e.g. `timmNameMap` from lib/models). */
  nameMap: readonly NameMapEntry[] | ((model: M) => readonly NameMapEntry[]);
  /** See {@link LoadStateDictOptions.strict} (default true). */
  strict?: boolean;
  /** Checkpoint classifier prefix (default from the tag: {@link timmClassifierPrefix}). */
  classifier?: string | null;
  /**
   * `"auto"` (default, like timm): keep the model's fresh classifier when its class count differs from the
   * checkpoint's (or the map has no classifier entry), load it when equal. `true`: always keep fresh.
   * `false`: always load.
   */
  reinitClassifier?: "auto" | boolean;
}

/** The load report plus where the weights came from. */
export interface PretrainedReport extends LoadReport {
  path: string;
  source: "path" | "cache" | "download";
  tag: string;
  classifierReinitialized: boolean;
}

/**
 * Loads timm pretrained weights for `tag` into `model`: resolves `model.safetensors` (explicit path, HF cache,
 * download), checks the header, reads only the tensors needed (not a classifier that will be replaced), converts
 * them and assigns them (strict by default). Classifier weights are skipped when the model's class count differs
 * from the checkpoint's, as timm does for `num_classes != 1000`.
 */
export async function loadPretrained<M extends HasWeights>(
  model: M,
  tag: string,
  opts: PretrainedOptions<M>,
): Promise<PretrainedReport> {
  const resolved = await resolveWeights(tag, opts);
  const header = await readSafetensorsHeader(resolved.path);
  const nameMap = typeof opts.nameMap === "function" ? opts.nameMap(model) : opts.nameMap;
  const prefix = opts.classifier === undefined ? timmClassifierPrefix(tag) : opts.classifier;
  let reinit = false;
  if (prefix) {
    const mode = opts.reinitClassifier ?? "auto";
    if (mode === true) reinit = true;
    else if (mode === "auto") {
      const entry = nameMap.find((e) => e.torchName === `${prefix}.weight`);
      const info = header.tensors.find((t) => t.name === `${prefix}.weight`);
      const variable = entry ? resolveVariable(model, entry.variable) : null;
      if (!entry || !variable) reinit = true;
      else if (info) {
        const ckptClasses = info.shape[0];
        const modelClasses = variable.shape[variable.shape.length - 1];
        reinit = ckptClasses !== modelClasses;
      }
    }
  }
  const skipPrefixes = reinit && prefix ? [prefix] : [];
  const sd = await readSafetensors(resolved.path, { filter: (n) => !matchesPrefix(n, skipPrefixes) });
  const report = loadStateDict(model, sd, nameMap, { strict: opts.strict, skipPrefixes });
  return { ...report, path: resolved.path, source: resolved.source, tag, classifierReinitialized: reinit };
}
