/**
 * `deno task report <run>`: a run (a folder, or a name under checkpoints/) as Markdown — config summary,
 * per-epoch history table, test classification report, totals; for a run still training, its progress, cost so
 * far and the resume command.
 */
import { runMarkdown } from "../eval/report.ts";
import { resolveRunDir, RunError } from "../runs/runs.ts";
import { ArgsError, type CommandSpec, parseCli, runArg } from "./args.ts";

const SPEC: CommandSpec = {
  name: "report",
  usage: ["<run>"],
  summary: "Prints a run (a name under checkpoints/ or a run folder) as Markdown: config summary, " +
    "per-epoch history,\ntest classification report and totals; for a run still training, its progress, " +
    "cost so far and\nthe resume command.",
  options: {},
  positionals: { max: 1 },
};

const run = parseCli(SPEC, (a) => {
  if (!a.positionals[0]) throw new ArgsError("no run named");
  return runArg(a.positionals[0]);
});
try {
  console.log(runMarkdown(resolveRunDir(run)));
} catch (e) {
  if (e instanceof RunError) {
    console.error(`error: ${e.message}`);
    Deno.exit(1);
  }
  throw e;
}
