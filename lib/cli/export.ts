/**
 * `deno task export <run> <dir> [--tta MODE]`: writes the run's best model as a browser-loadable TensorFlow.js
 * LayersModel (`<dir>/model.json` + weight shards; class names, preprocessing and the test-time augmentation —
 * by default the one chosen on validation — in its metadata; lib/models/export.ts). An ensemble folder writes one
 * such folder per member (`<dir>/member-<i>/`, each with its recorded TTA) and `<dir>/ensemble.json`.
 * Exit status: 0 written, 2 bad arguments or run.
 */
import { exportForBrowser } from "../models/export.ts";
import { describeResolvedTta } from "../eval/tta.ts";
import { resolveRunDir } from "../runs/runs.ts";
import { initEngine } from "../engine/init.ts";
import { type CommandSpec, faceTtaOptions, parseCli, runArg, usageError, userPath } from "./args.ts";

const SPEC: CommandSpec = {
  name: "export",
  usage: ["<run|ensemble> <dir> [--tta MODE] [--tta-average prob|logit]"],
  summary: "Writes a run's best model (a run name under checkpoints/ or a run folder) to <dir> as a " +
    "TensorFlow.js LayersModel\n(model.json + weight shards; class names, preprocessing and TTA in its metadata), " +
    "loadable with tf.loadLayersModel.",
  options: {
    ...faceTtaOptions("the demo applies to each face"),
  },
  positionals: { min: 0, max: 2 },
};

const { run, out, tta, ttaAverage } = parseCli(SPEC, (a) => {
  if (a.positionals.length !== 2) usageError(SPEC, "a run and an output folder are needed");
  return {
    run: runArg(a.positionals[0]),
    out: userPath(a.positionals[1]),
    tta: a.string("tta", "auto"),
    ttaAverage: a.string("tta-average", "prob"),
  };
});
try {
  const runDir = resolveRunDir(run);
  await initEngine();
  const { models, ensemble } = await exportForBrowser(runDir, out, { tta, ttaAverage });
  for (const r of models) {
    const p = r.metadata.preprocessing;
    console.log(
      `${r.modelJson}: ${r.metadata.model} from ${r.metadata.run}, ${r.shards.length} weight shard(s); input ` +
        `${p.dataSize}×${p.dataSize} gray face -> ${p.inputSize}×${p.inputSize}×${p.channels}; classes ` +
        r.metadata.classes.join(", ") + `; ${describeResolvedTta(r.metadata.tta!)}`,
    );
  }
  if (ensemble) {
    console.log(
      `${ensemble.ensembleJson}: ${ensemble.manifest.ensemble}, ${models.length} members averaged`,
    );
  }
} catch (e) {
  console.error(`error: ${(e as Error).message}`);
  Deno.exit(2);
}
