/**
 * Runs remember their data (issue 17, items 1, 5 and 6): the dataset root is recorded, also when it came from
 * FER2013_DIR; evaluation and resume read it from there, refuse other data, accept a `--data` that holds the
 * same data, and report with the run's own class names.
 */
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import assert from "node:assert/strict";
import { cpSync, existsSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import sharp from "sharp";
import { predictRun, RunError } from "../../lib/runs/runs.ts";
import { runSplits } from "../../lib/runs/data.ts";
import { experimentConfig, withSeed } from "../../lib/train/experiments.ts";
import { train, type TrainDeps } from "../../lib/train/loop.ts";
import { makeImageFolder, ROOT, runDeno, S, tinyConfig, tinyModel } from "./helpers.ts";

await tf.setBackend("cpu");

const quiet: TrainDeps = { createModel: tinyModel, progress: "lines", log: () => {} };
const EVALUATE = join(ROOT, "lib/cli/evaluate.ts");

/** Runs `fn` with environment variables set (null: unset), restoring them afterwards. */
async function withEnv<T>(env: Record<string, string | null>, fn: () => Promise<T>): Promise<T> {
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, Deno.env.get(k)]));
  for (const [k, v] of Object.entries(env)) v === null ? Deno.env.delete(k) : Deno.env.set(k, v);
  try {
    return await fn();
  } finally {
    for (const [k, v] of Object.entries(saved)) v === undefined ? Deno.env.delete(k) : Deno.env.set(k, v);
  }
}

/** A temp folder with a generated 3-class dataset `data/`, a cache and a runs folder. */
async function setup(prefix: string) {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const data = join(dir, "data");
  await makeImageFolder(data);
  return { dir, data, cache: join(dir, "cache"), out: join(dir, "runs") };
}

Deno.test("a run trained with FER2013_DIR records its data root; evaluate reads it there without the variable", async () => {
  const t = await setup("fer-rundata-");
  try {
    const res = await withEnv(
      { FER2013_DIR: t.data, FER_CACHE_DIR: t.cache },
      () => train(tinyConfig(t.out, "r", { epochs: 1 }), quiet),
    );
    const cfg = JSON.parse(readFileSync(join(res.runDir, "config.json"), "utf8"));
    assert.equal(cfg.dataRoot, t.data); // outside the project: absolute
    const before = readFileSync(join(res.runDir, "predictions.csv"), "utf8");
    // a shell without FER2013_DIR: the recorded root is used, not the committed sample
    const p = await withEnv({ FER2013_DIR: null, FER_CACHE_DIR: t.cache }, () => predictRun(res.runDir));
    assert.equal(p.root, t.data);
    assert.equal(p.data, "match");
    assert.equal(p.rows.length, 12);
    // paths relative to the data root (portable run folders)
    assert.ok(p.rows.every((r) => r.path.startsWith("test/") && existsSync(join(t.data, r.path))));
    // the CLI: same data, so predictions.csv is rewritten with the same rows; the report names the run's classes
    const cli = await runDeno(EVALUATE, [res.runDir, "--json"], {
      FER2013_DIR: null,
      FER_CACHE_DIR: t.cache,
    });
    assert.equal(cli.code, 0, cli.stderr);
    const json = JSON.parse(cli.stdout.trim().split("\n").pop()!);
    assert.deepEqual(Object.keys(json.per_class), ["a", "b", "c"]); // issue 17 item 5
    const after = readFileSync(join(res.runDir, "predictions.csv"), "utf8");
    const firstCols = (s: string) => s.trim().split("\n").map((l) => l.split(",").slice(0, 3).join(","));
    assert.deepEqual(firstCols(after), firstCols(before));
    // --tta auto: the mode chosen on validation (here a better hflip evaluation), tested once with it
    writeFileSync(join(res.runDir, "predictions_val_tta-hflip.csv"), "path,label,pred\ntest/a/1.png,a,a\n");
    const auto = await runDeno(EVALUATE, [res.runDir, "--tta", "auto", "--resamples", "10"], {
      FER2013_DIR: null,
      FER_CACHE_DIR: t.cache,
    });
    assert.equal(auto.code, 0, auto.stderr);
    assert.match(auto.stdout, /^TTA hflip \(chosen on validation: 100\.00 %, probabilities averaged\)/);
    assert.ok(existsSync(join(res.runDir, "predictions_tta-hflip.csv")));
  } finally {
    rmSync(t.dir, { recursive: true, force: true });
  }
});

Deno.test("evaluate refuses other data (fingerprint) and leaves predictions.csv alone; --data with the same data is accepted", async () => {
  const t = await setup("fer-rundata-fp-");
  try {
    const res = await withEnv(
      { FER_CACHE_DIR: t.cache },
      () => train(tinyConfig(t.out, "r", { epochs: 1, dataRoot: t.data }), quiet),
    );
    const predictions = join(res.runDir, "predictions.csv");
    const before = readFileSync(predictions, "utf8");
    // the dataset moves: a clear error naming the folder and the remedy, exit status 1, no stack trace
    const moved = join(t.dir, "moved");
    renameSync(t.data, moved);
    const gone = await runDeno(EVALUATE, [res.runDir], { FER_CACHE_DIR: t.cache });
    assert.equal(gone.code, 1);
    assert.match(gone.stderr, /^error: dataset folder .*data not found .*pass --data DIR/m);
    assert.doesNotMatch(gone.stderr, /\n\s+at /); // no stack trace
    // --data pointing at the moved copy: accepted (same data)
    const ok = await withEnv(
      { FER_CACHE_DIR: t.cache },
      () => predictRun(res.runDir, "test", { data: moved }),
    );
    assert.equal(ok.rows.length, 12);
    // other data under the recorded root: one image changed
    cpSync(moved, t.data, { recursive: true });
    const px = new Uint8Array(S * S).fill(255);
    await sharp(px, { raw: { width: S, height: S, channels: 1 } }).png()
      .toFile(join(t.data, "test", "a", "0.png"));
    await assert.rejects(
      withEnv({ FER_CACHE_DIR: t.cache }, () => predictRun(res.runDir)),
      (e: Error) =>
        e instanceof RunError && /the data differ from those it was trained on/.test(e.message) &&
        e.message.includes(join(res.runDir, "config.json")),
    );
    const cli = await runDeno(EVALUATE, [res.runDir], { FER_CACHE_DIR: t.cache });
    assert.equal(cli.code, 1);
    assert.match(cli.stderr, /^error: cannot evaluate r: the data differ/m);
    assert.equal(readFileSync(predictions, "utf8"), before); // never overwritten with other data's predictions
  } finally {
    rmSync(t.dir, { recursive: true, force: true });
  }
});

Deno.test("resume --data NEW reads the moved dataset (same data) and refuses different data", async () => {
  const t = await setup("fer-rundata-resume-");
  try {
    await withEnv({ FER_CACHE_DIR: t.cache }, async () => {
      await assert.rejects(
        train(tinyConfig(t.out, "r", { dataRoot: t.data }), {
          ...quiet,
          onEpochEnd: ({ epoch }) => {
            if (epoch === 0) throw new Error("killed");
          },
        }),
        /killed/,
      );
      const moved = join(t.dir, "moved");
      renameSync(t.data, moved);
      // without --data the recorded root is gone
      await assert.rejects(train({ outDir: t.out, run: "r" }, { ...quiet, resume: true }), /not found/);
      const res = await train({ outDir: t.out, run: "r", dataRoot: moved }, { ...quiet, resume: true });
      assert.equal(res.history.length, 3);
      const cfg = JSON.parse(readFileSync(join(res.runDir, "config.json"), "utf8"));
      assert.equal(cfg.dataRoot, moved); // the run now records where its data are
      // a different dataset under --data is refused
      const other = join(t.dir, "other");
      await makeImageFolder(other, { seed: 2 });
      await assert.rejects(
        train({ outDir: t.out, run: "r", dataRoot: other, epochs: 4 }, { ...quiet, resume: true }),
        /cannot resume r: the data differ/,
      );
    });
    assert.ok(existsSync(join(t.out, "r", "test_report.json")));
  } finally {
    rmSync(t.dir, { recursive: true, force: true });
  }
});

Deno.test("--seed reseeds a run but keeps its validation split and caps (splitSeed); without it, seed splits", () => {
  const n = 400;
  const split = (name: string) => ({
    name,
    classes: ["a", "b", "c"],
    paths: Array.from({ length: n }, (_, i) => `${name}/p${i}`),
    labels: Int32Array.from({ length: n }, (_, i) => i % 3),
    images: new Uint8Array(n),
    height: 1,
    width: 1,
    channels: 1 as const,
  });
  const data = { train: split("train"), test: split("test") };
  const base = { ...experimentConfig("vgg_fer", "cpu"), maxTrainImages: 200, maxEvalImages: 20 };
  const reseeded = withSeed(base, 7);
  assert.equal(reseeded.seed, 7);
  assert.equal(reseeded.splitSeed, base.seed);
  assert.equal(withSeed(reseeded, 8).splitSeed, base.seed); // a second reseed keeps the first split seed
  const a = runSplits(base, data);
  const b = runSplits(reseeded, data);
  for (const k of ["train", "val", "test"] as const) assert.deepEqual(b[k].paths, a[k].paths, k);
  // an old config (no splitSeed) with seed 7 splits with 7: a different validation split
  const old = runSplits({ ...base, seed: 7 }, data);
  assert.notDeepEqual(old.val.paths, a.val.paths);
  assert.notDeepEqual(old.train.paths, a.train.paths);
});
