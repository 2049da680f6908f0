/**
 * The models a run folder or an ensemble folder predicts with (`deno task predict`, notebook 07): a run's best
 * model with its TTA, or every member of an ensemble with the TTA the ensemble recorded for it (their
 * probabilities are averaged, lib/faces/pipeline.ts `classifyCrops`), and the model to use on new faces, the
 * best of the runs and ensembles on validation.
 */
import type * as tfl from "@tensorflow/tfjs-layers";
import { bestOnValidation, type ResolvedTta, resolveTta } from "./tta.ts";
import { checkMemberClasses, ensembleMembers, ensembleValAccuracy, isEnsembleDir } from "./ensemble.ts";
import { loadRunConfig, loadRunModel } from "../runs/predict.ts";
import type { TrainConfig } from "../train/config.ts";

/** A model ready to predict: a run's, or one member of an ensemble, with its config, classes and TTA. */
export type Predictor = {
  name: string;
  dir: string;
  cfg: TrainConfig;
  model: tfl.LayersModel;
  classes: string[];
  tta: ResolvedTta;
};

/**
 * The models `runDir` predicts with: a run's best model, or every member of an ensemble folder (their
 * probabilities are to be averaged, as the ensemble's evaluation did). `tta.mode` `auto`: a run's mode chosen
 * on validation, each ensemble member's recorded mode; any other mode applies to every model. The members must
 * share their class names. The caller disposes the models.
 */
export async function loadPredictors(
  runDir: string,
  tta: { mode: string; average?: string },
): Promise<Predictor[]> {
  if (!isEnsembleDir(runDir)) {
    const spec = resolveTta(runDir, tta.mode, tta.average);
    const { model, classes } = await loadRunModel(runDir);
    return [{
      name: runDir.split("/").pop()!,
      dir: runDir,
      cfg: loadRunConfig(runDir),
      model,
      classes,
      tta: spec,
    }];
  }
  const out: Predictor[] = [];
  try {
    for (const m of ensembleMembers(runDir)) {
      const spec: ResolvedTta = tta.mode === "auto"
        ? { ...m.tta, source: "given", valAccuracy: null }
        : resolveTta(m.dir, tta.mode, tta.average);
      const { model, classes } = await loadRunModel(m.dir);
      out.push({ name: m.run, dir: m.dir, cfg: loadRunConfig(m.dir), model, classes, tta: spec });
      checkMemberClasses(out[0], out.at(-1)!);
    }
  } catch (e) {
    for (const p of out) p.model.dispose();
    throw e;
  }
  return out;
}

/**
 * The model to use on new faces: of the runs (each under its own TTA chosen on validation, lib/eval/tta.ts
 * `bestOnValidation`) and the ensembles (members and their TTA chosen on validation, {@link ensembleValAccuracy}),
 * the one with the best validation accuracy; ties keep the run, then the earlier ensemble; null when none has a
 * validation accuracy. Both were chosen on the same validation split, so each figure is slightly optimistic,
 * the ensemble's more (it is the best of its candidate subsets).
 */
export function bestModelOnValidation(
  runDirs: string[],
  ensembleDirs: string[] = [],
): { dir: string; valAccuracy: number; ensemble: boolean } | null {
  const run = bestOnValidation(runDirs);
  let best = run ? { dir: run.runDir, valAccuracy: run.valAccuracy, ensemble: false } : null;
  for (const dir of ensembleDirs) {
    const acc = ensembleValAccuracy(dir);
    if (acc !== null && (best === null || acc > best.valAccuracy)) {
      best = { dir, valAccuracy: acc, ensemble: true };
    }
  }
  return best;
}
