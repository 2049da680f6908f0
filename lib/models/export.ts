/**
 * Export of a trained run for the browser: a TensorFlow.js LayersModel folder (`model.json` + weight shards
 * `group1-shardNofM.bin`, the layout tfjs-converter writes), loadable with `tf.loadLayersModel(url)`.
 * `userDefinedMetadata` carries what a user needs to feed it: the class names, the preprocessing
 * (lib/faces/preprocess.ts: crop framing, gray weights, sizes, normalisation), the test-time augmentation to
 * apply to each face (by default the one chosen on validation) and where it came from.
 * Models with ConvNeXt's `LayerScale` need lib/models/layers.ts imported before loading (the demo does). The
 * exported graph is for inference: batch norms are folded into their convolutions (lib/models/fold.ts).
 */
import * as tf from "@tensorflow/tfjs-core";
import { basename, join } from "node:path";
import { loadRunConfig, loadRunModel, RunError } from "../runs/runs.ts";
import { isEnsembleDir } from "../eval/ensemble.ts";
import { type Preprocessing, preprocessingOf } from "../faces/preprocess.ts";
import { forInference } from "./fold.ts";
import { type ResolvedTta, resolveTta } from "../eval/tta.ts";

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
    throw new RunError(
      `${runDir} is an ensemble: export takes one trained run (export a member, or classify photos with the ` +
        "whole ensemble through `deno task predict <ensemble> <photo>`)",
    );
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
      model: cfg.model,
      run: basename(runDir),
      epoch,
      exportedAt: new Date().toISOString(),
    };
    await Deno.mkdir(outDir, { recursive: true });
    for await (const e of Deno.readDir(outDir)) {
      if (e.isFile && /^group\d+-shard\d+of\d+\.bin$/.test(e.name)) await Deno.remove(join(outDir, e.name));
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
