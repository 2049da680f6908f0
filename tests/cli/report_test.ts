import assert from "node:assert/strict";
import { join } from "node:path";
import { PROJECT_ROOT } from "../../lib/util/project.ts";

const CLI = join(PROJECT_ROOT, "lib/cli/report.ts");

/** Runs `deno task report` as a subprocess. */
async function report(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CLI, ...args],
    cwd: PROJECT_ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test("report CLI: one run as Markdown, --table for several; bad arguments and missing runs are named", async () => {
  const dir = await Deno.makeTempDir({ prefix: "fer-report-cli-" });
  try {
    for (const name of ["a", "b"]) {
      const run = join(dir, name);
      Deno.mkdirSync(run);
      Deno.writeTextFileSync(
        join(run, "config.json"),
        JSON.stringify({ experiment: "fer_cnn", model: "fer_cnn_small", preset: "cpu", epochs: 4 }),
      );
      Deno.writeTextFileSync(
        join(run, "history.json"),
        JSON.stringify([{
          epoch: 1,
          train_loss: 1,
          train_acc: 0.5,
          val_loss: 1,
          val_acc: name === "a" ? 0.25 : 0.5,
          lr: 1e-3,
          seconds: 10,
          img_s: 50,
        }]),
      );
    }
    const one = await report(join(dir, "a"));
    assert.equal(one.code, 0, one.stderr);
    assert.match(one.stdout, /in progress: 1 of at most 4 epochs done/);
    const table = await report("--table", join(dir, "a"), join(dir, "b"));
    assert.equal(table.code, 0, table.stderr);
    assert.doesNotMatch(table.stderr, /TensorFlow\.js in Node\.js/); // tfjs's banner, kept off
    const lines = table.stdout.trim().split("\n");
    assert.equal(lines.length, 4);
    assert.match(
      lines[2],
      /^\| a \| fer_cnn \(cpu\) \| 2\.53 M \| 50 \| – \| 1 of 4, training \(best 1\) \| 0\.2500 \|/,
    );
    assert.match(lines[3], /^\| b \| .* \| 0\.5000 \| none \|/);
    const two = await report(join(dir, "a"), join(dir, "b"));
    assert.equal(two.code, 2); // a usage error
    assert.match(two.stderr, /one run, or --table with several/);
    const missing = await report("--table", join(dir, "a"), join(dir, "nope"));
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /nope\/config\.json not found/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
