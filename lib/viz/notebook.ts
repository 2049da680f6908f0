/**
 * The few steps notebooks 02–05 share, so that their cells stay one or two lines: pick the preset, check for
 * pretrained weights, preview the augmentation, train (or load a finished run), and show a run's charts,
 * report and results beside the study's.
 *
 * Every output goes through `lib/viz/display.ts` (ordered, paced, counted), and paths are shown relative to
 * the project, never as absolute machine paths.
 */
import * as tf from "@tensorflow/tfjs-core";
import { existsSync } from "node:fs";
import { basename, relative, resolve } from "node:path";
import { loadDataset, PROJECT_ROOT, type Split, subset } from "../data/dataset.ts";
import { print, show, showHTML, showTable, showText } from "./display.ts";
import { defaultPreset, experimentConfig, EXPERIMENTS, type Preset } from "../train/experiments.ts";
import { classificationReport, formatReport } from "../eval/metrics.ts";
import { chooseTta, runPredictions, valTtaAccuracies } from "../eval/tta.ts";
import type { TtaMode } from "../data/views.ts";
import type { PredictionRow } from "../eval/predictions.ts";
import { flagsMarkdown, metricRows, readRunRecord, resultsLine, runResults } from "../eval/results.ts";
import { defaultConfig, listModels } from "../models/registry.ts";
import { sampleGridPlot, type SampleImage } from "./plots.ts";
import {
  hasBestModel,
  type HistoryRow,
  loadRunConfig,
  predictionsPath,
  readTestReport,
  resolveRunDir,
  runClasses,
  runFigures,
  runPaths,
  runTransform,
  saveRunFigures,
} from "../runs/runs.ts";
/** Finding runs is the run folder's job (lib/runs/discover.ts); re-exported for the notebooks. */
export { findRuns } from "../runs/discover.ts";
import { engineSummary, initEngine } from "../engine/init.ts";
import type { TrainConfig } from "../train/config.ts";
import { train, type TrainResult } from "../train/loop.ts";
import { resolveWeights, WeightsNotFoundError } from "../models/weights/hub.ts";
import { escapeHtml } from "./display.ts";

/** The notebook's preset: `smoke` under FER_SMOKE=1 (CI), else the one the parameter cell names. */
export function notebookPreset(wanted: Preset = "cpu"): Preset {
  return defaultPreset() === "smoke" ? "smoke" : wanted;
}

/**
 * The run a notebook shows: the parameter cell's `RUN`, except under FER_SMOKE=1 (CI), where the notebook is a
 * pipeline check that trains its tiny smoke run instead (the named long run is not in a fresh clone's runs
 * folder of smoke mode).
 */
export function shownRun(run: string | null): string | null {
  return defaultPreset() === "smoke" ? null : run;
}

/**
 * The preset of the study's notebooks (02–04): `smoke` under FER_SMOKE=1; with timm's ImageNet weights
 * available (Hugging Face cache or a download), `fineTune` (default `cpu`); without them the `scratch` preset —
 * an honest from-scratch recipe for the same architecture rather than a fine-tuning recipe on random weights
 * (lib/train/experiments.ts, docs/RECIPES.md).
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
    await print(`ImageNet weights ${tag} are not available here: the scratch preset (random initialisation)`);
    return "scratch";
  }
}

/**
 * A path as shown in notebook outputs: relative to the project when inside it, `$FER2013_DIR[/...]` for the
 * data folder given by the environment, else `…/<last two parts>` — never the machine's absolute path.
 */
export function displayPath(path: string, env: { get(k: string): string | undefined } = Deno.env): string {
  const abs = resolve(path);
  const rel = relative(PROJECT_ROOT, abs);
  if (rel === "") return ".";
  if (!rel.startsWith("..")) return rel;
  const data = env.get("FER2013_DIR");
  if (data) {
    const fromData = relative(resolve(data), abs);
    if (fromData === "") return "$FER2013_DIR";
    if (!fromData.startsWith("..")) return `$FER2013_DIR/${fromData}`;
  }
  return `…/${abs.split("/").filter(Boolean).slice(-2).join("/")}`;
}

/** Replaces every occurrence of the project folder in a text with nothing (paths become relative). */
export function relativizeText(text: string): string {
  return text.split(`${PROJECT_ROOT}/`).join("");
}

/**
 * Starts the engine and returns the config to train with: the experiment in `preset`, or with `run` set, the
 * saved config of that finished run (which must be a run of this experiment).
 */
export async function setupExperiment(
  experiment: string,
  preset: Preset,
  run: string | null = null,
): Promise<TrainConfig> {
  await initEngine();
  if (run && !shownRun(run)) await print(`smoke mode: a tiny run is trained instead of showing ${run}`);
  run = shownRun(run);
  if (run) {
    const dir = resolveRunDir(run);
    const cfg = loadRunConfig(dir);
    if (cfg.experiment !== experiment) {
      throw new Error(
        `${displayPath(runPaths(dir).config)}: run "${run}" is a ${cfg.experiment} run, not ${experiment}`,
      );
    }
    await print(
      `engine: ${engineSummary()}; showing the finished run ${displayPath(dir)} ` +
        `(experiment ${experiment}, preset ${cfg.preset ?? "custom"}) instead of training`,
    );
    return cfg;
  }
  const presets = Object.keys(EXPERIMENTS[experiment]?.presets ?? {});
  if (presets.length && !presets.includes(preset)) {
    throw new Error(`experiment ${experiment} has no preset "${preset}"; its presets: ${presets.join(", ")}`);
  }
  const cfg = experimentConfig(experiment, preset);
  await print(
    `engine: ${engineSummary()}; experiment ${experiment}, preset ${preset}`,
  );
  return cfg;
}

/** The one line shown when a model's ImageNet weights cannot be used (no raw network error). */
export function weightsFallbackLine(tag: string, e: WeightsNotFoundError): string {
  return e.offline
    ? `ImageNet weights for ${tag} not found locally and no network: starting from random initialisation; ` +
      "see README › Pretrained weights"
    : `ImageNet weights for ${tag} could not be used (${
      relativizeText(e.message.split(": ").slice(-1)[0]).replace(/\.\s.*$/s, "")
    }): starting from random initialisation; see README › Pretrained weights`;
}

/**
 * Keeps `cfg.pretrained` only when timm's weights for the model can be found (local file, Hugging Face
 * cache, or a download when online); otherwise says so in one line and trains from random initialisation.
 * A loaded run (`run` set) keeps what it was trained with.
 */
export async function usePretrainedIfAvailable(
  cfg: TrainConfig,
  run: string | null = null,
): Promise<TrainConfig> {
  const tag = defaultConfig(cfg.model).pretrained;
  run = shownRun(run);
  if (run) {
    await print(
      `weights: the run started from ${
        cfg.pretrained && tag ? `ImageNet weights (${tag})` : "random initialisation"
      }`,
    );
    return cfg;
  }
  if (!cfg.pretrained || !tag) {
    await print(
      `weights: random initialisation (${
        tag
          ? `the ${cfg.preset ?? "chosen"} preset does not use ImageNet weights`
          : `${cfg.model} has no ImageNet weights`
      })`,
    );
    return { ...cfg, pretrained: false };
  }
  try {
    const w = await resolveWeights(tag, { progress: true });
    await print(`pretrained weights: ${tag} (${w.source}: ${displayPath(w.path)})`);
    return cfg;
  } catch (e) {
    if (!(e instanceof WeightsNotFoundError)) throw e;
    await print(weightsFallbackLine(tag, e));
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
    "lr",
    "weightDecay",
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

/** What the training cell hands to the results cells. */
export interface NotebookRun {
  runDir: string;
  /** True when the run was trained in this notebook, false when loaded from checkpoints/. */
  trained: boolean;
  result?: TrainResult;
}

/** Trains with a live progress display, saves the run's figures (SVG + PNG), and returns the result. */
export async function trainInNotebook(cfg: TrainConfig): Promise<NotebookRun> {
  const t0 = performance.now();
  const log = (line: string) => void print(relativizeText(line));
  const res = await train(cfg, { progress: "notebook", log });
  await saveRunFigures(res.runDir);
  const minutes = (performance.now() - t0) / 60000;
  await print(
    `${res.stopped}; best epoch ${res.bestEpoch}; wall time ${minutes.toFixed(1)} min; run ${
      displayPath(res.runDir)
    }`,
  );
  return { runDir: res.runDir, trained: true, result: res };
}

/**
 * The training cell: trains `cfg` here when `run` is null (or in smoke mode, {@link shownRun}), otherwise loads
 * the finished run from checkpoints/ and shows its per-epoch history instead (its report and predictions are
 * read by the next cells).
 */
export async function trainOrLoad(cfg: TrainConfig, run: string | null): Promise<NotebookRun> {
  run = shownRun(run);
  if (!run) return await trainInNotebook(cfg);
  const runDir = resolveRunDir(run);
  const rec = readRunRecord(runDir);
  const history = rec.history as unknown as HistoryRow[];
  await showTable(
    history.map((h) => ({
      epoch: h.epoch,
      "train loss": h.train_loss.toFixed(4),
      "train acc": h.train_acc.toFixed(4),
      "val loss": h.val_loss.toFixed(4),
      "val acc": h.val_acc.toFixed(4),
      lr: h.lr.toExponential(2),
      seconds: Math.round(h.seconds),
    })),
    { caption: `History of ${displayPath(runDir)}` },
  );
  const seconds = history.reduce((s, h) => s + h.seconds, 0);
  await print(
    `${rec.summary.stopped}; best epoch ${rec.summary.best_epoch}; ${history.length} ` +
      `epoch${history.length === 1 ? "" : "s"}, ` +
      `${(seconds / 60).toFixed(1)} min of training; loaded from ${displayPath(runDir)}`,
  );
  return { runDir, trained: false };
}

/** Shows a run's accuracy and loss curves, its test report and confusion matrix. */
export async function showRun(runDir: string): Promise<void> {
  const figs = runFigures(runDir);
  await show(figs.accuracy);
  await show(figs.loss);
  const rep = readTestReport(runPaths(runDir));
  if (rep) await showText(formatReport(rep.report, { digits: 2 }));
  if (figs.confusion) await show(figs.confusion);
}

/**
 * The results cell: the run's setting beside the study's, its accuracy, macro-F1 and per-class F1 beside the
 * published numbers (lib/eval/study.ts), the flags computed from the run, and one final `results:` line.
 */
export async function showResults(runDir: string): Promise<void> {
  const r = runResults(readRunRecord(runDir));
  await showTable(r.setting.map((s) => ({ ...s })), { caption: `Setting of ${r.run} and of the study` });
  await showTable(metricRows(r), {
    caption: r.study
      ? `Test results beside the study's published numbers (${r.study.title})`
      : "Test results",
  });
  const md = flagsMarkdown(r);
  await showHTML(
    `<p><b>What to keep in mind about run <code>${escapeHtml(r.run)}</code>:</b></p><ul>${
      r.flags.map((f) => `<li>${escapeHtml(f)}</li>`).join("")
    }</ul>`,
    { markdown: md },
  );
  await print(resultsLine(r));
}

/** Accuracy, macro-F1 and the classes never predicted, of test predictions. */
function testScores(
  rows: PredictionRow[],
  classes: string[],
): { acc: number; f1: number; unpredicted: string[] } {
  const rep = classificationReport(rows.map((r) => r.label), rows.map((r) => r.pred), classes);
  const seen = new Set(rows.map((r) => r.pred));
  return { acc: rep.accuracy, f1: rep.macro_avg.f1, unpredicted: classes.filter((_, i) => !seen.has(i)) };
}

/**
 * The test-time augmentation cell of notebooks 02–04 — not in the study, which scored one view per image: the
 * image alone against the image and its mirror (class probabilities averaged) on validation and, when the
 * mirror is better there, the test split once with it, beside the single-view test report. Evaluations the run
 * folder does not hold yet need its best model (committed run folders carry predictions, not weights); without
 * it the cell says which commands would make them.
 */
export async function showTta(runDir: string, modes: TtaMode[] = ["none", "hflip"]): Promise<void> {
  const run = basename(runDir);
  const paths = runPaths(runDir);
  const report = readTestReport(paths);
  if (!report) {
    await print(`${run} has no test report yet: test-time augmentation is chosen after training.`);
    return;
  }
  const onVal = new Set(valTtaAccuracies(runDir).map((r) => r.mode));
  const missing = modes.filter((m) => !onVal.has(m));
  if (missing.length > 0 && !hasBestModel(paths)) {
    await print(
      `Test-time augmentation not evaluated: ${run}'s folder has no ${missing.join(", ")} validation ` +
        "predictions and its weights are not on this machine. With them: " +
        missing.map((m) => `deno task evaluate ${run} --split val --tta ${m}`).join("; ") +
        `; then deno task evaluate ${run} --tta auto (the test split, once, with the mode chosen).`,
    );
    return;
  }
  const choice = await chooseTta(runDir, modes);
  const classes = runClasses(runDir);
  const chosen = choice.best.mode;
  const ttaFile = predictionsPath(paths, "test", chosen);
  const ttaRows = chosen === "none" || !(existsSync(ttaFile) || hasBestModel(paths))
    ? null
    : (await runPredictions(runDir, "test", choice.best)).rows;
  const single = { acc: report.test_accuracy, f1: report.report.macro_avg.f1 };
  const tta = ttaRows ? testScores(ttaRows, classes) : null;
  await showTable(
    choice.rows.map((r) => ({
      TTA: r.mode + (r.mode === chosen ? " (chosen)" : ""),
      "val accuracy": r["val accuracy"] ?? "–",
      "test accuracy": r.mode === "none" ? single.acc : r.mode === chosen && tta ? tta.acc : "–",
      "test macro-F1": r.mode === "none" ? single.f1 : r.mode === chosen && tta ? tta.f1 : "–",
    })),
    {
      digits: 4,
      caption: `Test-time augmentation for ${run}, chosen on validation (test: the chosen mode only)`,
    },
  );
  await print(ttaLine(run, choice.rows, chosen, single, tta));
}

/** The sentence under the TTA table ({@link showTta}), from the numbers. */
export function ttaLine(
  run: string,
  rows: { mode: TtaMode; "val accuracy": number | null }[],
  chosen: TtaMode,
  single: { acc: number; f1: number },
  tta: { acc: number; f1: number; unpredicted: string[] } | null,
): string {
  const f = (v: number | null) => (v === null ? "–" : v.toFixed(4));
  const val = (m: TtaMode) => rows.find((r) => r.mode === m)?.["val accuracy"] ?? null;
  if (chosen === "none") {
    const others = rows.filter((r) => r.mode !== "none").map((r) => `${r.mode} ${f(r["val accuracy"])}`);
    return `TTA chosen on validation: none (${f(val("none"))} against ${
      others.join(", ") || "nothing else"
    }); ` +
      `the single-view test report above is ${run}'s final one.`;
  }
  const head = `TTA chosen on validation: ${chosen} (${f(val(chosen))} against ${f(val("none"))} for the ` +
    "single view)";
  if (!tta) {
    return `${head}; its test evaluation is not in the run folder and the weights are not here: ` +
      `deno task evaluate ${run} --tta auto.`;
  }
  const d = 100 * (tta.acc - single.acc);
  return `${head}; test, once: accuracy ${f(tta.acc)}, macro-F1 ${f(tta.f1)} (single view ${
    f(single.acc)
  }, ` +
    `${f(single.f1)}; ${d >= 0 ? "+" : ""}${d.toFixed(2)} points); ` +
    (tta.unpredicted.length ? `never predicted: ${tta.unpredicted.join(", ")}` : "every class predicted") +
    ". The study scored one view per image.";
}
