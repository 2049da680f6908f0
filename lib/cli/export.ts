/**
 * `deno task export <run> <dir>`: writes the run's best model as a browser-loadable TensorFlow.js LayersModel
 * (`<dir>/model.json` + weight shards, class names and preprocessing in its metadata; lib/models/export.ts).
 * Exit status: 0 written, 2 bad arguments or run.
 */
import { parseArgs } from "node:util";
import { exportRun } from "../models/export.ts";
import { resolveRunDir } from "../runs/runs.ts";
import { setupBackend } from "../train/loop.ts";

const USAGE = "usage: deno task export <run> <dir>";

try {
  const { positionals } = parseArgs({ args: Deno.args, allowPositionals: true, options: {} });
  if (positionals.length !== 2) throw new Error("a run and an output folder are needed");
  const runDir = resolveRunDir(positionals[0]);
  await setupBackend();
  const r = await exportRun(runDir, positionals[1]);
  const p = r.metadata.preprocessing;
  console.log(
    `${r.modelJson}: ${r.metadata.model} from ${r.metadata.run}, ${r.shards.length} weight shard(s); input ` +
      `${p.dataSize}×${p.dataSize} gray face -> ${p.inputSize}×${p.inputSize}×${p.channels}; classes ` +
      r.metadata.classes.join(", "),
  );
} catch (e) {
  console.error(`error: ${(e as Error).message}\n${USAGE}`);
  Deno.exit(2);
}
