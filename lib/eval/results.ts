/**
 * A run's results beside the study's published numbers, with the setting it ran in and plain-language flags
 * computed from the data ("predicts one class for N % of test images", "early stopping never triggered",
 * "not comparable to the study because ..."). The results cell of notebooks 02–04 shows this; nothing in it
 * is typed by hand.
 */
import { existsSync } from "node:fs";
import { runPaths } from "../runs/paths.ts";
import type { ClassificationReport } from "./metrics.ts";
import { STUDY_SETTING, type StudyResult, studyResult } from "./study.ts";

/** The parts of a run folder the results need (config.json, history.json, test_report.json). */
export interface RunRecord {
  name: string;
  config: {
    experiment: string;
    preset?: string | null;
    model: string;
    pretrained: boolean;
    inputSize: number;
    channels: number;
    epochs: number;
    patience: number;
    valFraction: number;
    maxTrainImages: number | null;
    maxEvalImages: number | null;
  };
  history: {
    epoch: number;
    val_acc: number;
    train_acc?: number;
    val_loss?: number;
    wall_total_s?: number;
    cpu_total_s?: number;
  }[];
  summary: {
    best_epoch: number;
    stopped: string;
    /** Totals over all sessions of a resumed run (runs since the cost accounting). */
    wall_seconds?: number;
    cpu_seconds?: number;
    sessions?: number;
    sample_data?: boolean;
    report: ClassificationReport;
    confusion_matrix: number[][];
  };
}

/** One line of the setting table. */
export interface SettingRow {
  setting: string;
  "this run": string;
  study: string;
}

/** A run's results, ready to show. */
export interface RunResults {
  run: string;
  experiment: string;
  study?: StudyResult;
  /** Metric rows: this run's value and the study's (undefined where it published none). */
  metrics: { metric: string; run: number; study?: number }[];
  setting: SettingRow[];
  /** Plain-language observations computed from the run; the most important first. */
  flags: string[];
}

function readJson<T>(path: string): T {
  if (!existsSync(path)) throw new Error(`${path} not found (has the run finished its test evaluation?)`);
  try {
    return JSON.parse(Deno.readTextFileSync(path)) as T;
  } catch (e) {
    throw new Error(`${path}: ${(e as Error).message}`);
  }
}

/** Reads what {@link runResults} needs from a run folder; errors name the missing or broken file. */
export function readRunRecord(runDir: string): RunRecord {
  const paths = runPaths(runDir);
  return {
    name: runDir.replace(/\/+$/, "").split("/").pop() ?? runDir,
    config: readJson(paths.config),
    history: readJson(paths.historyJson),
    summary: readJson(paths.testReportJson),
  };
}

const pct = (v: number, digits = 0) => `${(v * 100).toFixed(digits)} %`;
const count = (n: number, what: string) => `${n.toLocaleString("en-US")} ${what}${n === 1 ? "" : "s"}`;

/** Wall time and CPU-hours over all sessions, or why they are not known. */
function costText(summary: RunRecord["summary"], history: RunRecord["history"]): string {
  const wall = summary.wall_seconds ?? history.at(-1)?.wall_total_s;
  const cpu = summary.cpu_seconds ?? history.at(-1)?.cpu_total_s;
  if (wall === undefined || cpu === undefined) return "not recorded (a run from before the cost accounting)";
  const sessions = summary.sessions;
  return `wall time ${(wall / 3600).toFixed(2)} h, ${(cpu / 3600).toFixed(2)} CPU-hours` +
    (sessions ? ` over ${count(sessions, "session")}` : "");
}

/** The run's results beside the study's, its setting and its flags. */
export function runResults(rec: RunRecord): RunResults {
  const { config: cfg, summary, history } = rec;
  const study = studyResult(cfg.experiment);
  const report = summary.report;
  const classes = Object.keys(report.per_class);
  const cm = summary.confusion_matrix;
  const total = cm.reduce((s, r) => s + r.reduce((a, b) => a + b, 0), 0);

  const metrics: RunResults["metrics"] = [
    { metric: "test accuracy", run: report.accuracy, study: study?.accuracy },
    { metric: "macro-F1", run: report.macro_avg.f1, study: study?.macroF1 },
    ...classes.map((c) => ({
      metric: `F1 ${c}`,
      run: report.per_class[c].f1,
      study: study?.perClassF1?.[c],
    })),
  ];

  const trainImages = cfg.maxTrainImages === null
    ? `all (training folder minus ${pct(cfg.valFraction)} for validation)`
    : `${cfg.maxTrainImages.toLocaleString("en-US")} (subset)`;
  const epochsRun = history.length;
  const setting: SettingRow[] = [
    { setting: "preset", "this run": cfg.preset ?? "custom", study: "–" },
    { setting: "model", "this run": cfg.model, study: study ? study.title : "not in the study" },
    {
      setting: "input size",
      "this run": `${cfg.inputSize}×${cfg.inputSize}×${cfg.channels}`,
      study: `${STUDY_SETTING.inputSize}×${STUDY_SETTING.inputSize}×3`,
    },
    {
      setting: "weights",
      "this run": cfg.pretrained ? "ImageNet (pretrained)" : "random initialisation",
      study: "ImageNet (pretrained)",
    },
    {
      setting: "training images",
      "this run": summary.sample_data ? "demo sample (not FER2013)" : trainImages,
      study: `all ${STUDY_SETTING.trainImages.toLocaleString("en-US")}`,
    },
    {
      setting: "test images",
      "this run": total.toLocaleString("en-US"),
      study: STUDY_SETTING.testImages.toLocaleString("en-US"),
    },
    {
      setting: "epochs",
      "this run": `${epochsRun} of at most ${cfg.epochs} (best: ${summary.best_epoch}; ${
        summary.stopped.replace("_", " ")
      })`,
      study: `at most ${STUDY_SETTING.maxEpochs}, early stopping`,
    },
    {
      setting: "early stopping on",
      "this run": "validation split",
      study: `${STUDY_SETTING.earlyStoppedOn} set`,
    },
    { setting: "training cost", "this run": costText(summary, history), study: "not published" },
  ];

  const flags: string[] = [];
  // What the model predicts.
  const predicted = classes.map((_, j) => cm.reduce((s, r) => s + r[j], 0));
  const truth = cm.map((r) => r.reduce((a, b) => a + b, 0));
  const top = predicted.indexOf(Math.max(...predicted));
  if (total > 0 && predicted[top] / total >= 0.5) {
    flags.push(
      `Predicts one class for most images: "${classes[top]}" for ${pct(predicted[top] / total)} of test ` +
        `images (${predicted[top].toLocaleString("en-US")} of ${total.toLocaleString("en-US")}; ` +
        `"${classes[top]}" is ${pct(truth[top] / total)} of the test set).`,
    );
  }
  const never = classes.filter((_, j) => predicted[j] === 0 && truth[j] > 0);
  if (never.length > 0) {
    flags.push(
      `Never predicts ${never.map((c) => `"${c}"`).join(", ")} (F1 0 for ${
        never.length === 1 ? "it" : "them"
      }).`,
    );
  }
  const majority = Math.max(...truth);
  if (total > 0 && report.accuracy <= majority / total + 0.02) {
    const c = classes[truth.indexOf(majority)];
    flags.push(
      `Accuracy ${report.accuracy.toFixed(3)} is no better than always answering "${c}" ` +
        `(${(majority / total).toFixed(3)}): the model has learnt little.`,
    );
  }
  // How training ended.
  if (summary.stopped === "diverged") {
    flags.push("Training diverged (non-finite loss); the results are from the last good checkpoint.");
  } else if (summary.stopped !== "early_stopped") {
    const still = summary.best_epoch === epochsRun && epochsRun > 1;
    flags.push(
      `Early stopping never triggered: ${
        epochsRun === 1 ? "the single epoch ran" : `all ${epochsRun} epochs ran`
      }` +
        (still
          ? ", and validation accuracy was still improving at the last one (more epochs would help)."
          : "."),
    );
  }
  const over = overfitFlag(history);
  if (over) flags.push(over);
  // Comparability with the study.
  if (study) {
    const reasons: string[] = [];
    if (summary.sample_data) reasons.push("it ran on the 207-image demo sample, not FER2013");
    if (!cfg.pretrained) {
      reasons.push("it started from random weights, the study fine-tuned ImageNet weights");
    }
    if (cfg.inputSize !== STUDY_SETTING.inputSize) {
      reasons.push(`its input is ${cfg.inputSize} px, the study's ${STUDY_SETTING.inputSize} px`);
    }
    if (cfg.maxTrainImages !== null) {
      reasons.push(
        `it trained on ${cfg.maxTrainImages.toLocaleString("en-US")} images, the study on all ` +
          STUDY_SETTING.trainImages.toLocaleString("en-US"),
      );
    }
    if (cfg.epochs < STUDY_SETTING.maxEpochs && summary.stopped !== "early_stopped") {
      reasons.push(`it trained ${count(epochsRun, "epoch")}, the study up to ${STUDY_SETTING.maxEpochs}`);
    }
    if (total !== STUDY_SETTING.testImages) {
      reasons.push(
        `it was tested on ${count(total, "image")}, not all ${
          STUDY_SETTING.testImages.toLocaleString("en-US")
        }`,
      );
    }
    flags.push(
      reasons.length > 0
        ? `Not comparable to the study because ${reasons.join("; ")}.`
        : "Same setting as the study, except that the study early-stopped on the test set (so its numbers " +
          "are optimistic) and this run on a validation split.",
    );
  } else {
    flags.push(
      `"${cfg.experiment}" is not one of the study's runs: there is no published number to compare with.`,
    );
  }
  return { run: rec.name, experiment: cfg.experiment, study, metrics, setting, flags };
}

/**
 * A flag when the run over-fitted: validation loss at the last epoch at least 5 % above its lowest (reached
 * earlier), and training accuracy at least 10 points above validation accuracy there. Null otherwise, or when
 * the history lacks the losses (runs written before they were recorded).
 */
export function overfitFlag(history: RunRecord["history"]): string | null {
  const measured = (h: RunRecord["history"][number]) =>
    Number.isFinite(h.val_loss) && Number.isFinite(h.train_acc);
  if (history.length < 4 || !history.every(measured)) return null;
  const low = history.reduce((a, b) => (b.val_loss! < a.val_loss! ? b : a));
  const last = history[history.length - 1];
  const gap = last.train_acc! - last.val_acc;
  if (low === last || last.val_loss! < 1.05 * low.val_loss! || gap < 0.1) return null;
  return `Over-fitted: validation loss was lowest at epoch ${low.epoch} (${low.val_loss!.toFixed(3)}) and ` +
    `${last.val_loss!.toFixed(3)} at the last (${last.epoch}), while training accuracy reached ` +
    `${last.train_acc!.toFixed(3)} against validation ${last.val_acc.toFixed(3)} (training accuracy is ` +
    "measured on augmented images). The checkpoint kept is the one best on validation accuracy; more " +
    "epochs would not help here, stronger regularisation might.";
}

/** The metric rows as table rows (numbers with 3 decimals, "–" where the study published none). */
export function metricRows(r: RunResults): Record<string, string>[] {
  return r.metrics.map((m) => ({
    metric: m.metric,
    "this run": m.run.toFixed(3),
    study: m.study === undefined ? "–" : m.study.toFixed(3),
    difference: m.study === undefined
      ? "–"
      : `${m.run - m.study >= 0 ? "+" : "−"}${Math.abs(m.run - m.study).toFixed(3)}`,
  }));
}

/** The flags as a Markdown list under a heading naming the run. */
export function flagsMarkdown(r: RunResults): string {
  return [`**What to keep in mind about run \`${r.run}\`:**`, "", ...r.flags.map((f) => `- ${f}`)].join("\n");
}

/** The last line of a results cell (the runner checks that it arrived): accuracy and macro-F1 vs the study. */
export function resultsLine(r: RunResults): string {
  const acc = r.metrics[0];
  const f1 = r.metrics[1];
  const vs = (m: { run: number; study?: number }) =>
    m.study === undefined ? "" : ` (study ${m.study.toFixed(3)})`;
  return `results: ${r.run}: test accuracy ${acc.run.toFixed(4)}${vs(acc)}, macro-F1 ${f1.run.toFixed(4)}${
    vs(f1)
  }`;
}
