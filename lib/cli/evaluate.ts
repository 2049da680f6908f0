/**
 * `deno task evaluate --predictions FILE [--json] [--digits N] [--resamples N] [--seed N]`: the
 * classification report (scikit-learn's text format), confusion matrix and bootstrap 95% confidence
 * intervals recomputed from a predictions CSV (columns path,label,pred[,p_*]; see lib/eval/predictions.ts).
 * With `--json`, prints only `{"accuracy", "per_class": {class: {precision, recall, f1, support}},
 * "macro_avg": {precision, recall, f1}, "weighted_avg": {...}}` over all seven classes.
 *
 * `deno task evaluate <run> [--split test|val] [--data DIR] [--json]` predicts the split with the run's best
 * model (checkpoints/<run>/best/) on the dataset the run recorded (or `--data`, which must hold the same data:
 * the run's data fingerprint is checked), writes `predictions.csv` (test) or `predictions_val.csv` (val) into
 * the run folder and prints the same report, with the run's class names. A run that recorded no fingerprint
 * cannot be checked, so its prediction files are left untouched. `--tta hflip|5crop|10crop` averages over
 * test-time views (lib/eval/tta.ts; `--tta-average prob|logit`, default prob) and writes
 * `predictions[_val]_tta-<mode>.csv` instead (`…-logit.csv` with logits averaged); `--tta auto` takes the mode chosen on validation (the best of the
 * `--split val --tta <mode>` evaluations made so far, against none), so `evaluate <run> --tta auto` is the
 * single test of the final model.
 *
 * `deno task evaluate --ensemble <run> <run>... [--name N] [--split test|val] [--tta MODE]` averages the
 * members' class probabilities (each with that TTA; `auto`: each member's own choice on validation; a member's
 * predictions are read from its files when `evaluate` wrote them) and writes the ensemble as a run folder,
 * checkpoints/ensemble-<name>/ (lib/eval/ensemble.ts), printing the same report. With `--choose`, the runs
 * given are candidates: every subset of at least two is scored on the validation split, and the test split is
 * predicted once with the most accurate subset's members.
 */
import { CLASSES } from "../data/classes.ts";
import { DatasetError } from "../data/dataset.ts";
import {
  type ClassificationReport,
  classificationReport,
  confusionMatrix,
  formatConfusionMatrix,
  formatReport,
} from "../eval/metrics.ts";
import { type PredictionRow, PredictionsError, readPredictionsCsv } from "../eval/predictions.ts";
import { predictionsPath, resolveRunDir, RunError, runPaths } from "../runs/runs.ts";
import { initEngine } from "../engine/init.ts";
import { CheckpointError } from "../models/checkpoint.ts";
import { bootstrapCI, type BootstrapOptions, type BootstrapResult } from "../eval/stats.ts";
import {
  describeResolvedTta,
  describeTta,
  evaluateRunTta,
  parseTta,
  resolveTta,
  type TtaSpec,
} from "../eval/tta.ts";
import {
  chooseThenTestEnsemble,
  describeEnsembleTta,
  type EnsembleTta,
  evaluateEnsemble,
} from "../eval/ensemble.ts";
import { ArgsError, type CommandSpec, helpText, parseArgv, runArg } from "./args.ts";

/** Everything the report shows, computed from prediction rows. */
export type Evaluation = {
  n: number;
  classes: string[];
  report: ClassificationReport;
  /** m[true][pred]. */
  confusion: number[][];
  /** Absent when the bootstrap was switched off. */
  bootstrap?: BootstrapResult;
};

/** A bad command line or input; printed as `error: ...` with exit status 1. */
export class EvaluateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "EvaluateError";
  }
}

/**
 * Computes the classification report (sklearn-equal, zero_division=0, every class included), confusion
 * matrix and, unless `bootstrap` is false, bootstrap confidence intervals from prediction rows.
 */
export function reportFromPredictions(
  rows: PredictionRow[],
  { classes = CLASSES, bootstrap = {} }: {
    classes?: readonly string[];
    bootstrap?: BootstrapOptions | false;
  } = {},
): Evaluation {
  if (rows.length === 0) throw new EvaluateError("no predictions to evaluate (the file has a header only)");
  const yTrue = Int32Array.from(rows, (r) => r.label);
  const yPred = Int32Array.from(rows, (r) => r.pred);
  const C = classes.length;
  return {
    n: rows.length,
    classes: [...classes],
    report: classificationReport(yTrue, yPred, classes),
    confusion: confusionMatrix(yTrue, yPred, C),
    bootstrap: bootstrap === false ? undefined : bootstrapCI(yTrue, yPred, C, bootstrap),
  };
}

type Prf = { precision: number; recall: number; f1: number };

/** The `--json` object: accuracy, per-class scores with support, and macro / weighted averages. */
export function reportJson(report: ClassificationReport): {
  accuracy: number;
  per_class: Record<string, Prf & { support: number }>;
  macro_avg: Prf;
  weighted_avg: Prf;
} {
  const prf = (s: Prf) => ({ precision: s.precision, recall: s.recall, f1: s.f1 });
  return {
    accuracy: report.accuracy,
    per_class: Object.fromEntries(
      report.classes.map((c) => [c, { ...prf(report.per_class[c]), support: report.per_class[c].support }]),
    ),
    macro_avg: prf(report.macro_avg),
    weighted_avg: prf(report.weighted_avg),
  };
}

/** The human-readable report: sklearn's text report, the confusion matrix and the bootstrap intervals. */
export function formatEvaluation(
  ev: Evaluation,
  { digits = 2, source }: { digits?: number; source?: string } = {},
) {
  const parts: string[] = [];
  if (source) parts.push(`predictions: ${source} (${ev.n} item${ev.n === 1 ? "" : "s"})\n`);
  parts.push(formatReport(ev.report, { digits }));
  parts.push(
    "confusion matrix (rows: true class, columns: predicted class)\n" +
      formatConfusionMatrix(ev.confusion, ev.classes),
  );
  const b = ev.bootstrap;
  if (b) {
    const pct = `${Math.round(b.level * 1000) / 10}%`;
    const f = (v: number) => v.toFixed(4);
    parts.push(
      `bootstrap ${pct} confidence intervals (${b.resamples} resamples, seed ${b.seed}, percentile)\n` +
        `  accuracy  ${f(b.accuracy.estimate)}  [${f(b.accuracy.lower)}, ${f(b.accuracy.upper)}]\n` +
        `  macro F1  ${f(b.macro_f1.estimate)}  [${f(b.macro_f1.lower)}, ${f(b.macro_f1.upper)}]\n`,
    );
  }
  return parts.join("\n");
}

/** Prints an evaluation: the `--json` object on one line, or the text of formatEvaluation. */
export function printReport(
  ev: Evaluation,
  { json = false, digits = 2, source, log = console.log }: {
    json?: boolean;
    digits?: number;
    source?: string;
    log?: (s: string) => void;
  } = {},
): void {
  if (json) log(JSON.stringify(reportJson(ev.report)));
  else log(formatEvaluation(ev, { digits, source }).trimEnd());
}

const SPEC: CommandSpec = {
  name: "evaluate",
  usage: [
    "--predictions FILE [--json] [--digits N] [--resamples N] [--seed N]",
    "<run> [--split test|val] [--tta none|hflip|5crop|10crop|auto] [--tta-average prob|logit] [--json]",
    "--ensemble <run> <run>... [--choose] [--name NAME] [--split test|val] [--tta MODE] [--json]",
  ],
  summary: "The classification report, confusion matrix and bootstrap 95% intervals of a predictions CSV " +
    "(path,label,pred[,p_*]),\nor of a run's best model on its test or validation split (written to the run's " +
    "predictions.csv / predictions_val.csv).",
  options: {
    predictions: { type: "string", value: "FILE", help: "a predictions CSV to score" },
    json: { type: "boolean", help: "print only the JSON report (no bootstrap)" },
    digits: { type: "string", value: "N", help: "digits in the text report", default: "2" },
    resamples: { type: "string", value: "N", help: "bootstrap resamples", default: "1000" },
    seed: { type: "string", value: "N", help: "bootstrap seed (--predictions)", default: "0" },
    split: { type: "string", value: "test|val", help: "split a run is evaluated on", default: "test" },
    data: { type: "string", value: "DIR", help: "the run's dataset, moved (must hold the same data)" },
    tta: {
      type: "string",
      value: "MODE",
      help: "test-time augmentation: none, hflip, 5crop, 10crop, or auto: the mode chosen on validation " +
        "(lib/eval/tta.ts; for an ensemble, each member's own)",
      default: "none",
    },
    "tta-average": {
      type: "string",
      value: "HOW",
      help: "average the TTA views' prob or logit",
      default: "prob",
    },
    ensemble: { type: "boolean", help: "average the probabilities of the runs given (lib/eval/ensemble.ts)" },
    name: { type: "string", value: "NAME", help: "ensemble name: checkpoints/ensemble-NAME/" },
    choose: {
      type: "boolean",
      help: "with --ensemble: choose the members among the runs on validation, then test once",
    },
  },
  positionals: { max: Infinity },
};
const USAGE = helpText(SPEC).split("\n\n")[0];

function intOption(name: string, value: string, min: number): number {
  const v = Number(value);
  if (value.trim() === "" || !Number.isInteger(v) || v < min) {
    throw new EvaluateError(`--${name} must be an integer >= ${min}, got "${value}"`);
  }
  return v;
}

/** Runs the CLI on `args`; returns the exit status. */
export async function main(args: string[]): Promise<number> {
  try {
    let parsed;
    try {
      parsed = parseArgv(SPEC, args);
      if (parsed === "help") {
        console.log(helpText(SPEC));
        return 0;
      }
    } catch (e) {
      if (e instanceof ArgsError) throw new EvaluateError(`${e.message}\n${USAGE}`);
      throw e;
    }
    const values = {
      predictions: parsed.path("predictions"), // relative to the caller's directory
      json: parsed.flag("json"),
      digits: parsed.string("digits", "2"),
      resamples: parsed.string("resamples", "1000"),
      seed: parsed.string("seed", "0"),
      split: parsed.string("split", "test"),
      data: parsed.path("data"),
      tta: parsed.string("tta", "none"),
      "tta-average": parsed.string("tta-average", "prob"),
      ensemble: parsed.flag("ensemble"),
      choose: parsed.flag("choose"),
      name: parsed.string("name"),
    };
    const positionals = parsed.positionals;
    if (values.predictions !== undefined) {
      if (positionals.length) {
        throw new EvaluateError(`give either --predictions FILE or a run name, not both\n${USAGE}`);
      }
      const digits = intOption("digits", values.digits, 0);
      const resamples = intOption("resamples", values.resamples, 1);
      const seed = intOption("seed", values.seed, 0);
      const file = values.predictions;
      const { rows } = readPredictionsCsv(file);
      if (rows.length === 0) throw new EvaluateError(`${file}: no predictions (header only)`);
      const ev = reportFromPredictions(rows, { bootstrap: values.json ? false : { resamples, seed } });
      printReport(ev, { json: values.json, digits, source: file });
      return 0;
    }
    // `--tta auto`: the mode chosen on validation, resolved once the run is known (an ensemble: per member)
    const auto = values.tta === "auto";
    let tta: TtaSpec;
    try {
      tta = parseTta(auto ? "none" : values.tta, values["tta-average"]);
    } catch (e) {
      throw new EvaluateError((e as Error).message);
    }
    if (values.split !== "test" && values.split !== "val") {
      throw new EvaluateError(`--split must be test or val, got "${values.split}"`);
    }
    const split = values.split;
    if (values.choose && !values.ensemble) throw new EvaluateError(`--choose goes with --ensemble\n${USAGE}`);
    if (values.choose && parsed.string("split") !== undefined) {
      throw new EvaluateError(
        "--choose scores the candidates on val and tests the chosen ensemble: no --split",
      );
    }
    if (values.ensemble) {
      const ensTta: EnsembleTta = auto ? "auto" : tta;
      if (positionals.length < 2) throw new EvaluateError(`--ensemble needs at least two runs\n${USAGE}`);
      await initEngine();
      const log = values.json ? () => {} : console.log;
      const res = await (values.choose
        ? chooseThenTestEnsemble(positionals.map(runArg), { tta: ensTta, name: values.name, log }).then(
          (c) => {
            log(`validation accuracy of each subset (best first):`);
            for (const t of c.tried) {
              log(`  ${(t.accuracy * 100).toFixed(2)} %  ${t.members.join(" + ")}`);
            }
            return c.test;
          },
        )
        : evaluateEnsemble(positionals.map(runArg), { split, tta: ensTta, name: values.name, log })).catch(
          (e) => {
            throw e instanceof RangeError ? new EvaluateError(e.message) : e;
          },
        );
      const ev = reportFromPredictions(res.rows, {
        bootstrap: values.json ? false : { resamples: intOption("resamples", values.resamples, 1), seed: 0 },
      });
      printReport(ev, {
        json: values.json,
        digits: intOption("digits", values.digits, 0),
        source: values.choose
          ? `ensemble chosen on val among ${positionals.length} runs, TTA ${
            describeEnsembleTta(ensTta)
          } (test split)`
          : `ensemble of ${positionals.length} runs, TTA ${describeEnsembleTta(ensTta)} (${split} split)`,
      });
      if (!values.json) {
        console.log(`ensemble written to ${res.dir}`);
      }
      return 0;
    }
    if (positionals.length === 1) {
      const run = runArg(positionals[0]);
      if (auto) {
        let chosen;
        try {
          chosen = resolveTta(resolveRunDir(run), "auto", values["tta-average"]);
        } catch (e) {
          throw e instanceof RangeError ? new EvaluateError(e.message) : e;
        }
        tta = { mode: chosen.mode, average: chosen.average };
        if (!values.json) console.log(describeResolvedTta(chosen));
      }
      await initEngine();
      const { runDir, classes, rows, written } = await evaluateRunTta(run, split, tta, { data: values.data })
        .catch((e) => {
          throw e instanceof RangeError ? new EvaluateError(e.message) : e;
        });
      const paths = runPaths(runDir);
      const out = predictionsPath(paths, split, tta.mode, tta.average);
      const digits = intOption("digits", values.digits, 0);
      const ev = reportFromPredictions(rows, {
        classes,
        bootstrap: values.json ? false : { resamples: intOption("resamples", values.resamples, 1), seed: 0 },
      });
      printReport(ev, {
        json: values.json,
        digits,
        source: `${runDir} (${split} split; TTA ${describeTta(tta)})`,
      });
      if (!written) {
        console.error(
          `note: ${paths.config} records no data fingerprint, so these data cannot be checked against the ` +
            `run's; ${out} was left untouched`,
        );
      } else if (!values.json) console.log(`predictions written to ${out}`);
      return 0;
    }
    throw new EvaluateError(
      positionals.length ? `expected one run name, got ${positionals.join(" ")}\n${USAGE}` : USAGE,
    );
  } catch (e) {
    if (
      e instanceof EvaluateError || e instanceof PredictionsError || e instanceof RunError ||
      e instanceof CheckpointError || e instanceof DatasetError
    ) {
      console.error(`error: ${e.message}`);
      return 1;
    }
    throw e;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
