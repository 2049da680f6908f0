/**
 * `deno task report <run>`: a run (a folder, or a name under checkpoints/) as Markdown — config summary,
 * per-epoch history table, test classification report, totals; for a run still training, its progress, cost so
 * far and the resume command.
 *
 * `deno task report --table <run> <run>...`: the runs as one Markdown table — recipe, parameters, img/s,
 * CPU-hours, validation and test accuracy without and with the TTA chosen on validation (lib/eval/report.ts
 * `resultsTable`).
 */
import "@tensorflow/tfjs-backend-cpu"; // parameter counts build the model once (zero init)
import { initEngine } from "../engine/init.ts";
import { resultsTable, runMarkdown } from "../eval/report.ts";
import { resolveRunDir, RunError } from "../runs/runs.ts";
import { ArgsError, type CommandSpec, parseCli, runArg } from "./args.ts";

const SPEC: CommandSpec = {
  name: "report",
  usage: ["<run>", "--table <run> <run>..."],
  summary: "Prints a run (a name under checkpoints/ or a run folder) as Markdown: config summary, " +
    "per-epoch history,\ntest classification report and totals; for a run still training, its progress, " +
    "cost so far and\nthe resume command. With --table, one results table of the runs given.",
  options: {
    table: {
      type: "boolean",
      help: "one table: recipe, params, img/s, CPU-hours, val/test accuracy without and with TTA",
    },
  },
  positionals: { max: Infinity },
};

const { table, runs } = parseCli(SPEC, (a) => {
  if (!a.positionals.length) throw new ArgsError("no run named");
  const table = a.flag("table");
  if (!table && a.positionals.length > 1) throw new ArgsError("one run, or --table with several");
  return { table, runs: a.positionals.map(runArg) };
});
try {
  const dirs = runs.map((r) => resolveRunDir(r));
  if (table) await initEngine("cpu"); // the engine module keeps tfjs's "running in Node.js" banner off
  console.log(table ? resultsTable(dirs) : runMarkdown(dirs[0]));
} catch (e) {
  if (e instanceof RunError) {
    console.error(`error: ${e.message}`);
    Deno.exit(1);
  }
  throw e;
}
