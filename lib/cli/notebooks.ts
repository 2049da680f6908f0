/**
 * `deno task notebooks [--smoke] [name...]`: registers the Deno Jupyter kernel, executes the notebooks headless
 * through Jupyter (nbconvert) and checks each executed notebook (lib/viz/notebook_check.ts): no error, every
 * display stored up to the final "notebook complete" marker, a PNG beside every chart, no absolute machine
 * path in the outputs. Full runs write the executed notebooks back into `notebooks/` only when they pass;
 * `--smoke` (also FER_SMOKE=1) runs a tiny subset and leaves the executed copies in a temp folder, with the
 * smoke runs the notebooks train (FER_RUNS_DIR=<that folder>/runs: `checkpoints/` is left alone).
 */
import { copyFileSync, mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PROJECT_ROOT } from "../util/project.ts";
import { checkNotebook, type NotebookJson } from "../viz/notebook_check.ts";
import { type CommandSpec, parseCli } from "./args.ts";

const SPEC: CommandSpec = {
  name: "notebooks",
  usage: ["[--smoke] [name...]"],
  summary: "Registers the Deno Jupyter kernel and executes the notebooks (all, or those whose file name " +
    "contains a given name)\nheadless through Jupyter, checks that every output arrived, and writes the " +
    "passing ones back into notebooks/.",
  options: {
    smoke: { type: "boolean", help: "a tiny subset; executed copies go to a temp folder (also FER_SMOKE=1)" },
  },
  positionals: { max: Infinity },
};
const { values, positionals } = parseCli(SPEC, (a) => ({
  values: { smoke: a.flag("smoke") || Deno.env.get("FER_SMOKE") === "1" },
  positionals: a.positionals,
}));

async function run(cmd: string, args: string[], env: Record<string, string> = {}): Promise<number> {
  try {
    const p = new Deno.Command(cmd, { args, env, stdout: "inherit", stderr: "inherit" }).spawn();
    return (await p.status).code;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return 127;
    throw e;
  }
}

const dir = join(PROJECT_ROOT, "notebooks");
const all = readdirSync(dir).filter((f) => f.endsWith(".ipynb")).sort();
const chosen = positionals.length ? all.filter((f) => positionals.some((p) => f.includes(p))) : all;
if (chosen.length === 0) {
  console.error(`error: no notebook in ${dir} matches ${positionals.join(", ")}`);
  Deno.exit(2);
}

if ((await run(Deno.execPath(), ["jupyter", "--install", "--force"])) !== 0) {
  console.error("error: `deno jupyter --install` failed");
  Deno.exit(1);
}
// Paths that must not appear in committed outputs.
const forbidden = [PROJECT_ROOT, Deno.env.get("HOME") ?? "", Deno.env.get("FER2013_DIR") ?? ""]
  .filter((p) => p.length > 1);
const outDir = mkdtempSync(join(tmpdir(), "fer-notebooks-"));
const env: Record<string, string> = values.smoke
  ? { FER_SMOKE: "1", FER_RUNS_DIR: join(outDir, "runs") }
  : {};
let failed = 0;
for (const nb of chosen) {
  const t0 = performance.now();
  console.log(`\n=== ${nb}${values.smoke ? " (smoke)" : ""}`);
  const code = await run("jupyter", [
    "nbconvert",
    "--to",
    "notebook",
    "--execute",
    "--ExecutePreprocessor.kernel_name=deno",
    "--ExecutePreprocessor.timeout=-1",
    "--output-dir",
    outDir,
    join(dir, nb),
  ], env);
  if (code === 127) {
    console.error(
      "error: `jupyter` not found: install it (Debian: apt install jupyter-nbconvert python3-nbclient)",
    );
    Deno.exit(1);
  }
  const problems = code === 0
    ? checkNotebook(JSON.parse(readFileSync(join(outDir, nb), "utf8")) as NotebookJson, { forbidden })
    : [`nbconvert exited with status ${code}`];
  for (const p of problems) console.error(`  ${nb}: ${p}`);
  if (problems.length) failed++;
  else if (!values.smoke) copyFileSync(join(outDir, nb), join(dir, nb));
  console.log(
    `${problems.length ? "FAILED" : "ok"}  ${nb}  ${((performance.now() - t0) / 1000).toFixed(1)} s` +
      (problems.length || values.smoke ? "" : "  (written to notebooks/)"),
  );
}
console.log(`executed copies in ${outDir}`);
if (failed) {
  console.error(`${failed} notebook(s) failed`);
  Deno.exit(1);
}
