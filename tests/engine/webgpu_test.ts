/**
 * The WebGPU engine against the cpu backend, on whatever adapter navigator.gpu offers (in CI: Mesa's llvmpipe
 * software adapter). Skipped when there is none. Shapes are tiny: llvmpipe runs every shader on the CPU.
 */
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import * as tfl from "@tensorflow/tfjs-layers";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { engineSummary, initEngine } from "../../lib/engine/init.ts";
import { probeAdapter, setWebgpuBackend } from "../../lib/engine/webgpu.ts";
import {
  COMPOSE_MIN_POSITIONS,
  composesAt,
  isComposed,
  setFilterGradMode,
} from "../../lib/engine/webgpu_grads.ts";
import { gradientParity, parityCases } from "../../lib/engine/parity.ts";
import { AdamW } from "../../lib/train/optim.ts";
import { makeLoss } from "../../lib/train/losses.ts";
import { ferCnn } from "../../lib/models/fer_cnn.ts";
import { loadDataset } from "../../lib/data/dataset.ts";
import type { HistoryRow } from "../../lib/runs/runs.ts";
import { train } from "../../lib/train/loop.ts";
import { readSafetensors, toFloat32 } from "../../lib/models/weights/safetensors.ts";
import { mulberry32 } from "../../lib/util/rng.ts";

const adapter = await probeAdapter();
const ignore = !adapter;
if (ignore) console.warn("webgpu tests skipped: navigator.gpu offers no adapter");
// WebGPU keeps device handles and pending maps alive between tests
const opts = { ignore, sanitizeOps: false, sanitizeResources: false };
/** Relative tolerance for webgpu vs cpu (float32 on both; observed ≤ 1e-6 on llvmpipe). */
const TOL = 1e-4;

Deno.test({
  name:
    "webgpu engine: forced by name, engine line names the adapter; never chosen automatically on a software one",
  ...opts,
  fn: async () => {
    assert.equal((await initEngine("webgpu")).name, "webgpu");
    assert.equal(tf.getBackend(), "webgpu");
    const line = engineSummary();
    assert.ok(line.startsWith(`webgpu on ${adapter!.description} (`), line);
    assert.match(line, /(software fallback|hardware) adapter; max buffer \d+ MiB, storage binding \d+ MiB/);
    const prev = Deno.env.get("FER_BACKEND");
    Deno.env.delete("FER_BACKEND");
    try {
      const auto = await initEngine();
      assert.equal(auto.name === "webgpu", !adapter!.fallback, `automatic choice ${auto.name}`);
    } finally {
      if (prev !== undefined) Deno.env.set("FER_BACKEND", prev);
    }
  },
});

Deno.test({
  name: "webgpu gradients equal cpu for every kernel family the study's models use",
  ...opts,
  fn: async () => {
    const results = await gradientParity();
    const families = new Set(results.map((r) => r.family));
    for (
      const f of ["conv", "depthwise", "bn", "ln", "activation", "pooling", "matmul", "softmax-ce", "model"]
    ) {
      assert.ok(families.has(f), `no parity case for ${f}`);
    }
    assert.equal(results.length, parityCases().length);
    const bad = results.filter((r) => !(r.maxRelError <= TOL));
    assert.deepEqual(bad.map((r) => `${r.name}: ${r.maxRelError.toExponential(2)} at ${r.worst}`), []);
    await tf.setBackend("cpu");
  },
});

Deno.test({
  name: "webgpu filter gradients, composed from matmul and reductions, equal cpu on odd geometries",
  ...opts,
  fn: async () => {
    await setWebgpuBackend({ warn: () => {} });
    assert.ok(isComposed(tf.Conv2DBackpropFilter) && isComposed(tf.DepthwiseConv2dNativeBackpropFilter));
    // `auto` composes long sums only; these shapes are small, so the composed path is forced
    assert.deepEqual(
      [composesAt(COMPOSE_MIN_POSITIONS - 1, "auto"), composesAt(COMPOSE_MIN_POSITIONS, "auto")],
      [false, true],
    );
    assert.deepEqual([composesAt(1, "composed"), composesAt(1 << 20, "naive")], [true, false]);
    const prevMode = setFilterGradMode("composed");
    const r = mulberry32(11);
    const rand = (shape: number[]) =>
      Array.from({ length: shape.reduce((a, b) => a * b) }, () => r() * 2 - 1);
    type Case = {
      x: number[];
      f: number[];
      s: number | [number, number];
      pad: "same" | "valid" | number;
      dw?: true;
    };
    const cases: Case[] = [
      { x: [2, 7, 9, 3], f: [3, 3, 3, 4], s: 1, pad: "same" },
      { x: [2, 7, 9, 3], f: [4, 4, 3, 5], s: 1, pad: "same" }, // even kernel: more padding after than before
      { x: [1, 9, 8, 2], f: [3, 2, 2, 3], s: [2, 3], pad: "valid" }, // strides that leave rows unused
      { x: [2, 6, 6, 3], f: [3, 3, 3, 2], s: 2, pad: 1 }, // explicit padding
      { x: [3, 5, 5, 6], f: [1, 1, 6, 4], s: 1, pad: "valid" }, // 1x1: one matmul
      { x: [2, 9, 9, 4], f: [5, 5, 4, 1], s: 2, pad: "same", dw: true },
      { x: [2, 8, 8, 3], f: [7, 7, 3, 1], s: 1, pad: "same", dw: true },
    ];
    for (const c of cases) {
      const info = tf.backend_util.computeConv2DInfo(
        c.x as [number, number, number, number],
        c.f as [number, number, number, number],
        c.s,
        1,
        c.pad,
        undefined,
        c.dw ?? false,
      );
      const xv = rand(c.x);
      const dyv = rand(info.outShape);
      const grads = async (backend: string) => {
        await tf.setBackend(backend);
        const x = tf.tensor4d(xv, c.x as [number, number, number, number]);
        const dy = tf.tensor4d(dyv, info.outShape);
        const attrs = { strides: c.s, pad: c.pad, dilations: 1, filterShape: c.f, dataFormat: "NHWC" };
        const dw = tf.engine().runKernel(
          c.dw ? tf.DepthwiseConv2dNativeBackpropFilter : tf.Conv2DBackpropFilter,
          { x, dy },
          attrs as unknown as tf.NamedAttrMap,
        ) as tf.Tensor;
        const out = Float32Array.from(await dw.data());
        tf.dispose([x, dy, dw]);
        return out;
      };
      const cpu = await grads("cpu");
      const gpu = await grads("webgpu");
      assert.equal(gpu.length, cpu.length);
      const scale = Math.max(...cpu.map(Math.abs));
      const err = Math.max(...gpu.map((v, k) => Math.abs(v - cpu[k]))) / scale;
      assert.ok(err <= TOL, `${JSON.stringify(c)}: relative error ${err}`);
    }
    setFilterGradMode(prevMode);
    await tf.setBackend("cpu");
  },
});

/** `steps` AdamW steps of a small FER CNN on fixed batches; losses and final weights. */
async function trainSteps(backend: string, steps: number) {
  await tf.setBackend(backend);
  const model = ferCnn({ widths: [4, 8], convsPerStage: 2, hidden: [16], widthMultiplier: 1 }, {
    inputShape: [16, 16, 1],
    dropRate: 0,
    seed: 3,
  });
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const opt = new AdamW(vars, { lr: 1e-2 });
  const loss = makeLoss({ kind: "ce" });
  const r = mulberry32(5);
  const losses: number[] = [];
  for (let s = 0; s < steps; s++) {
    const x = tf.tensor4d(Float32Array.from({ length: 8 * 256 }, () => r() * 2 - 1), [8, 16, 16, 1]);
    const y = tf.tensor1d(Array.from({ length: 8 }, (_, i) => (i + s) % 7), "int32");
    const { value, grads } = tf.variableGrads(
      () => loss(model.apply(x, { training: true }) as tf.Tensor, y),
      vars,
    );
    losses.push((await value.data())[0]);
    opt.step(grads);
    tf.dispose([x, y, value, ...Object.values(grads)]);
  }
  const weights = [];
  for (const w of model.weights) weights.push(await w.read().data() as Float32Array);
  const names = model.weights.map((w) => w.originalName);
  const mode = opt.mode;
  opt.dispose();
  model.dispose();
  return { losses, weights, names, mode };
}

Deno.test({
  name:
    "webgpu: a few AdamW training steps of a small model equal cpu (device-side AdamW against the host loop)",
  ...opts,
  fn: async () => {
    await setWebgpuBackend();
    const gpu = await trainSteps("webgpu", 4);
    const cpu = await trainSteps("cpu", 4);
    assert.equal(gpu.mode, "device");
    assert.equal(cpu.mode, "host");
    gpu.losses.forEach((l, i) =>
      assert.ok(Math.abs(l - cpu.losses[i]) <= TOL * Math.abs(cpu.losses[i]), `step ${i}`)
    );
    assert.ok(cpu.losses[3] !== cpu.losses[0], "the steps changed nothing");
    let compared = 0;
    cpu.weights.forEach((w, i) => {
      let d = 0;
      for (let j = 0; j < w.length; j++) d = Math.max(d, Math.abs(w[j] - gpu.weights[i][j]));
      // A conv bias followed by batch norm has a zero gradient in exact arithmetic (the normalisation removes
      // any shift); its gradient is rounding noise, which Adam's normalised step turns into moves of up to lr
      // in either direction, and the norm's moving mean follows the bias. Only Adam's bound holds there.
      if (/^conv\w+\/bias$|moving_mean$/.test(cpu.names[i])) {
        assert.ok(d <= 2 * 1e-2 * 4, `${cpu.names[i]}: ${d}`);
      } else {
        assert.ok(d <= 1e-4, `${cpu.names[i]}: max |webgpu - cpu| ${d}`);
        compared++;
      }
    });
    assert.ok(compared >= 10, `only ${compared} weights compared`);
  },
});

Deno.test({
  name: "webgpu: one train() epoch on a tiny subset of the sample, with its test report, matches cpu",
  ...opts,
  fn: async () => {
    const root = new URL("../../data/sample/", import.meta.url).pathname;
    const data = await loadDataset({ root, size: 16, channels: 1, cacheDir: false, verbose: false });
    const out = await Deno.makeTempDir({ prefix: "fer_webgpu_" });
    const lines: string[] = [];
    const run = async (backend: string) => {
      await tf.setBackend(backend);
      return await train({
        experiment: "webgpu_test",
        model: "fer_cnn",
        pretrained: false,
        inputSize: 16,
        channels: 1,
        mean: [0.5],
        std: [0.5],
        dataSize: 16,
        batchSize: 8,
        epochs: 1,
        lr: 1e-3,
        tMax: 0,
        maxTrainImages: 16,
        maxEvalImages: 8,
        outDir: out,
        run: backend,
      }, {
        data,
        progress: "lines",
        log: (s) => lines.push(s),
        createModel: (_cfg, k) =>
          ferCnn({ widths: [4, 8], convsPerStage: 1, hidden: [16], widthMultiplier: 1 }, {
            inputShape: [16, 16, 1],
            numClasses: k,
            seed: 2,
          }) as tfl.LayersModel,
      });
    };
    await setWebgpuBackend();
    const gpu = await run("webgpu");
    const cpu = await run("cpu");
    assert.equal(gpu.history.length, 1);
    assert.ok(gpu.test && gpu.test.accuracy >= 0 && gpu.test.accuracy <= 1);
    const report = Deno.readTextFileSync(join(out, "webgpu", "test_report.txt"));
    assert.match(report, /best epoch 1, test split[\s\S]*macro avg/);
    assert.ok(lines.some((l) => l.includes("macro avg")), "the report was not logged");
    assert.equal(Deno.readTextFileSync(join(out, "webgpu", "predictions.csv")).trim().split("\n").length, 9);
    // the resume state holds the device-side AdamW moments, read back asynchronously
    const last = await readSafetensors(join(out, "webgpu", "last.safetensors"));
    assert.equal(last.metadata!.adam_step, "2");
    assert.ok(toFloat32(last.tensors.get("adam_v.0")!).some((v) => v > 0));
    assert.ok(existsSync(join(out, "webgpu", "best")));
    const keys: (keyof HistoryRow)[] = ["train_loss", "val_loss"];
    for (const k of keys) {
      const [g, c] = [gpu.history[0][k] as number, cpu.history[0][k] as number]; // the keys above are always set
      assert.ok(Math.abs(g - c) <= TOL * Math.abs(c), `${k}: webgpu ${g}, cpu ${c}`);
    }
    assert.ok(Math.abs(gpu.test!.loss - cpu.test!.loss) <= TOL * Math.abs(cpu.test!.loss));
    await Deno.remove(out, { recursive: true });
    await tf.setBackend("cpu");
  },
});
