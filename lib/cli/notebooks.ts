/**
 * `deno task notebooks [--smoke] [name...]`: registers the Deno Jupyter kernel and executes the notebooks
 * headless through Jupyter (nbconvert), failing on any cell error. Full runs write their outputs back into
 * `notebooks/`; `--smoke` (also FER_SMOKE=1) runs a tiny subset and writes the executed copies to a temp folder.
 */
import { mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PROJECT_ROOT } from "../data/dataset.ts";
import { type CommandSpec, parseCli } from "./args.ts";

const SPEC: CommandSpec = {
  name: "notebooks",
  usage: ["[--smoke] [name...]"],
  summary: "Registers the Deno Jupyter kernel and executes the notebooks (all, or those whose file name " +
    "contains a given name)\nheadless through Jupyter, writing their outputs back into notebooks/.",
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
const outDir = values.smoke ? mkdtempSync(join(tmpdir(), "fer-notebooks-")) : dir;
const env: Record<string, string> = values.smoke ? { FER_SMOKE: "1" } : {};
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
  const text = code === 0 ? readFileSync(join(outDir, nb), "utf8") : "";
  const hasError = text.includes('"output_type": "error"');
  if (code !== 0 || hasError) failed++;
  console.log(
    `${code === 0 && !hasError ? "ok" : "FAILED"}  ${nb}  ${((performance.now() - t0) / 1000).toFixed(1)} s`,
  );
}
if (values.smoke) console.log(`executed copies in ${outDir}`);
if (failed) {
  console.error(`${failed} notebook(s) failed`);
  Deno.exit(1);
}
