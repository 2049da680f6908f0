/**
 * One trainer per run (lib/runs/lock.ts): a second trainer of a run is refused while the first lives, a lock
 * left by a dead process or an earlier boot is taken over, one that cannot be checked is refused with the file
 * to delete; training takes and releases the lock.
 */
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { lockRun, RunError } from "../../lib/runs/runs.ts";
import { train, type TrainDeps } from "../../lib/train/loop.ts";
import { makeImageFolder, tinyConfig, tinyModel } from "./helpers.ts";

await tf.setBackend("cpu");

const boot = readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim();
const holder = (over: Record<string, unknown>) =>
  JSON.stringify({
    pid: Deno.pid,
    host: Deno.hostname(),
    boot,
    started: "2026-11-30T00:00:00.000Z",
    ...over,
  });

/** The pid of a process that has exited. */
async function deadPid(): Promise<number> {
  const p = new Deno.Command("true").spawn();
  await p.status;
  return p.pid;
}

Deno.test("lockRun: exclusive while the holder lives; released; stale locks taken over; others refused", async () => {
  const dir = mkdtempSync(join(tmpdir(), "fer-lock-"));
  const run = join(dir, "r");
  const file = `${run}.lock`;
  try {
    const lock = lockRun(run);
    assert.equal(lock.file, file);
    assert.equal(JSON.parse(readFileSync(file, "utf8")).pid, Deno.pid);
    assert.throws(
      () => lockRun(run),
      (e: Error) =>
        e instanceof RunError && e.message.startsWith(`run r is being trained by process ${Deno.pid} on `) &&
        e.message.endsWith(`delete ${file}`),
    );
    lock.release();
    assert.ok(!existsSync(file));
    lockRun(run).release();

    // a dead holder on this machine, this boot: taken over
    writeFileSync(file, holder({ pid: await deadPid() }));
    const taken = lockRun(run);
    assert.equal(JSON.parse(readFileSync(file, "utf8")).pid, Deno.pid);
    taken.release();
    // a holder from before a reboot (its pid may be alive again now): taken over
    writeFileSync(file, holder({ boot: "another-boot" }));
    lockRun(run).release();
    // a live process of that pid that is not a Deno trainer (the pid was reused): taken over
    const sleeper = new Deno.Command("sleep", { args: ["30"] }).spawn();
    try {
      writeFileSync(file, holder({ pid: sleeper.pid }));
      lockRun(run).release();
    } finally {
      sleeper.kill();
      await sleeper.status;
    }
    // another host cannot be checked; nor can an unreadable lock: refused, the file named, nothing removed
    writeFileSync(file, holder({ host: "elsewhere" }));
    assert.throws(
      () => lockRun(run),
      /by process \d+ on elsewhere \(since 2026-11-30T00:00:00\.000Z\).*delete /,
    );
    writeFileSync(file, "{half a");
    assert.throws(() => lockRun(run), /by another process \(the lock file cannot be read\)/);
    assert.equal(readFileSync(file, "utf8"), "{half a");
    // release never removes a lock another process has taken since
    rmSync(file);
    const mine = lockRun(run);
    writeFileSync(file, holder({ pid: 1, started: "x" }));
    mine.release();
    assert.ok(existsSync(file));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

Deno.test("train holds the run's lock: a resume of a run being trained is refused before it touches the folder", async () => {
  const dir = mkdtempSync(join(tmpdir(), "fer-lock-train-"));
  const data = join(dir, "data");
  await makeImageFolder(data);
  Deno.env.set("FER_CACHE_DIR", join(dir, "cache"));
  const out = join(dir, "runs");
  const quiet: TrainDeps = { createModel: tinyModel, progress: "lines", log: () => {} };
  try {
    const seen: boolean[] = [];
    await train(tinyConfig(out, "r", { dataRoot: data }), {
      ...quiet,
      onEpochEnd: () => void seen.push(existsSync(join(out, "r.lock"))),
    });
    assert.ok(seen.length > 0 && seen.every((held) => held), "the lock is held during training");
    assert.ok(!existsSync(join(out, "r.lock")), "and released after");

    const other = lockRun(join(out, "r"));
    try {
      const temp = join(out, "r", "history.json.1-2.tmp"); // another trainer's write in flight
      writeFileSync(temp, "partial");
      await assert.rejects(
        train({ outDir: out, run: "r" }, { ...quiet, resume: true }),
        /run r is being trained by process/,
      );
      assert.ok(existsSync(temp), "the other trainer's temp file is left alone");
    } finally {
      other.release();
    }
    // a failing start releases the lock too
    await assert.rejects(train(tinyConfig(out, "r", { dataRoot: data }), quiet), /already exists/);
    assert.ok(!existsSync(join(out, "r.lock")));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
