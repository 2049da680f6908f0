/**
 * `deno task report <run>`: a finished run (a folder, or a name under checkpoints/) as Markdown — config
 * summary, per-epoch history table, test classification report, totals.
 */
import { runMarkdown } from "../eval/report.ts";
import { resolveRunDir, RunError } from "../runs/runs.ts";

if (Deno.args.length !== 1 || Deno.args[0].startsWith("-")) {
  console.error("usage: deno task report <run>");
  Deno.exit(2);
}
try {
  console.log(runMarkdown(resolveRunDir(Deno.args[0])));
} catch (e) {
  if (e instanceof RunError) {
    console.error(`error: ${e.message}`);
    Deno.exit(1);
  }
  throw e;
}
