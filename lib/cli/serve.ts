/**
 * `deno task serve [run] [--port N] [--model DIR] [--tta MODE]`: exports the run's best model, with the
 * test-time augmentation chosen on validation unless `--tta` names one (lib/models/export.ts), to
 * `checkpoints/<run>/web/` and serves the live demo page (web/) on http://127.0.0.1:<port>/: webcam or uploaded
 * image, faces boxed and labelled with class probabilities and the frame rate, all computed in the browser.
 * Without a run, the newest run under checkpoints/ that has a best model; `--model` serves an existing export.
 * An ensemble folder is exported member by member (lib/models/export.ts `exportEnsemble`) and the page averages
 * its members' probabilities.
 */
import { existsSync, readdirSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { ENSEMBLE_JSON, exportForBrowser } from "../models/export.ts";
import { describeResolvedTta } from "../eval/tta.ts";
import { resolveRunDir } from "../runs/runs.ts";
import { initEngine } from "../engine/init.ts";
import { runPaths, RUNS_DIR } from "../runs/paths.ts";
import { startServer } from "../web/server.ts";
import { ArgsError, type CommandSpec, faceTtaOptions, parseCli, runArg } from "./args.ts";

const SPEC: CommandSpec = {
  name: "serve",
  usage: ["[run|ensemble] [--port N] [--model DIR] [--tta MODE] [--tta-average prob|logit]"],
  summary:
    "Exports a run's best model (default: the newest run under checkpoints/) and serves the live demo " +
    "page on\nhttp://127.0.0.1:<port>/: webcam or uploaded photo, faces boxed and labelled in the browser.",
  options: {
    port: { type: "string", value: "N", help: "port to listen on (0: any free port)", default: "8080" },
    model: { type: "string", value: "DIR", help: "serve an existing export instead of exporting a run" },
    ...faceTtaOptions("the demo applies to each face"),
  },
  positionals: { max: 1 },
};

/** The newest run folder under checkpoints/ with a best model, or null. */
function newestRun(): string | null {
  const root = RUNS_DIR;
  if (!existsSync(root)) return null;
  const runs = readdirSync(root)
    .map((n) => join(root, n))
    .filter((d) => existsSync(join(runPaths(d).best, "model.json")) && existsSync(runPaths(d).config))
    .sort((a, b) =>
      statSync(join(a, "best", "model.json")).mtimeMs - statSync(join(b, "best", "model.json")).mtimeMs
    );
  return runs.at(-1) ?? null;
}

const { run, port, model, tta, ttaAverage } = parseCli(SPEC, (a) => {
  const model = a.path("model");
  if (model !== undefined && (a.string("tta") !== undefined || a.string("tta-average") !== undefined)) {
    throw new ArgsError(
      "--tta is chosen when a run is exported; an existing export (--model) keeps its own " +
        "(the page's ?tta= overrides it)",
    );
  }
  return {
    run: a.positionals[0] ? runArg(a.positionals[0]) : undefined,
    port: a.int("port", { min: 0, max: 65535, fallback: 8080 }),
    model,
    tta: a.string("tta", "auto"),
    ttaAverage: a.string("tta-average", "prob"),
  };
});

try {
  let modelDir = model;
  if (modelDir) {
    if (!existsSync(join(modelDir, "model.json")) && !existsSync(join(modelDir, ENSEMBLE_JSON))) {
      throw new Error(`${join(modelDir, "model.json")} (or ${ENSEMBLE_JSON}) not found`);
    }
  } else {
    const runDir = run ? resolveRunDir(run) : newestRun();
    if (!runDir) throw new Error("no run with a best model under checkpoints/; train one or name a run");
    await initEngine();
    modelDir = join(runDir, "web");
    const { models } = await exportForBrowser(runDir, modelDir, { tta, ttaAverage });
    for (const r of models) {
      console.log(
        `exported ${r.metadata.model} from ${r.metadata.run} to ${dirname(r.modelJson)}; ` +
          describeResolvedTta(r.metadata.tta!),
      );
    }
  }
  const server = await startServer({ modelDir, port });
  console.log(`demo: ${server.url}  (Ctrl-C stops)`);
} catch (e) {
  console.error(`error: ${(e as Error).message}`);
  Deno.exit(2);
}
