/**
 * Fault injection (issue 17): training is SIGKILLed several times at random points — at a random file rename
 * (a checkpoint, resume state, history or report write caught between its temporary file and the rename) and at
 * random times — and resumed each time. The finished run must equal an uninterrupted one file for file, evaluate
 * must work on it, and no temporary file may remain.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadDataset } from "../../lib/data/dataset.ts";
import { mulberry32 } from "../../lib/util/rng.ts";
import { listFiles, makeImageFolder, ROOT, runDeno, S } from "./helpers.ts";

const CHILD = join(ROOT, "tests/runs/fault_child.ts");
const isTemp = (f: string) => /\.tmp$|\.tmp-/.test(f); // any temporary file name, ours or not

/** Starts the child and SIGKILLs it `ms` after it starts training (it prints "training"); resolves to how it ended. */
async function killAfterMs(args: string[], env: Record<string, string>, ms: number) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CHILD, ...args],
    cwd: ROOT,
    env,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const reader = (async () => {
    const dec = new TextDecoder();
    let text = "";
    for await (const chunk of child.stdout) {
      text += dec.decode(chunk);
      if (timer === undefined && text.includes("training")) {
        timer = setTimeout(() => child.kill("SIGKILL"), ms);
      }
    }
  })();
  const [status, stderr] = await Promise.all([child.status, new Response(child.stderr).text(), reader]);
  clearTimeout(timer);
  return { code: status.code, signal: status.signal, stderr };
}

Deno.test("killed at random points (also mid-checkpoint) and resumed, a run equals an uninterrupted one", async () => {
  const dir = mkdtempSync(join(tmpdir(), "fer-fault-"));
  const data = join(dir, "data");
  const out = join(dir, "runs");
  const env = { FER_CACHE_DIR: join(dir, "cache") };
  try {
    await makeImageFolder(data);
    // warm the pixel cache so that the kills land in the run folder's writes
    await loadDataset({ root: data, size: S, channels: 1, cacheDir: env.FER_CACHE_DIR, verbose: false });

    const ref = await runDeno(CHILD, [out, "ref", data, "0"], env);
    assert.equal(ref.code, 0, ref.stderr);

    // six kills: four at a random rename among the next six (mid-write), two at a random time in training
    const rand = mulberry32(20261130);
    let renameKills = 0, timeKills = 0;
    for (const how of ["rename", "rename", "time", "rename", "rename", "time"]) {
      const r = how === "rename"
        ? await runDeno(CHILD, [out, "k", data, String(1 + Math.floor(rand() * 6))], env)
        : await killAfterMs([out, "k", data, "0"], { ...Deno.env.toObject(), ...env }, rand() * 1500);
      if (r.code === 0 && how === "time") continue; // the run finished before the kill came
      assert.equal(r.signal, "SIGKILL", r.stderr);
      if (how === "rename") renameKills++;
      else timeKills++;
    }
    assert.equal(renameKills, 4);
    console.log(`killed ${renameKills} times mid-write and ${timeKills} times at a random moment`);
    const last = await runDeno(CHILD, [out, "k", data, "0"], env);
    assert.equal(last.code, 0, last.stderr);

    const k = join(out, "k"), r = join(out, "ref");
    assert.deepEqual(listFiles(k).filter(isTemp), [], "temporary files left in the run folder");
    assert.deepEqual(listFiles(k), listFiles(r));
    // timings and cost fields differ between runs
    type Row = Record<string, number>;
    const strip = (text: string) =>
      JSON.parse(text).map((
        { seconds: _s, img_s: _i, cpu_s: _c, wall_total_s: _w, cpu_total_s: _t, ...r }: Row,
      ) => r);
    const read = (d: string, f: string) => readFileSync(join(d, f), "utf8");
    assert.deepEqual(strip(read(k, "history.json")), strip(read(r, "history.json")));
    assert.equal(read(k, "predictions.csv"), read(r, "predictions.csv"));
    const report = (d: string) => {
      const { wall_seconds: _w, cpu_seconds: _c, sessions: _n, ...rep } = JSON.parse(
        read(d, "test_report.json"),
      );
      return { ...rep, run: null };
    };
    assert.deepEqual(report(k), report(r));
    assert.deepEqual(
      listFiles(join(k, "best")).filter((f) => f.startsWith("weights-")),
      listFiles(join(r, "best")).filter((f) => f.startsWith("weights-")),
    ); // same best weights (the file name is their hash)

    // evaluate reads the resumed run and agrees with training's predictions
    const ev = await runDeno(join(ROOT, "lib/cli/evaluate.ts"), [k, "--json"], {
      ...env,
      FER_BACKEND: "cpu",
    });
    assert.equal(ev.code, 0, ev.stderr);
    assert.equal(read(k, "predictions.csv"), read(r, "predictions.csv"));
    assert.deepEqual(listFiles(k).filter(isTemp), []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
