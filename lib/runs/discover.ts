/** Finding runs: the finished run folders under the runs folder, by experiment. */
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { defaultPreset } from "../train/experiments.ts";
import { runPaths, RUNS_DIR } from "./paths.ts";
import { bestValAccuracy } from "./files.ts";

/** A run folder's config.json fields that decide whether a search keeps it. */
type FoundConfig = { preset?: string; experiment?: string; kind?: string };

/**
 * The folders under `outDir` with a test report and a readable config that `keep` accepts, oldest first (by
 * when the report was written). Shared by {@link findRuns} and {@link findEnsembles}.
 */
function scanFinished(outDir: string, keep: (cfg: FoundConfig, dir: string) => boolean): string[] {
  if (!existsSync(outDir)) return [];
  return readdirSync(outDir).map((d) => join(outDir, d)).filter((d) => {
    const p = runPaths(d);
    if (!existsSync(p.testReportJson) || !existsSync(p.config)) return false;
    let cfg: FoundConfig;
    try {
      cfg = JSON.parse(Deno.readTextFileSync(p.config));
    } catch {
      return false;
    }
    return keep(cfg, d);
  }).sort((a, b) => finished(a) - finished(b) || a.localeCompare(b));
}

/**
 * Run folders under `outDir` (default checkpoints/) whose config names `experiment` and that have a test report,
 * oldest first (by when the report was written). Smoke-preset runs are left out unless in smoke mode or
 * `includeSmoke`. Folders with an unreadable config and ensembles ({@link findEnsembles}) are skipped.
 * `withWeights`: only runs whose best model is present (committed run folders carry no weights; a fresh clone
 * has their reports, not their models).
 */
export function findRuns(
  experiment?: string,
  outDir = RUNS_DIR,
  includeSmoke = defaultPreset() === "smoke",
  withWeights = false,
): string[] {
  return scanFinished(outDir, (cfg, d) => {
    if (withWeights && !existsSync(join(runPaths(d).best, "model.json"))) return false;
    if (!includeSmoke && cfg.preset === "smoke") return false;
    if (cfg.kind === "ensemble") return false; // trained runs only: ensembles are found by findEnsembles
    return !experiment || cfg.experiment === experiment;
  });
}

/**
 * Ensemble folders under `outDir` (lib/eval/ensemble.ts: config.json with `kind: "ensemble"`) that have a test
 * report, oldest first.
 */
export function findEnsembles(outDir = RUNS_DIR): string[] {
  return scanFinished(outDir, (cfg) => cfg.kind === "ensemble");
}

/** When a run's test report was written (ms since epoch). */
function finished(runDir: string): number {
  return Deno.statSync(runPaths(runDir).testReportJson).mtime?.getTime() ?? 0;
}

/**
 * Of `runDirs` (as {@link findRuns} lists them, oldest first), the one whose best epoch has the highest
 * validation accuracy (no TTA), the newer on ties; null when none has a history. What a comparison shows for an
 * experiment with several runs (other seeds, reruns), chosen on validation rather than by date.
 */
export function bestByValidation(runDirs: string[]): string | null {
  let best: { dir: string; acc: number } | null = null;
  for (const dir of runDirs) {
    const acc = bestValAccuracy(runPaths(dir));
    if (acc !== null && (best === null || acc >= best.acc)) best = { dir, acc };
  }
  return best?.dir ?? null;
}
