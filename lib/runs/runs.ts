/**
 * The run folder (`checkpoints/<run>/`), owned by this folder alone: every other module reads and writes a run
 * through these exports.
 *
 * | module       | owns                                                                                  |
 * | ------------ | ------------------------------------------------------------------------------------- |
 * | `paths.ts`   | the runs folder, run names (none escapes it), the run folder a CLI names, file names  |
 * | `files.ts`   | config.json, history.json/.csv, test_report.json/.txt I/O, prediction rows             |
 * | `state.ts`   | resume state (`last.safetensors`: weights, optimizer state, loop state), temp clean-up|
 * | `data.ts`    | the recorded dataset root, the run's splits, the data fingerprint check                |
 * | `predict.ts` | a run's best model and class names, predicting its test / validation split             |
 * | `discover.ts`| finding finished runs by experiment                                                   |
 * | `figures.ts` | a run's curves and confusion matrix                                                   |
 *
 * Writes are atomic (lib/util/fs.ts). A run folder holds: config.json, history.json, history.csv,
 * last.safetensors, best/ (model.json + weights-<hash>.bin), test_report.json, test_report.txt,
 * predictions.csv (and predictions_val.csv after `evaluate <run> --split val`; `_tta-<mode>` variants after
 * `evaluate --tta`, see `predictionsPath`), and the figures.
 */
export {
  checkRunName,
  hasBestModel,
  newRunName,
  predictionsPath,
  resolveRunDir,
  runDirFor,
  RunError,
  type RunPaths,
  runPaths,
  RUNS_DIR,
} from "./paths.ts";
export {
  bestValAccuracy,
  type HistoryRow,
  predictionRows,
  readConfig,
  readHistory,
  readTestReport,
  removeDerivedPredictions,
  type TestReport,
  writeConfig,
  writeHistory,
  writeTestReport,
} from "./files.ts";
export { initialState, loadState, type LoopState, readState, removeRunTemps, saveState } from "./state.ts";
export {
  checkFingerprint,
  loadRunDataset,
  recordedRoot,
  recordedRootPath,
  runDataRoot,
  type RunSplits,
  runSplits,
  splitsFingerprint,
} from "./data.ts";
export {
  checkRunClasses,
  loadRunConfig,
  loadRunModel,
  predictRun,
  runClasses,
  type RunDataOptions,
  type RunPredictions,
  runSplit,
  type RunSplitResult,
} from "./predict.ts";
export { bestByValidation, findEnsembles, findRuns } from "./discover.ts";
export { lockRun, type RunLock } from "./lock.ts";
export { runFigures, saveRunFigures } from "./figures.ts";
export { runTransform } from "../train/config.ts";
