/**
 * The run folder's resume state and hygiene (issue 17, items 7 and 8's `--run ../../x`): temporary files of
 * killed writes are removed when a run starts or resumes; a bad `last.safetensors` is refused with an error
 * naming it; run names cannot leave the runs folder.
 */
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  readSafetensors,
  type TensorToWrite,
  writeSafetensors,
} from "../../lib/models/weights/safetensors.ts";
import { resolveRunDir, RunError } from "../../lib/runs/runs.ts";
import { train, type TrainDeps } from "../../lib/train/loop.ts";
import { listFiles, makeImageFolder, tinyConfig, tinyModel } from "./helpers.ts";

await tf.setBackend("cpu");

const quiet: TrainDeps = { createModel: tinyModel, progress: "lines", log: () => {} };
const killedAfter = (n: number): TrainDeps => ({
  ...quiet,
  onEpochEnd: ({ epoch }) => {
    if (epoch === n) throw new Error("killed");
  },
});

async function setup(prefix: string) {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const data = join(dir, "data");
  await makeImageFolder(data);
  Deno.env.set("FER_CACHE_DIR", join(dir, "cache"));
  return { dir, data, out: join(dir, "runs") };
}

Deno.test("resume removes the temp files of killed writes (run folder and best/)", async () => {
  const t = await setup("fer-state-tmp-");
  try {
    const cfg = tinyConfig(t.out, "r", { dataRoot: t.data });
    await assert.rejects(train(cfg, killedAfter(0)), /killed/);
    const run = join(t.out, "r");
    const stale = [
      "last.safetensors.4242-deadbeef.tmp",
      "history.json.4242-1.tmp",
      "best/model.json.4242-ab12.tmp",
      "best/weights-0123456789abcdef.bin.4242-ff.tmp",
    ];
    for (const f of stale) writeFileSync(join(run, f), "partial write");
    const lines: string[] = [];
    await train({ outDir: t.out, run: "r" }, { ...quiet, resume: true, log: (l) => lines.push(l) });
    for (const f of stale) assert.ok(!existsSync(join(run, f)), f);
    assert.ok(lines.some((l) => /removed 4 temporary file/.test(l)), lines.join("\n"));
    assert.deepEqual(listFiles(run).filter((f) => f.endsWith(".tmp")), []);
  } finally {
    rmSync(t.dir, { recursive: true, force: true });
  }
});

Deno.test("resume refuses a last.safetensors without metadata, with bad state JSON or with I64 weights, naming it", async () => {
  const t = await setup("fer-state-bad-");
  try {
    await assert.rejects(train(tinyConfig(t.out, "r", { dataRoot: t.data }), killedAfter(0)), /killed/);
    const last = join(t.out, "r", "last.safetensors");
    const good = await readSafetensors(last);
    const tensors = new Map<string, TensorToWrite>(
      [...good.tensors].map(([k, v]) => [k, { dtype: v.dtype, shape: v.shape, data: v.data }]),
    );
    const resume = () => train({ outDir: t.out, run: "r" }, { ...quiet, resume: true });
    const names = (re: RegExp) => (e: Error) =>
      e instanceof RunError && e.message.startsWith(last) && re.test(e.message);

    await writeSafetensors(last, tensors); // no __metadata__
    await assert.rejects(resume(), names(/not a resume state/));

    await writeSafetensors(last, tensors, { ...good.metadata, state: "{not json" });
    await assert.rejects(resume(), names(/loop state is not valid JSON/));

    await writeSafetensors(last, tensors, { ...good.metadata, state: JSON.stringify({ nextEpoch: "1" }) });
    await assert.rejects(resume(), names(/missing or malformed fields/));

    // a state saved inside an epoch with a malformed position
    const state = JSON.parse(good.metadata!.state);
    const partial = { step: 2, lossSum: 1, correct: 1, seen: 16, random: 7, seconds: 1, cpuSeconds: 1 };
    await writeSafetensors(last, tensors, {
      ...good.metadata,
      state: JSON.stringify({ ...state, partial: { ...partial, wallTotal: 1, cpuTotal: null } }),
    });
    await assert.rejects(resume(), names(/missing or malformed fields/));

    // weight.0 as I64 (same shape): refused, not silently converted
    const w0 = good.tensors.get("weight.0")!;
    const f32 = new Float32Array(
      w0.data.buffer.slice(w0.data.byteOffset, w0.data.byteOffset + w0.data.length),
    );
    const i64 = {
      dtype: "I64" as const,
      shape: w0.shape,
      data: BigInt64Array.from(f32, (v) => BigInt(Math.round(v))),
    };
    await writeSafetensors(last, new Map([...tensors, ["weight.0", i64]]), good.metadata);
    await assert.rejects(resume(), names(/weight 0 \(.*\) is I64; weights must be a float type/));

    // the good file resumes
    await writeSafetensors(last, tensors, good.metadata);
    assert.equal((await resume()).history.length, 3);
  } finally {
    rmSync(t.dir, { recursive: true, force: true });
  }
});

Deno.test("run names stay inside the runs folder", async () => {
  const t = await setup("fer-state-name-");
  try {
    await assert.rejects(
      train(tinyConfig(join(t.dir, "a", "b"), "../../x", { dataRoot: t.data }), quiet),
      (e: Error) => e instanceof RunError && /bad run name "..\/..\/x"/.test(e.message),
    );
    assert.ok(!existsSync(join(t.dir, "x")));
    mkdirSync(join(t.dir, "x"));
    // reading a run by path still works (a path, not a name); a missing one names config.json
    assert.throws(() => resolveRunDir(join(t.dir, "x")), /config\.json not found/);
  } finally {
    rmSync(t.dir, { recursive: true, force: true });
  }
});
