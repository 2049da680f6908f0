/**
 * Export of a trained run for the browser: a TensorFlow.js LayersModel folder (`model.json` + weight shards
 * `group1-shardNofM.bin`, the layout tfjs-converter writes), loadable with `tf.loadLayersModel(url)`.
 * `userDefinedMetadata` carries what a user needs to feed it: the class names, the preprocessing
 * (lib/faces/preprocess.ts: crop framing, gray weights, sizes, normalisation), the test-time augmentation to
 * apply to each face (by default the one chosen on validation) and where it came from.
 * Models with ConvNeXt's `LayerScale` need lib/models/layers.ts imported before loading (the demo does). The
 * exported graph is for inference: batch norms are folded into their convolutions (lib/models/fold.ts).
 * An ensemble folder exports as one such folder per member (`member-<i>/`, each with the TTA the ensemble
 * recorded for it) and an `ensemble.json` listing them; the demo averages their probabilities.
 */
import * as tf from "@tensorflow/tfjs-core";
import { basename, join } from "node:path";
import { loadRunConfig, loadRunModel, readTestReport, RunError, runPaths } from "../runs/runs.ts";
import { checkMemberClasses, ensembleMembers, ensembleValAccuracy, isEnsembleDir } from "../eval/ensemble.ts";
import { type Preprocessing, preprocessingOf } from "../faces/preprocess.ts";
import { forInference } from "./fold.ts";
import { accuracyUnder, type ResolvedTta, resolveTta } from "../eval/tta.ts";

/** `userDefinedMetadata` of an exported model. */
export interface ExportMetadata {
  format: "fer-deno-export-v1";
  classes: string[];
  preprocessing: Preprocessing;
  /**
   * Test-time augmentation of each face (lib/faces/pipeline.ts `Classifier.tta`): the run's choice on validation
   * unless the export named one. Absent in exports made before it existed (then the single centre view).
   */
  tta?: ResolvedTta;
  /**
   * What the model scored under that TTA, from the run's evaluations (lib/eval/tta.ts `accuracyUnder`): on its
   * validation split and on the test split; null where that evaluation was not made. Absent in older exports.
   */
  accuracy?: { validation: number | null; test: number | null };
  /** Model name (lib/models/registry.ts), run name and the run's best epoch, when known. */
  model: string;
  run: string;
  epoch: number | null;
  exportedAt: string;
}

/** What {@link exportRun} wrote. */
export interface ExportResult {
  modelJson: string;
  shards: string[];
  metadata: ExportMetadata;
}

/** Default shard size, as tensorflowjs_converter uses (4 MiB): small enough for browser caches. */
export const SHARD_BYTES = 4 * 1024 * 1024;

/** Options of {@link exportRun}. */
export interface ExportOptions {
  /** Weight shard size in bytes (default {@link SHARD_BYTES}). */
  shardBytes?: number;
  /** `--tta`: `auto` (default: the mode chosen on validation) or a mode (lib/eval/tta.ts `resolveTta`). */
  tta?: string;
  /** How the views are averaged, `prob` (default) or `logit`. */
  ttaAverage?: string;
}

/** Exports the best checkpoint of a run folder to `outDir` (created; an existing export there is replaced). */
export async function exportRun(
  runDir: string,
  outDir: string,
  opts: ExportOptions = {},
): Promise<ExportResult> {
  const shardBytes = opts.shardBytes ?? SHARD_BYTES;
  if (isEnsembleDir(runDir)) {
    throw new RunError(`${runDir} is an ensemble: export it with exportEnsemble (one folder per member)`);
  }
  const cfg = loadRunConfig(runDir);
  const tta = resolveTta(runDir, opts.tta ?? "auto", opts.ttaAverage ?? "prob");
  const { model, classes } = await loadRunModel(runDir);
  // inference only: batch norms folded into their convolutions (one pass fewer per conv in the browser too)
  const inf = forInference(model);
  try {
    let art: tf.io.ModelArtifacts | null = null;
    await inf.model.save(tf.io.withSaveHandler((a) => {
      art = a;
      return Promise.resolve({ modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: "JSON" } });
    }));
    const a = art as tf.io.ModelArtifacts | null;
    if (!a?.modelTopology || !a.weightSpecs) throw new Error(`${runDir}: the model produced no artifacts`);
    const bytes = new Uint8Array(tf.io.CompositeArrayBuffer.join(a.weightData ?? new ArrayBuffer(0)));
    const n = Math.max(1, Math.ceil(bytes.length / shardBytes));
    const names = Array.from({ length: n }, (_, i) => `group1-shard${i + 1}of${n}.bin`);
    let epoch: number | null = null;
    try {
      const best = JSON.parse(Deno.readTextFileSync(join(runDir, "best", "model.json")));
      epoch = Number.isFinite(best.userDefinedMetadata?.epoch) ? best.userDefinedMetadata.epoch : null;
    } catch { /* loadRunModel already validated the checkpoint; the epoch is optional */ }
    const metadata: ExportMetadata = {
      format: "fer-deno-export-v1",
      classes,
      preprocessing: preprocessingOf(cfg),
      tta,
      accuracy: { validation: accuracyUnder(runDir, "val", tta), test: accuracyUnder(runDir, "test", tta) },
      model: cfg.model,
      run: basename(runDir),
      epoch,
      exportedAt: new Date().toISOString(),
    };
    await Deno.mkdir(outDir, { recursive: true });
    for await (const e of Deno.readDir(outDir)) {
      // an earlier export's shards, or an ensemble's list, which the demo would load instead of this model
      if (e.isFile && (/^group\d+-shard\d+of\d+\.bin$/.test(e.name) || e.name === ENSEMBLE_JSON)) {
        await Deno.remove(join(outDir, e.name));
      }
    }
    const shards = names.map((name) => join(outDir, name));
    for (let i = 0; i < n; i++) {
      await Deno.writeFile(
        shards[i],
        bytes.subarray(i * shardBytes, Math.min(bytes.length, (i + 1) * shardBytes)),
      );
    }
    const json = {
      format: "layers-model",
      generatedBy: a.generatedBy,
      convertedBy: "fer-deno export (lib/models/export.ts)",
      modelTopology: a.modelTopology,
      weightsManifest: [{ paths: names, weights: a.weightSpecs }],
      userDefinedMetadata: metadata,
    };
    const modelJson = join(outDir, "model.json");
    await Deno.writeTextFile(modelJson, JSON.stringify(json));
    return { modelJson, shards, metadata };
  } finally {
    inf.release();
    model.dispose();
  }
}

/** The file that makes an export folder an ensemble's (the demo loads its members instead of `model.json`). */
export const ENSEMBLE_JSON = "ensemble.json";

/** `ensemble.json` of an exported ensemble: its members' folders (relative to it) and how they are averaged. */
export interface EnsembleExport {
  format: "fer-deno-ensemble-v1";
  ensemble: string;
  members: { path: string; run: string; model: string; tta: ResolvedTta }[];
  classes: string[];
  /** The ensemble's accuracy on validation (members chosen there) and on test, from its reports; null if none. */
  accuracy: { validation: number | null; test: number | null };
  averaging: "mean of the members' class probabilities";
}

/**
 * Exports an ensemble folder (lib/eval/ensemble.ts) for the browser: each member's best model to
 * `outDir/member-<i>/` ({@link exportRun}) with the TTA the ensemble recorded for it (`opts.tta` other than
 * `auto`: that mode for every member), then `outDir/ensemble.json` listing them. A single model's `model.json`
 * left in `outDir` by an earlier export is removed. The members must share their class names.
 */
export async function exportEnsemble(
  ensembleDir: string,
  outDir: string,
  opts: ExportOptions = {},
): Promise<{ ensembleJson: string; manifest: EnsembleExport; members: ExportResult[] }> {
  const members = ensembleMembers(ensembleDir);
  if (members.length === 0) throw new RunError(`${ensembleDir}: the ensemble lists no members`);
  const results: ExportResult[] = [];
  const own = opts.tta === undefined || opts.tta === "auto"; // each member's recorded TTA
  for (const [i, m] of members.entries()) {
    results.push(
      await exportRun(m.dir, join(outDir, `member-${i + 1}`), {
        shardBytes: opts.shardBytes,
        tta: own ? m.tta.mode : opts.tta,
        ttaAverage: own ? m.tta.average : opts.ttaAverage,
      }),
    );
    const [first, last] = [results[0].metadata, results[i].metadata];
    checkMemberClasses({ name: first.run, classes: first.classes }, {
      name: last.run,
      classes: last.classes,
    });
  }
  const manifest: EnsembleExport = {
    format: "fer-deno-ensemble-v1",
    ensemble: basename(ensembleDir),
    members: results.map((r, i) => ({
      path: `member-${i + 1}`,
      run: r.metadata.run,
      model: r.metadata.model,
      tta: r.metadata.tta!,
    })),
    classes: results[0].metadata.classes,
    accuracy: {
      validation: ensembleValAccuracy(ensembleDir),
      test: readTestReport(runPaths(ensembleDir))?.test_accuracy ?? null,
    },
    averaging: "mean of the members' class probabilities",
  };
  await Deno.remove(join(outDir, "model.json")).catch(() => {});
  const ensembleJson = join(outDir, ENSEMBLE_JSON);
  await Deno.writeTextFile(ensembleJson, JSON.stringify(manifest, null, 2) + "\n");
  return { ensembleJson, manifest, members: results };
}

/**
 * Exports what `dir` holds for the browser: a run's best model ({@link exportRun}) or an ensemble's members
 * ({@link exportEnsemble}). `models` lists every model folder written; `ensemble` is the list's file and content
 * when `dir` is an ensemble, else null.
 */
export async function exportForBrowser(
  dir: string,
  outDir: string,
  opts: ExportOptions = {},
): Promise<{ models: ExportResult[]; ensemble: { ensembleJson: string; manifest: EnsembleExport } | null }> {
  if (!isEnsembleDir(dir)) return { models: [await exportRun(dir, outDir, opts)], ensemble: null };
  const { members, ...ensemble } = await exportEnsemble(dir, outDir, opts);
  return { models: members, ensemble };
}
