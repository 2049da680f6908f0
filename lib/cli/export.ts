/**
 * `deno task export <run> <dir>`: writes the run's best model as a browser-loadable TensorFlow.js LayersModel
 * (`<dir>/model.json` + weight shards, class names and preprocessing in its metadata; lib/models/export.ts).
 * Exit status: 0 written, 2 bad arguments or run.
 */
import { exportRun } from "../models/export.ts";
import { resolveRunDir } from "../runs/runs.ts";
import { setupBackend } from "../train/loop.ts";
import { type CommandSpec, parseCli, runArg, usageError, userPath } from "./args.ts";

const SPEC: CommandSpec = {
  name: "export",
  usage: ["<run> <dir>"],
  summary: "Writes a run's best model (a run name under checkpoints/ or a run folder) to <dir> as a " +
    "TensorFlow.js LayersModel\n(model.json + weight shards; class names and preprocessing in its metadata), " +
    "loadable with tf.loadLayersModel.",
  options: {},
  positionals: { min: 0, max: 2 },
};

const { run, out } = parseCli(SPEC, (a) => {
  if (a.positionals.length !== 2) usageError(SPEC, "a run and an output folder are needed");
  return { run: runArg(a.positionals[0]), out: userPath(a.positionals[1]) };
});
try {
  const runDir = resolveRunDir(run);
  await setupBackend();
  const r = await exportRun(runDir, out);
  const p = r.metadata.preprocessing;
  console.log(
    `${r.modelJson}: ${r.metadata.model} from ${r.metadata.run}, ${r.shards.length} weight shard(s); input ` +
      `${p.dataSize}×${p.dataSize} gray face -> ${p.inputSize}×${p.inputSize}×${p.channels}; classes ` +
      r.metadata.classes.join(", "),
  );
} catch (e) {
  console.error(`error: ${(e as Error).message}`);
  Deno.exit(2);
}
