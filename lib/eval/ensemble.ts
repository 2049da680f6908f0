/**
 * Ensembles of trained runs: the members' class probabilities (each with its own test-time augmentation) are
 * averaged image by image — matched by path, labels checked — and the ensemble is reported like a run, in its
 * own folder (`checkpoints/ensemble-<name>/`: config.json naming the members, predictions.csv or
 * predictions_val.csv, test_report.json / .txt). Members and TTA are chosen on the validation split
 * (`--split val`); the test split is evaluated once for the chosen ensemble. The TTA is one mode for every
 * member, or `auto`: each member's own choice on validation (lib/eval/tta.ts `chosenTta`). A member's
 * predictions are read from the files `evaluate` writes when they are there (lib/eval/tta.ts `runPredictions`),
 * so an ensemble of committed run folders re-forms without their weights.
 */
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { dirname, isAbsolute, join, relative, resolve } from "node:path";
import { classificationReport, confusionMatrix, formatReport } from "./metrics.ts";
import { type PredictionRow, rowsAccuracy, writePredictionsCsv } from "./predictions.ts";
import { chosenTta, describeTta, runPredictions, type TtaSpec } from "./tta.ts";
import { hasBestModel, resolveRunDir, runDirFor, RunError, runPaths, RUNS_DIR } from "../runs/paths.ts";
import { describeValSplit } from "../runs/data.ts";
import { loadRunConfig } from "../runs/predict.ts";
import { writeAtomicSync } from "../util/fs.ts";

/**
 * Throws a RangeError naming both when a member's class names differ from the first member's: an ensemble
 * averages probabilities class by class.
 */
export function checkMemberClasses(
  first: { name: string; classes: readonly string[] },
  member: { name: string; classes: readonly string[] },
): void {
  if (member.classes.join() === first.classes.join()) return;
  throw new RangeError(
    `${member.name} has classes ${member.classes.join(", ")}, the first member ${first.name} ` +
      first.classes.join(", "),
  );
}

/** A member's predictions. */
export type Member = { name: string; rows: PredictionRow[] };

/** The TTA of an ensemble's members: one mode for all, or `auto`, each member's own choice on validation. */
export type EnsembleTta = TtaSpec | "auto";

/** One line for an ensemble's TTA: the mode, or each member's when `auto` (`info` as predictMembers gives it). */
export function describeEnsembleTta(tta: EnsembleTta, info: Record<string, unknown>[] = []): string {
  if (tta !== "auto") return describeTta(tta);
  const each = info.map((m) => `${m.run}: ${(m.tta as TtaSpec | undefined)?.mode ?? "?"}`).join(", ");
  return `each member's own, chosen on validation${each ? ` (${each})` : ""}`;
}

/**
 * The mean of the members' probability vectors per image (rows in the first member's order; `pred` = argmax,
 * first on ties). Every member must predict the same images with the same labels and have probabilities.
 */
export function averageMembers(members: Member[]): PredictionRow[] {
  if (members.length === 0) throw new RangeError("an ensemble needs at least one member");
  const [first, ...rest] = members;
  const maps = rest.map((m) => ({ name: m.name, byPath: new Map(m.rows.map((r) => [r.path, r])) }));
  for (const m of members) {
    if (m.rows.length !== first.rows.length) {
      throw new RangeError(
        `${m.name} predicts ${m.rows.length} images, ${first.name} ${first.rows.length}: members must share a split`,
      );
    }
  }
  return first.rows.map((r) => {
    if (!r.probs) throw new RangeError(`${first.name}: no probabilities for ${r.path}`);
    const sum = r.probs.slice();
    for (const m of maps) {
      const o = m.byPath.get(r.path);
      if (!o) throw new RangeError(`${m.name} has no prediction for ${r.path}`);
      if (o.label !== r.label) {
        throw new RangeError(`${m.name} labels ${r.path} differently from ${first.name}`);
      }
      if (!o.probs || o.probs.length !== sum.length) {
        throw new RangeError(`${m.name}: no (or a different number of) probabilities for ${r.path}`);
      }
      for (let k = 0; k < sum.length; k++) sum[k] += o.probs[k];
    }
    const probs = sum.map((v) => v / members.length);
    let pred = 0;
    for (let k = 1; k < probs.length; k++) if (probs[k] > probs[pred]) pred = k;
    return { path: r.path, label: r.label, pred, probs };
  });
}

/** What {@link evaluateEnsemble} wrote and computed. */
export type EnsembleResult = {
  dir: string;
  rows: PredictionRow[];
  classes: string[];
  accuracy: number;
  macroF1: number;
};

/** The members' predictions of one split, as {@link predictMembers} returns them. */
export type MemberPredictions = {
  members: Member[];
  classes: string[];
  info: Record<string, unknown>[];
};

/**
 * Throws, before anything is predicted, when the runs do not validate on the same images (another split seed,
 * fraction or cap), naming both runs, their splits and the remedy.
 */
export function checkSharedValSplit(runs: string[]): void {
  const dirs = runs.map((r) => resolveRunDir(r));
  const first = describeValSplit(loadRunConfig(dirs[0]));
  for (const dir of dirs.slice(1)) {
    const own = describeValSplit(loadRunConfig(dir));
    if (own === first) continue;
    const name = (d: string) => d.split("/").pop();
    throw new RangeError(
      `${name(dir)} validates on other images than ${name(dirs[0])} (${runPaths(dir).config}: ${own}; ` +
        `${name(dirs[0])}: ${first}): ensemble members must share one validation split; train another seed ` +
        "of a recipe with `deno task train <experiment> --seed N`, which keeps the preset's split",
    );
  }
}

/**
 * Every run's predictions of `split` (TTA as `tta` says; `auto`: each run's own choice on validation), read
 * from the run's files when there, else evaluated and written; the runs must share their class names, and on
 * the validation split their validation images ({@link checkSharedValSplit}).
 */
export async function predictMembers(
  runs: string[],
  split: "test" | "val",
  tta: EnsembleTta,
  log: (s: string) => void = () => {},
): Promise<MemberPredictions> {
  if (split === "val") checkSharedValSplit(runs);
  const members: Member[] = [];
  const info: Record<string, unknown>[] = [];
  let classes: string[] = [];
  for (const run of runs) {
    const own: TtaSpec = tta === "auto" ? { mode: chosenTta(resolveRunDir(run)).mode, average: "prob" } : tta;
    const r = await runPredictions(run, split, own);
    const name = r.runDir.split("/").pop()!;
    if (members.length) checkMemberClasses({ name: members[0].name, classes }, { name, classes: r.classes });
    else classes = r.classes;
    members.push({ name, rows: r.rows });
    info.push({ run: name, dir: r.runDir, experiment: r.cfg.experiment, model: r.cfg.model, tta: own });
    log(
      `member ${name}: ${(rowsAccuracy(r.rows) * 100).toFixed(2)} % on ${split} (TTA ${describeTta(own)}; ` +
        `${r.read ? "read from its predictions file" : "evaluated"})`,
    );
  }
  return { members, classes, info };
}

/** The validation accuracy of one candidate subset, as {@link selectMembers} lists them. */
export type SubsetScore = { members: string[]; accuracy: number };

/**
 * The subset of at least `minMembers` candidates whose averaged probabilities are most accurate on the rows
 * given (the validation split): every subset is tried (2^n, so at most 12 candidates). Ties go to fewer
 * members, then to the earlier candidates. `tried` lists every subset, best first.
 */
export function selectMembers(
  candidates: Member[],
  { minMembers = 2 }: { minMembers?: number } = {},
): { chosen: string[]; accuracy: number; tried: SubsetScore[] } {
  const n = candidates.length;
  if (n > 12) throw new RangeError(`at most 12 candidates can be searched exhaustively, got ${n}`);
  if (n < minMembers) {
    throw new RangeError(`choosing an ensemble of at least ${minMembers} needs as many candidates, got ${n}`);
  }
  const tried: (SubsetScore & { order: number })[] = [];
  for (let mask = 1; mask < 1 << n; mask++) {
    const subset = candidates.filter((_, i) => mask & (1 << i));
    if (subset.length < minMembers) continue;
    // the order key prefers earlier candidates: bit i of the reversed mask is candidate i
    let order = 0;
    for (let i = 0; i < n; i++) if (mask & (1 << i)) order |= 1 << (n - 1 - i);
    tried.push({ members: subset.map((m) => m.name), accuracy: rowsAccuracy(averageMembers(subset)), order });
  }
  tried.sort((a, b) => b.accuracy - a.accuracy || a.members.length - b.members.length || b.order - a.order);
  const out = tried.map(({ members, accuracy }) => ({ members, accuracy }));
  return { chosen: out[0].members, accuracy: out[0].accuracy, tried: out };
}

/**
 * Writes the ensemble of `preds` (the members' probabilities averaged) as the run-like folder
 * `<outDir>/ensemble-<name>/`: config.json naming the members, the split's predictions CSV and report.
 */
export function writeEnsemble(
  preds: MemberPredictions,
  opts: {
    split: "test" | "val";
    tta: EnsembleTta;
    name?: string;
    outDir?: string;
    chosenOnVal?: SubsetScore[];
  },
): EnsembleResult {
  const { members, classes } = preds;
  const split = opts.split;
  const rows = averageMembers(members);
  const name = opts.name ?? members.map((m) => m.name).join("+");
  const dir = runDirFor(opts.outDir ?? RUNS_DIR, `ensemble-${name}`);
  const paths = runPaths(dir);
  mkdirSync(dir, { recursive: true });
  const y = rows.map((r) => r.label);
  const p = rows.map((r) => r.pred);
  const report = classificationReport(y, p, classes);
  const config = {
    experiment: `ensemble-${name}`,
    model: "ensemble",
    preset: null,
    kind: "ensemble",
    // member folders relative to the ensemble's, so that a clone elsewhere finds them (ensembleMembers)
    members: preds.info.map((m) => ({ ...m, dir: relative(dir, m.dir as string) })),
    tta: opts.tta,
    tta_description: describeEnsembleTta(opts.tta, preds.info),
    averaging: "mean of the members' class probabilities",
    split,
    ...(opts.chosenOnVal ? { members_chosen_on_val: opts.chosenOnVal } : {}),
  };
  writeAtomicSync(paths.config, JSON.stringify(config, null, 2) + "\n");
  writePredictionsCsv(split === "test" ? paths.predictions : paths.predictionsVal, rows, classes);
  const title = `ensemble ${name} (${members.length} members: ${members.map((m) => m.name).join(", ")}; ` +
    `TTA ${describeEnsembleTta(opts.tta, preds.info)}; member probabilities averaged), ${split} split`;
  const summary = {
    run: `ensemble-${name}`,
    experiment: config.experiment,
    model: "ensemble",
    members: members.map((m) => m.name),
    tta: opts.tta,
    split,
    test_accuracy: report.accuracy,
    report,
    confusion_matrix: confusionMatrix(y, p, classes.length),
  };
  // the validation report sits beside the test report's names (test_report.* stays the test split's)
  const json = split === "test" ? paths.testReportJson : paths.valReportJson;
  const txt = split === "test" ? paths.testReportTxt : paths.valReportTxt;
  writeAtomicSync(json, JSON.stringify(summary, null, 2) + "\n");
  writeAtomicSync(txt, `${title}\n\n${formatReport(report, { digits: 4 })}\n`);
  return { dir, rows, classes, accuracy: report.accuracy, macroF1: report.macro_avg.f1 };
}

/**
 * Predicts `split` with every member run (TTA as `tta` says), averages the probabilities and writes the
 * ensemble folder `<outDir>/ensemble-<name>/`. The name defaults to the members' names joined by `+`.
 */
export async function evaluateEnsemble(
  runs: string[],
  opts: {
    split?: "test" | "val";
    tta: EnsembleTta;
    name?: string;
    outDir?: string;
    log?: (s: string) => void;
  },
): Promise<EnsembleResult> {
  if (runs.length < 2) throw new RangeError(`an ensemble needs at least two runs, got ${runs.length}`);
  const split = opts.split ?? "test";
  const preds = await predictMembers(runs, split, opts.tta, opts.log);
  return writeEnsemble(preds, { ...opts, split });
}

/** What {@link chooseThenTestEnsemble} chose on validation and measured on test. */
export type ChosenEnsemble = {
  /** The chosen member runs (folders), in the candidates' order. */
  chosen: string[];
  /** Every subset tried on validation, best first. */
  tried: SubsetScore[];
  val: EnsembleResult;
  test: EnsembleResult;
};

/**
 * Chooses the members on validation — every subset of at least two candidates, each candidate predicted once
 * ({@link selectMembers}) — writes that ensemble's validation report, then predicts the test split with the
 * chosen members only, once, and writes the ensemble folder (config.json lists every subset tried).
 */
export async function chooseThenTestEnsemble(
  candidates: string[],
  opts: { tta: EnsembleTta; name?: string; outDir?: string; log?: (s: string) => void },
): Promise<ChosenEnsemble> {
  if (candidates.length < 2) {
    throw new RangeError(`choosing an ensemble needs at least two candidate runs, got ${candidates.length}`);
  }
  const log = opts.log ?? (() => {});
  const all = await predictMembers(candidates, "val", opts.tta, log);
  const sel = selectMembers(all.members);
  const keep = all.members.map((m) => sel.chosen.includes(m.name));
  const chosen = candidates.filter((_, i) => keep[i]);
  log(`chosen on validation: ${sel.chosen.join(" + ")} (${(sel.accuracy * 100).toFixed(2)} %)`);
  const valPreds = {
    members: all.members.filter((_, i) => keep[i]),
    classes: all.classes,
    info: all.info.filter((_, i) => keep[i]),
  };
  const common = { tta: opts.tta, name: opts.name, outDir: opts.outDir, chosenOnVal: sel.tried };
  const val = writeEnsemble(valPreds, { ...common, split: "val" });
  const test = writeEnsemble(await predictMembers(chosen, "test", opts.tta, log), {
    ...common,
    split: "test",
  });
  return { chosen, tried: sel.tried, val, test };
}

/** True when `dir` holds an ensemble (its config.json has `kind: "ensemble"`). */
export function isEnsembleDir(dir: string): boolean {
  const config = runPaths(dir).config;
  return existsSync(config) && JSON.parse(readFileSync(config, "utf8")).kind === "ensemble";
}

/** A member as an ensemble folder's config.json lists it, with its run folder found. */
export type EnsembleMember = { run: string; dir: string; tta: TtaSpec };

/**
 * The members an ensemble folder lists, each with its run folder: the folder recorded relative to the
 * ensemble's (written so since 2026-12-01), an absolute one that exists (older folders), else the run of that
 * name beside the ensemble folder (a clone elsewhere). Throws a {@link RunError} naming the config when a member
 * is missing.
 */
export function ensembleMembers(ensembleDir: string): EnsembleMember[] {
  const config = runPaths(ensembleDir).config;
  const raw = JSON.parse(readFileSync(config, "utf8")) as {
    kind?: string;
    members?: { run: string; dir: string; tta: TtaSpec }[];
  };
  if (raw.kind !== "ensemble" || !Array.isArray(raw.members)) {
    throw new RunError(`${config} is not an ensemble's config (no kind "ensemble" with its members)`);
  }
  return raw.members.map((m) => {
    const candidates = [
      isAbsolute(m.dir) ? m.dir : resolve(ensembleDir, m.dir),
      join(dirname(resolve(ensembleDir)), m.run),
    ];
    const dir = candidates.find((d) => existsSync(runPaths(d).config));
    if (!dir) {
      const looked = candidates.join(" and ");
      throw new RunError(
        `member ${m.run} of ${config} not found (looked in ${looked}); the ensemble needs its members' run folders`,
      );
    }
    return { run: m.run, dir, tta: m.tta };
  });
}

/** An ensemble's validation accuracy: its val_report.json (written when its members were chosen on validation). */
export function ensembleValAccuracy(dir: string): number | null {
  const file = runPaths(dir).valReportJson;
  return existsSync(file) ? JSON.parse(readFileSync(file, "utf8")).test_accuracy as number : null;
}

/** True when every member of the ensemble folder is on this machine with its best model. */
export function ensembleHasWeights(dir: string): boolean {
  try {
    return ensembleMembers(dir).every((m) => hasBestModel(runPaths(m.dir)));
  } catch (e) {
    if (e instanceof RunError) return false;
    throw e;
  }
}
