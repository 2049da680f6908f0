/**
 * The few steps notebooks 02–05 share, so that their cells stay one or two lines: pick the preset, check for
 * pretrained weights, preview the augmentation, train with a live display, and show a run's charts and report.
 */
import * as tf from "@tensorflow/tfjs-core";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { loadDataset, type Split, subset } from "../data/dataset.ts";
import { show, showTable, showText } from "./display.ts";
import { defaultPreset, experimentConfig, type Preset } from "../train/experiments.ts";
import { formatReport } from "../eval/metrics.ts";
import { defaultConfig, listModels } from "../models/registry.ts";
import { sampleGridPlot, type SampleImage } from "./plots.ts";
import { resolveRunDir, runFigures, runTransform, saveRunFigures } from "../runs/runs.ts";
import { DEFAULT_CONFIG, setupBackend, train, type TrainConfig, type TrainResult } from "../train/loop.ts";
import { resolveWeights, WeightsNotFoundError } from "../models/weights/hub.ts";

/** The notebook's preset: `smoke` under FER_SMOKE=1 (CI), else the one the parameter cell names. */
export function notebookPreset(wanted: Preset = "cpu"): Preset {
  return defaultPreset() === "smoke" ? "smoke" : wanted;
}

/**
 * The preset of the study's notebooks (02–04): `smoke` under FER_SMOKE=1; with timm's ImageNet weights
 * available (Hugging Face cache or a download), `fineTune` (default `cpu`); without them the `scratch` preset —
 * an honest from-scratch recipe for the same architecture rather than a fine-tuning recipe on random weights.
 */
export async function studyPreset(experiment: string, fineTune: Preset = "cpu"): Promise<Preset> {
  if (defaultPreset() === "smoke") return "smoke";
  const tag = defaultConfig(experimentConfig(experiment, "paper").model).pretrained;
  if (!tag) return "scratch";
  try {
    await resolveWeights(tag, { progress: true });
    return fineTune;
  } catch (e) {
    if (!(e instanceof WeightsNotFoundError)) throw e;
    console.log(
      `ImageNet weights ${tag} are not available here: using the scratch preset (from random init)`,
    );
    return "scratch";
  }
}

/** The notebook's setting line: whose architecture, whose weights, which preset. */
export function settingLine(cfg: TrainConfig): string {
  const weights = cfg.pretrained
    ? "ImageNet weights (timm), fine-tuned"
    : "not the study's: random initialisation, trained from scratch (ImageNet weights unavailable here)";
  return `setting: the study's architecture (${cfg.model}); weights ${weights}; preset ${cfg.preset}, ` +
    `${cfg.inputSize} px, ${
      cfg.maxTrainImages === null ? "full training set" : `${cfg.maxTrainImages} training images`
    }`;
}

/**
 * A finished run by name (`run`, under checkpoints/ or a path) when given — the notebook then shows it instead
 * of training (long runs are trained with `deno task train`, resumable) — else trains `cfg` in the notebook.
 */
export async function trainOrLoad(
  cfg: TrainConfig,
  run: string | null,
): Promise<{ runDir: string; test: { accuracy: number; macroF1: number } }> {
  if (!run) {
    const res = await trainInNotebook(cfg);
    return { runDir: res.runDir, test: { accuracy: res.test!.accuracy, macroF1: res.test!.macroF1 } };
  }
  const runDir = resolveRunDir(run);
  const reportPath = join(runDir, "test_report.json");
  if (!existsSync(reportPath)) {
    throw new Error(
      `run ${run} has not finished (no ${reportPath}): continue it with \`deno task train --resume ${run}\``,
    );
  }
  const rep = JSON.parse(Deno.readTextFileSync(reportPath));
  const hours = rep.cpu_seconds === undefined
    ? ""
    : `; wall time ${(rep.wall_seconds / 3600).toFixed(2)} h, ${
      (rep.cpu_seconds / 3600).toFixed(2)
    } CPU-hours over ` +
      `${rep.sessions} session(s)`;
  console.log(`loaded finished run ${runDir} (${rep.stopped}, best epoch ${rep.best_epoch}${hours})`);
  if (!existsSync(join(runDir, "accuracy.svg"))) await saveRunFigures(runDir);
  return { runDir, test: { accuracy: rep.test_accuracy, macroF1: rep.report.macro_avg.f1 } };
}

/** Starts the engine and returns the experiment's config in the preset, printing both. */
export async function setupExperiment(experiment: string, preset: Preset): Promise<TrainConfig> {
  const engine = await setupBackend();
  const cfg = experimentConfig(experiment, preset);
  console.log(
    `engine: ${engine.name} (${engine.threads} threads); experiment ${experiment}, preset ${preset}`,
  );
  return cfg;
}

/**
 * Keeps `cfg.pretrained` only when timm's weights for the model can be found (local file, Hugging Face
 * cache, or a download when online); otherwise says so and trains from random initialisation.
 */
export async function usePretrainedIfAvailable(cfg: TrainConfig): Promise<TrainConfig> {
  const tag = defaultConfig(cfg.model).pretrained;
  if (!cfg.pretrained || !tag) return { ...cfg, pretrained: false };
  try {
    const w = await resolveWeights(tag, { progress: true });
    console.log(`pretrained weights: ${tag} (${w.source}: ${w.path})`);
    return cfg;
  } catch (e) {
    if (!(e instanceof WeightsNotFoundError)) throw e;
    console.log(
      `pretrained weights for ${tag} are not available here, so this run starts from random initialisation ` +
        `(the original study fine-tuned ImageNet weights; expect lower accuracy).\n${e.message}`,
    );
    return { ...cfg, pretrained: false };
  }
}

/** The config as a two-column table (the fields a reader compares with the study). */
export async function showConfig(cfg: TrainConfig): Promise<void> {
  const keys: (keyof TrainConfig)[] = [
    "model",
    "pretrained",
    "inputSize",
    "channels",
    "batchSize",
    "epochs",
    "optimizer",
    "lr",
    "weightDecay",
    "schedule",
    "warmupEpochs",
    "tMax",
    "patience",
    "loss",
    "labelSmoothing",
    "valFraction",
    "maxTrainImages",
    "seed",
  ];
  const params = listModels().find((m) => m.name === cfg.model)?.params;
  await showTable([
    ...keys.map((k) => ({ setting: k, value: JSON.stringify(cfg[k]) })),
    { setting: "trainable parameters (7 classes)", value: params?.toLocaleString("en-US") ?? "?" },
  ]);
}

/** `n` training faces before and after the run's training transform (seeded), as a sample grid. */
export async function augmentationPreview(cfg: TrainConfig, n = 8, seed = 0): Promise<string> {
  const ds = await loadDataset({
    root: cfg.dataRoot ?? undefined,
    size: cfg.dataSize,
    channels: 1,
    verbose: false,
  });
  const idx = Array.from({ length: n }, (_, i) => Math.floor((i + 0.5) * ds.train.labels.length / n));
  const part: Split = subset(ds.train, idx);
  const tfm = runTransform(cfg, true, seed);
  const x = tf.tensor4d(Float32Array.from(part.images), [n, part.height, part.width, 1]);
  const y = tfm(x, [0, 0]);
  const out = await y.data();
  tf.dispose([x, y]);
  const s = cfg.inputSize;
  const c = cfg.channels;
  const images: SampleImage[] = [];
  for (let i = 0; i < n; i++) {
    const orig = part.images.slice(i * part.height * part.width, (i + 1) * part.height * part.width);
    images.push({ pixels: orig, width: part.width, height: part.height, channels: 1, label: "original" });
    const px = new Uint8Array(s * s);
    for (let p = 0; p < s * s; p++) {
      const v = (out[(i * s * s + p) * c] * cfg.std[0] + cfg.mean[0]) * 255;
      px[p] = Math.max(0, Math.min(255, Math.round(v)));
    }
    images.push({ pixels: px, width: s, height: s, channels: 1, label: "augmented" });
  }
  return await sampleGridPlot(images, {
    columns: 8,
    title: "Training transform (original / augmented pairs)",
  });
}

/** Trains with a live progress display, saves the run's figures, and returns the result. */
export async function trainInNotebook(cfg: TrainConfig): Promise<TrainResult> {
  const t0 = performance.now();
  const res = await train(cfg, { progress: "notebook" });
  await saveRunFigures(res.runDir);
  const minutes = (performance.now() - t0) / 60000;
  console.log(
    `${res.stopped}; best epoch ${res.bestEpoch}; wall time ${minutes.toFixed(1)} min; run ${res.runDir}`,
  );
  return res;
}

/** Shows a run's accuracy and loss curves, its test report and confusion matrix. */
export async function showRun(runDir: string): Promise<void> {
  const figs = runFigures(runDir);
  await show(figs.accuracy);
  await show(figs.loss);
  const rep = JSON.parse(Deno.readTextFileSync(join(runDir, "test_report.json")));
  await showText(formatReport(rep.report, { digits: 2 }));
  if (figs.confusion) await show(figs.confusion);
}

/**
 * Run folders under checkpoints/ whose config names `experiment` and that have a test report, oldest first (by
 * when the report was written). Smoke-preset runs are left out unless in smoke mode or `includeSmoke`.
 */
export function findRuns(
  experiment?: string,
  outDir = DEFAULT_CONFIG.outDir,
  includeSmoke = defaultPreset() === "smoke",
): string[] {
  if (!existsSync(outDir)) return [];
  return readdirSync(outDir).map((d) => join(outDir, d)).filter((d) => {
    if (!existsSync(join(d, "test_report.json")) || !existsSync(join(d, "config.json"))) return false;
    const cfg = JSON.parse(Deno.readTextFileSync(join(d, "config.json")));
    if (!includeSmoke && cfg.preset === "smoke") return false;
    return !experiment || cfg.experiment === experiment;
  }).sort((a, b) => finished(a) - finished(b) || a.localeCompare(b));
}

/** When a run's test report was written (ms since epoch). */
function finished(runDir: string): number {
  return Deno.statSync(join(runDir, "test_report.json")).mtime?.getTime() ?? 0;
}
