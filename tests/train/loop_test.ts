import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { CLASSES, type Split } from "../../lib/data/dataset.ts";
import { mulberry32 } from "../../lib/util/rng.ts";
import { bar, formatDuration, progressLine } from "../../lib/train/progress.ts";
import { loadCheckpoint } from "../../lib/models/checkpoint.ts";
import type { TrainConfig } from "../../lib/train/config.ts";
import { type RunData, train, type TrainDeps } from "../../lib/train/loop.ts";
import { mixBatch, mixupDraw } from "../../lib/train/mixup.ts";
import type { HistoryRow } from "../../lib/runs/files.ts";
import { readConfig, readState, runPaths } from "../../lib/runs/runs.ts";
import { readSafetensors, toFloat32 } from "../../lib/models/weights/safetensors.ts";
import { nativeAvailable } from "../../lib/engine/init.ts";
import { nativeDnnl, registerNative } from "../../lib/engine/native.ts";
import { isBf16Kernel } from "../../lib/engine/dnnl/conv.ts";
import { S, tinyConfig, tinyModel } from "../runs/helpers.ts";

await tf.setBackend("cpu");

/** A split of random uint8 images whose label shows in the mean brightness (so a model can learn a bit). */
function randomSplit(name: string, n: number, seed: number): Split {
  const r = mulberry32(seed);
  const labels = Int32Array.from({ length: n }, (_, i) => i % CLASSES.length);
  const images = new Uint8Array(n * S * S);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < S * S; j++) {
      images[i * S * S + j] = Math.min(255, labels[i] * 30 + Math.floor(r() * 60));
    }
  }
  return {
    name,
    classes: [...CLASSES],
    paths: Array.from({ length: n }, (_, i) => `${name}/${CLASSES[labels[i]]}/${i}.png`),
    labels,
    images,
    height: S,
    width: S,
    channels: 1,
  };
}

const data: RunData = {
  classes: [...CLASSES],
  train: randomSplit("train", 70, 1),
  test: randomSplit("test", 21, 2),
};

function config(outDir: string, run: string, over: Partial<TrainConfig> = {}): Partial<TrainConfig> {
  return tinyConfig(outDir, run, { batchSize: 16, valFraction: 0.1, ...over });
}

const quiet: TrainDeps = { data, createModel: tinyModel, progress: "lines", log: () => {} };

async function weightsOf(path: string): Promise<number[][]> {
  const f = await readSafetensors(path);
  return [...f.tensors.entries()].filter(([k]) => k.startsWith("weight.")).map(([, t]) =>
    Array.from(toFloat32(t))
  );
}

/** The best checkpoint's weights, loaded as a model (lib/models/checkpoint.ts), with its metadata checked. */
async function bestWeights(runDir: string): Promise<number[][]> {
  const { model, info } = await loadCheckpoint(join(runDir, "best"));
  assert.deepEqual(info.metadata.classes, [...CLASSES]);
  const w = model.getWeights().map((t) => Array.from(t.dataSync()));
  model.dispose();
  return w;
}

/** Deps that "kill" the run (throw) once epoch `n` (0-based) has been checkpointed. */
const killedAfter = (n: number): TrainDeps => ({
  ...quiet,
  onEpochEnd: ({ epoch }) => {
    if (epoch === n) throw new Error("killed");
  },
});

/** History rows without their timings (which differ between runs). */
const strip = (h: HistoryRow[]) =>
  h.map(({ seconds: _s, img_s: _i, cpu_s: _c, wall_total_s: _w, cpu_total_s: _t, ...rest }) => rest);

Deno.test("train: a run writes its folder, and a killed + resumed run equals an uninterrupted one", async () => {
  const out = await Deno.makeTempDir({ prefix: "fer-train-" });
  const counts: number[] = [];
  try {
    const straight = await train(config(out, "straight"), {
      ...quiet,
      onEpochEnd: () => void counts.push(tf.memory().numTensors),
    });
    assert.equal(straight.history.length, 3);
    assert.equal(counts[0], counts[2], `tensors after epoch 1 (${counts[0]}) and 3 (${counts[2]}) differ`);
    for (const f of ["config.json", "history.json", "history.csv", "best/model.json", "last.safetensors"]) {
      assert.ok(existsSync(join(out, "straight", f)), f);
    }
    for (const f of ["test_report.txt", "test_report.json", "predictions.csv"]) {
      assert.ok(existsSync(join(out, "straight", f)), f);
    }
    const csv = Deno.readTextFileSync(join(out, "straight", "predictions.csv")).trim().split("\n");
    assert.equal(csv[0], `path,label,pred,${CLASSES.map((c) => `p_${c}`).join(",")}`);
    assert.equal(csv.length, 1 + 21);
    const probs = csv[1].split(",").slice(3).map(Number);
    assert.ok(Math.abs(probs.reduce((a, b) => a + b) - 1) < 1e-4);
    const hist = Deno.readTextFileSync(join(out, "straight", "history.csv")).trim().split("\n");
    assert.equal(
      hist[0],
      "epoch,train_loss,train_acc,val_loss,val_acc,lr,seconds,img_s,cpu_s,wall_total_s,cpu_total_s",
    );
    assert.equal(hist.length, 4);
    // the cosine schedule: epoch 1 at the base lr, epoch 3 = T_max=2 at eta_min
    assert.equal(straight.history[0].lr, 1e-2);
    assert.ok(Math.abs(straight.history[2].lr) < 1e-12);
    const report = JSON.parse(Deno.readTextFileSync(join(out, "straight", "test_report.json")));
    assert.equal(report.best_epoch, straight.bestEpoch);
    assert.equal(report.report.classes.length, 7);

    // "kill" after the second epoch's checkpoint, then resume for the third
    await assert.rejects(
      train(config(out, "killed"), killedAfter(1)),
      /killed/,
    );
    assert.ok(!existsSync(join(out, "killed", "test_report.json")));
    const resumed = await train(config(out, "killed"), { ...quiet, resume: true });
    assert.deepEqual(strip(resumed.history), strip(straight.history));
    assert.deepEqual(
      await weightsOf(join(out, "killed", "last.safetensors")),
      await weightsOf(join(out, "straight", "last.safetensors")),
    );
    assert.deepEqual(await bestWeights(join(out, "killed")), await bestWeights(join(out, "straight")));
    assert.deepEqual(resumed.test, straight.test);

    // "kill" inside the second epoch, after its third batch (a resume state saved after every batch), then
    // resume: the epoch continues at its fourth batch with the same random stream and sums
    await assert.rejects(
      train(config(out, "mid"), {
        ...quiet,
        saveEverySeconds: 0,
        onBatchEnd: ({ epoch, step }) => {
          if (epoch === 1 && step === 3) throw new Error("killed");
        },
      }),
      /killed/,
    );
    const saved = await readState(runPaths(join(out, "mid")));
    assert.equal(saved.nextEpoch, 1);
    assert.equal(saved.partial?.step, 3);
    assert.equal(saved.partial?.seen, 3 * 16);
    assert.equal(saved.history.length, 1);
    const lines: string[] = [];
    const midResumed = await train(config(out, "mid"), { ...quiet, resume: true, log: (l) => lines.push(l) });
    assert.ok(lines.some((l) => /resumed mid in epoch 2 after batch 3/.test(l)), lines.join("\n"));
    assert.deepEqual(strip(midResumed.history), strip(straight.history));
    assert.deepEqual(
      await weightsOf(join(out, "mid", "last.safetensors")),
      await weightsOf(join(out, "straight", "last.safetensors")),
    );
    assert.deepEqual(midResumed.test, straight.test);
    assert.equal((await readState(runPaths(join(out, "mid")))).partial, undefined);
    // the epoch's time adds both sessions' share
    assert.ok(midResumed.history[1].seconds >= saved.partial!.seconds);
    assert.ok(midResumed.history[1].wall_total_s! >= saved.partial!.wallTotal);

    // weights lost after two epochs (a new machine: the run folder without last.safetensors): the run trains
    // again from epoch 1, says so, and keeps the lost epochs' history beside the new one
    await assert.rejects(train(config(out, "lost"), killedAfter(1)), /killed/);
    Deno.removeSync(join(out, "lost", "last.safetensors"));
    Deno.removeSync(join(out, "lost", "best"), { recursive: true });
    const lostLines: string[] = [];
    const again = await train(config(out, "lost"), { ...quiet, resume: true, log: (l) => lostLines.push(l) });
    assert.ok(
      lostLines.some((l) =>
        /missing although the run's history records 2 epoch\(s\).*history\.lost\.json/.test(l)
      ),
      lostLines.join("\n"),
    );
    assert.deepEqual(strip(again.history), strip(straight.history));
    const lost = JSON.parse(Deno.readTextFileSync(join(out, "lost", "history.lost.json")));
    assert.deepEqual(strip(lost), strip(straight.history.slice(0, 2)));
    assert.ok(existsSync(join(out, "lost", "history.lost.csv")));

    // another seed gives another run (the comparison above can fail)
    const other = await train(config(out, "other", { seed: 8 }), quiet);
    assert.notDeepEqual(strip(other.history), strip(straight.history));

    // an existing run is not overwritten
    await assert.rejects(train(config(out, "straight"), quiet), /already exists: pass --resume straight/);
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("train: the from-scratch recipe (SGD Nesterov, warm-up + cosine per step, crops, erasing, mixup, label smoothing) resumes exactly", async () => {
  const out = await Deno.makeTempDir({ prefix: "fer-train-recipe-" });
  const recipe = (run: string) =>
    config(out, run, {
      inputSize: 6,
      cropFrom: S,
      erasing: { p: 0.5 },
      optimizer: "sgd",
      momentum: 0.9,
      nesterov: true,
      weightDecay: 5e-4,
      lr: 0.05,
      schedule: "warmup_cosine",
      warmupEpochs: 1,
      tMax: 3,
      epochs: 3,
      mixupAlpha: 1,
      loss: "label_smoothing",
      labelSmoothing: 0.1,
    });
  try {
    const straight = await train(recipe("straight"), quiet);
    // warm-up: epoch 1 starts at 1 % of the base rate; epoch 2 starts the cosine at the base rate
    assert.ok(Math.abs(straight.history[0].lr - 0.05 * 0.01) < 1e-12);
    assert.ok(Math.abs(straight.history[1].lr - 0.05) < 1e-12);
    assert.ok(straight.history[2].lr < 0.05 && straight.history[2].lr > 0);
    const last = await readSafetensors(join(out, "straight", "last.safetensors"));
    assert.ok([...last.tensors.keys()].some((k) => k.startsWith("sgd_buf.")));
    assert.equal(last.metadata!.sgd_step, String(3 * Math.ceil(63 / 16)));

    await assert.rejects(train(recipe("killed"), killedAfter(0)), /killed/);
    // a second session killed in the middle of epoch 2 (per-step rate, mixup and erasing draws by step)
    await assert.rejects(
      train(recipe("killed"), {
        ...quiet,
        resume: true,
        saveEverySeconds: 0,
        onBatchEnd: ({ epoch, step }) => {
          if (epoch === 1 && step === 2) throw new Error("killed");
        },
      }),
      /killed/,
    );
    const resumed = await train(recipe("killed"), { ...quiet, resume: true });
    assert.deepEqual(strip(resumed.history), strip(straight.history));
    assert.deepEqual(
      await weightsOf(join(out, "killed", "last.safetensors")),
      await weightsOf(join(out, "straight", "last.safetensors")),
    );
    assert.deepEqual(resumed.test, straight.test);

    // wall time and CPU time add up across the two sessions
    const h = resumed.history;
    for (const r of h) assert.ok(r.cpu_s! >= 0 && r.wall_total_s! > 0 && r.cpu_total_s! > 0);
    assert.ok(h[1].wall_total_s! > h[0].wall_total_s! + h[1].seconds * 0.99);
    assert.ok(h[2].cpu_total_s! >= h[1].cpu_total_s!);
    const rep = JSON.parse(Deno.readTextFileSync(join(out, "killed", "test_report.json")));
    assert.equal(rep.sessions, 3);
    assert.ok(rep.wall_seconds >= h[2].wall_total_s! && rep.cpu_seconds >= h[2].cpu_total_s!);
    const once = JSON.parse(Deno.readTextFileSync(join(out, "straight", "test_report.json")));
    assert.equal(once.sessions, 1);

    // the same recipe with AdamW refuses to resume from an SGD state
    const cfg = JSON.parse(Deno.readTextFileSync(join(out, "killed", "config.json")));
    Deno.writeTextFileSync(
      join(out, "killed", "config.json"),
      JSON.stringify({ ...cfg, optimizer: "adamw" }),
    );
    await assert.rejects(train(recipe("killed"), { ...quiet, resume: true }), /no adam optimizer state/);
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("mixup: λ from Beta(α, α) and a permutation, both from the seed; the batch is the convex mix", () => {
  const a = mixupDraw(5, 1, 123);
  const b = mixupDraw(5, 1, 123);
  assert.deepEqual(a, b);
  assert.notDeepEqual(mixupDraw(5, 1, 124), a);
  assert.ok(a.lambda > 0 && a.lambda < 1);
  assert.deepEqual([...a.perm].sort(), [0, 1, 2, 3, 4]);
  const lams = Array.from({ length: 2000 }, (_, i) => mixupDraw(2, 0.2, i).lambda);
  // Beta(0.2, 0.2) is U-shaped: most mass near 0 and 1, mean 0.5
  const mean = lams.reduce((s, v) => s + v, 0) / lams.length;
  assert.ok(Math.abs(mean - 0.5) < 0.03, `mean ${mean}`);
  assert.ok(lams.filter((v) => v < 0.1 || v > 0.9).length > 1000);
  const x = tf.tensor4d([0, 10, 20], [3, 1, 1, 1]);
  const m = mixBatch(x, { lambda: 0.25, perm: Int32Array.from([2, 0, 1]) });
  assert.deepEqual(Array.from(m.dataSync()), [15, 2.5, 12.5]);
  tf.dispose([x, m]);
});

Deno.test("train: a NaN loss stops the run with a clear message and keeps the best checkpoint", async () => {
  const out = await Deno.makeTempDir({ prefix: "fer-train-nan-" });
  try {
    const res = await train(config(out, "nan", { epochs: 4 }), {
      ...quiet,
      onEpochEnd: ({ epoch, model }) => {
        if (epoch === 1) {
          const w = model.trainableWeights[0];
          w.write(tf.fill(w.shape as number[], NaN));
        }
      },
    });
    assert.equal(res.stopped, "diverged");
    assert.match(res.message, /non-finite training loss \(NaN\) at epoch 3, step 1/);
    assert.equal(res.history.length, 2);
    assert.ok(res.bestEpoch >= 1 && res.bestEpoch <= 2);
    const best = await bestWeights(join(out, "nan"));
    assert.ok(best.every((w) => w.every(Number.isFinite)));
    assert.ok(res.test !== null && Number.isFinite(res.test.loss));

    // diverging before any epoch completes is an error (nothing to evaluate)
    await assert.rejects(
      train(config(out, "nan-early", { lr: 1e38 }), { ...quiet }),
      /non-finite .* no checkpoint to evaluate/,
    );
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("train: early stopping on validation accuracy with patience", async () => {
  const out = await Deno.makeTempDir({ prefix: "fer-train-es-" });
  try {
    // lr 0 and no BatchNorm: the weights never change, so val accuracy never improves after epoch 1
    const res = await train(
      config(out, "es", { lr: 0, weightDecay: 0, patience: 2, epochs: 10, modelOptions: { bn: false } }),
      quiet,
    );
    assert.equal(res.stopped, "early_stopped");
    assert.equal(res.history.length, 3);
    assert.equal(res.bestEpoch, 1);
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("progress: line format, durations and the bar", () => {
  assert.equal(formatDuration(65), "1:05");
  assert.equal(formatDuration(3723), "1:02:03");
  assert.equal(formatDuration(NaN), "?");
  assert.equal(bar(5, 10, 10), "[#####.....]");
  const line = progressLine({ label: "epoch 1/2", done: 100, total: 300, seconds: 2, loss: 1.5, acc: 0.25 });
  assert.equal(
    line,
    "epoch 1/2 [########................] 100/300 img  50 img/s  ETA 0:04  loss 1.5000 acc 0.2500",
  );
  // resumed at image 60: the rate counts the 40 images of these 2 seconds
  assert.match(
    progressLine({ label: "e", done: 100, total: 300, seconds: 2, before: 60 }),
    / 20 img\/s {2}ETA 0:10$/,
  );
});

Deno.test({
  name: "train: resume equals an uninterrupted run on the native engine too (oneDNN / OpenBLAS kernels)",
  ignore: !nativeAvailable().ok,
}, async () => {
  registerNative();
  await tf.setBackend("native");
  const out = await Deno.makeTempDir({ prefix: "fer-train-native-" });
  try {
    const straight = await train(config(out, "straight"), quiet);
    await assert.rejects(
      train(config(out, "killed"), killedAfter(1)),
      /killed/,
    );
    const resumed = await train(config(out, "killed"), { ...quiet, resume: true });
    assert.deepEqual(strip(resumed.history), strip(straight.history));
    assert.deepEqual(
      await weightsOf(join(out, "killed", "last.safetensors")),
      await weightsOf(join(out, "straight", "last.safetensors")),
    );
    assert.deepEqual(resumed.test, straight.test);
  } finally {
    await tf.setBackend("cpu");
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test({
  name: "train: precision bfloat16 trains with bfloat16 convolutions, validates in float32, and is recorded",
  ignore: !nativeAvailable().ok,
}, async () => {
  registerNative();
  await tf.setBackend("native");
  const dnnl = nativeDnnl();
  const out = await Deno.makeTempDir({ prefix: "fer-train-bf16-" });
  const lines: string[] = [];
  let during = "";
  try {
    const f32 = await train(config(out, "f32"), quiet);
    const low = await train(config(out, "low", { precision: "bfloat16" }), {
      ...quiet,
      log: (s) => lines.push(s),
      onBatchEnd: () => void (during ||= dnnl?.precision() ?? "float32"),
    });
    assert.equal(readConfig(runPaths(join(out, "low"))).precision, "bfloat16");
    assert.equal(dnnl?.precision() ?? "float32", "float32", "float32 again after the run");
    const bf16 = dnnl !== null && dnnl.impls().some(isBf16Kernel);
    if (bf16) {
      assert.equal(during, "bfloat16");
      assert.ok(
        lines.includes(
          "precision: bfloat16 convolutions and dense layers in the training steps (validation and test in float32)",
        ),
      );
      assert.notDeepEqual(strip(low.history), strip(f32.history)); // other arithmetic, other losses
    } else {
      assert.equal(during, "float32");
      assert.ok(
        lines.some((l) => l.startsWith("precision: bfloat16 asked, float32 used (")),
        lines.join("\n"),
      );
      assert.deepEqual(strip(low.history), strip(f32.history));
    }
  } finally {
    await tf.setBackend("cpu");
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("train: a run records its data fingerprint and refuses to resume on different data", async () => {
  const out = await Deno.makeTempDir({ prefix: "fer-train-data-" });
  try {
    await assert.rejects(
      train(config(out, "r"), killedAfter(0)),
      /killed/,
    );
    const cfgPath = join(out, "r", "config.json");
    const saved = Deno.readTextFileSync(cfgPath);
    assert.match(JSON.parse(saved).dataFingerprint, /^[0-9a-f]{64}$/);
    // one relabelled training image is different data
    const train2 = { ...data.train, labels: Int32Array.from(data.train.labels) };
    train2.labels[0] = (train2.labels[0] + 1) % CLASSES.length;
    await assert.rejects(
      train(config(out, "r"), { ...quiet, data: { ...data, train: train2 }, resume: true }),
      (e: Error) => /cannot resume r: the data differ/.test(e.message) && e.message.includes(cfgPath),
    );
    assert.equal(Deno.readTextFileSync(cfgPath), saved); // nothing rewritten
    // the same data resumes
    const res = await train(config(out, "r"), { ...quiet, resume: true });
    assert.equal(res.history.length, 3);
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});
