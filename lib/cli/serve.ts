/**
 * `deno task serve [run] [--port N] [--model DIR]`: exports the run's best model (lib/models/export.ts) to
 * `checkpoints/<run>/web/` and serves the live demo page (web/) on http://127.0.0.1:<port>/: webcam or uploaded
 * image, faces boxed and labelled with class probabilities and the frame rate, all computed in the browser.
 * Without a run, the newest run under checkpoints/ that has a best model; `--model` serves an existing export.
 */
import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { exportRun } from "../models/export.ts";
import { resolveRunDir } from "../runs/runs.ts";
import { DEFAULT_CONFIG, setupBackend } from "../train/loop.ts";
import { startServer } from "../web/server.ts";

const USAGE = "usage: deno task serve [run] [--port N] [--model DIR]";

/** The newest run folder under checkpoints/ with a best model, or null. */
function newestRun(): string | null {
  const root = DEFAULT_CONFIG.outDir;
  if (!existsSync(root)) return null;
  const runs = readdirSync(root)
    .map((n) => join(root, n))
    .filter((d) => existsSync(join(d, "best", "model.json")) && existsSync(join(d, "config.json")))
    .sort((a, b) =>
      statSync(join(a, "best", "model.json")).mtimeMs - statSync(join(b, "best", "model.json")).mtimeMs
    );
  return runs.at(-1) ?? null;
}

try {
  const { values, positionals } = parseArgs({
    args: Deno.args,
    allowPositionals: true,
    options: { port: { type: "string" }, model: { type: "string" } },
  });
  const port = Number(values.port ?? 8080);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`--port must be 0..65535, got ${values.port}`);
  }
  let modelDir = values.model;
  if (modelDir) {
    if (!existsSync(join(modelDir, "model.json"))) {
      throw new Error(`${join(modelDir, "model.json")} not found`);
    }
  } else {
    const runDir = positionals[0] ? resolveRunDir(positionals[0]) : newestRun();
    if (!runDir) throw new Error("no run with a best model under checkpoints/; train one or name a run");
    await setupBackend();
    modelDir = join(runDir, "web");
    const r = await exportRun(runDir, modelDir);
    console.log(`exported ${r.metadata.model} from ${r.metadata.run} to ${modelDir}`);
  }
  const server = await startServer({ modelDir, port });
  console.log(`demo: ${server.url}  (Ctrl-C stops)`);
} catch (e) {
  console.error(`error: ${(e as Error).message}\n${USAGE}`);
  Deno.exit(2);
}
