import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import "@tensorflow/tfjs-backend-cpu";
import {
  loadPretrained,
  loadStateDict,
  type NameMapEntry,
  StateDictError,
  timmClassifierPrefix,
  torchToTf,
} from "../../../lib/models/weights/convert.ts";
import {
  readSafetensors,
  type SafeTensor,
  toFloat32,
  writeSafetensors,
} from "../../../lib/models/weights/safetensors.ts";

await tf.setBackend("cpu");

const FIX = new URL("../../fixtures/weights/", import.meta.url).pathname;

function close(a: ArrayLike<number>, b: ArrayLike<number>, tol: number, what: string): void {
  assert.equal(a.length, b.length, `${what}: length`);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  assert.ok(worst <= tol, `${what}: max abs diff ${worst} > ${tol}`);
}

function f32(t: SafeTensor): tf.Tensor {
  return tf.tensor(toFloat32(t), t.shape);
}

Deno.test("conv, depthwise and linear conversions reproduce torch's outputs", async () => {
  const sd = (await readSafetensors(`${FIX}layouts.safetensors`)).tensors;
  const g = (n: string) => sd.get(n)!;
  const conv = torchToTf("conv.weight", g("conv.weight"), "conv");
  assert.deepEqual(conv.shape, [3, 2, 3, 5]);
  const dw = torchToTf("dw.weight", g("dw.weight"), "depthwise", [3, 3, 3, 2]);
  assert.deepEqual(dw.shape, [3, 3, 3, 2]);
  const lin = torchToTf("lin.weight", g("lin.weight"), "linear");
  assert.deepEqual(lin.shape, [6, 5]);
  const bias = torchToTf("conv.bias", g("conv.bias"), "param");
  assert.deepEqual(bias.shape, [5]);
  tf.tidy(() => {
    const x = tf.transpose(f32(g("x")), [0, 2, 3, 1]) as tf.Tensor4D; // NCHW -> NHWC
    const nchw = (y: tf.Tensor) => tf.transpose(y, [0, 3, 1, 2]).dataSync();
    const yConv = tf.add(
      tf.conv2d(x, tf.tensor4d(conv.values, conv.shape as [number, number, number, number]), 1, "valid"),
      tf.tensor1d(bias.values),
    );
    close(nchw(yConv), toFloat32(g("conv_y")), 1e-4, "conv");
    const yDw = tf.depthwiseConv2d(
      x,
      tf.tensor4d(dw.values, dw.shape as [number, number, number, number]),
      1,
      "valid",
    );
    close(nchw(yDw), toFloat32(g("dw_y")), 1e-4, "depthwise");
    const yLin = tf.add(
      tf.matMul(f32(g("lin_x")) as tf.Tensor2D, tf.tensor2d(lin.values, lin.shape as [number, number])),
      f32(g("lin.bias")),
    );
    close(yLin.dataSync(), toFloat32(g("lin_y")), 1e-4, "linear");
  });
  // The wrong layouts would not match: a plain reshape of the conv weight gives different outputs.
  tf.tidy(() => {
    const x = tf.transpose(f32(g("x")), [0, 2, 3, 1]) as tf.Tensor4D;
    const naive = tf.tensor4d(toFloat32(g("conv.weight")), [3, 2, 3, 5]);
    const y = tf.transpose(tf.add(tf.conv2d(x, naive, 1, "valid"), tf.tensor1d(bias.values)), [0, 3, 1, 2])
      .dataSync();
    assert.throws(() => close(y, toFloat32(g("conv_y")), 1e-4, "naive"), /max abs diff/);
  });
});

Deno.test("torchToTf rejects wrong ranks and impossible depth multipliers", () => {
  const t = (shape: number[]) => ({ shape, values: new Float32Array(shape.reduce((a, b) => a * b, 1)) });
  assert.throws(
    () => torchToTf("a.weight", t([4, 3]), "conv"),
    /"a\.weight": conv weight must be 4-D .* got \[4, 3\]/,
  );
  assert.throws(
    () => torchToTf("b.weight", t([4, 2, 3, 3]), "depthwise"),
    /"b\.weight": depthwise weight must be/,
  );
  assert.throws(() => torchToTf("c.weight", t([4]), "linear"), /"c\.weight": linear weight must be 2-D/);
  assert.throws(
    () => torchToTf("d.weight", t([5, 1, 3, 3]), "depthwise", [3, 3, 2, 2]),
    /5 depthwise output channels are not a multiple of depth multiplier 2/,
  );
  const p = torchToTf("e", t([2, 3]), "param");
  assert.deepEqual(p.shape, [2, 3]);
});

/** The tfjs twin of the `Tiny` net in make_fixtures.py. */
function tinyModel(numClasses = 5): tfl.LayersModel {
  const input = tfl.input({ shape: [9, 8, 3] });
  let x = tfl.layers.conv2d({ filters: 4, kernelSize: 3, useBias: false, name: "stem" }).apply(
    input,
  ) as tfl.SymbolicTensor;
  x = tfl.layers.batchNormalization({ epsilon: 1e-5, name: "bn" }).apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.activation({ activation: "relu" }).apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.depthwiseConv2d({ kernelSize: 3, depthMultiplier: 2, name: "dw" }).apply(
    x,
  ) as tfl.SymbolicTensor;
  x = tfl.layers.globalAveragePooling2d({}).apply(x) as tfl.SymbolicTensor;
  const out = tfl.layers.dense({ units: numClasses, name: "fc" }).apply(x) as tfl.SymbolicTensor;
  return tfl.model({ inputs: input, outputs: out });
}

/** Name map for {@link tinyModel}, with variable objects. */
function tinyMap(model: tfl.LayersModel): NameMapEntry[] {
  const v = (layer: string, i: number) => model.getLayer(layer).weights[i];
  return [
    { torchName: "stem.weight", variable: v("stem", 0), kind: "conv" },
    { torchName: "bn.weight", variable: v("bn", 0), kind: "param" },
    { torchName: "bn.bias", variable: v("bn", 1), kind: "param" },
    { torchName: "bn.running_mean", variable: v("bn", 2), kind: "param" },
    { torchName: "bn.running_var", variable: v("bn", 3), kind: "param" },
    { torchName: "dw.weight", variable: v("dw", 0), kind: "depthwise" },
    { torchName: "dw.bias", variable: v("dw", 1), kind: "param" },
    { torchName: "fc.weight", variable: v("fc", 0), kind: "linear" },
    { torchName: "fc.bias", variable: v("fc", 1), kind: "param" },
  ];
}

async function tinyIO(): Promise<{ x: tf.Tensor4D; y: Float32Array }> {
  const io = (await readSafetensors(`${FIX}tiny_io.safetensors`)).tensors;
  const x = tf.tidy(() => tf.transpose(f32(io.get("x")!), [0, 2, 3, 1]) as tf.Tensor4D);
  return { x, y: toFloat32(io.get("y")!) };
}

function predict(model: tfl.LayersModel, x: tf.Tensor4D): Float32Array {
  return tf.tidy(() => (model.predict(x) as tf.Tensor).dataSync() as Float32Array);
}

function values(v: tfl.LayerVariable): Float32Array {
  return tf.tidy(() => v.read().dataSync() as Float32Array);
}

Deno.test("loadStateDict fills a tfjs model so that it reproduces the torch model's output", async () => {
  const model = tinyModel();
  const { x, y } = await tinyIO();
  try {
    const sd = await readSafetensors(`${FIX}tiny_model.safetensors`);
    assert.ok(sd.tensors.has("bn.num_batches_tracked"));
    const before = predict(model, x);
    assert.throws(() => close(before, y, 1e-4, "fresh"), /max abs diff/);
    const tensorsBefore = tf.memory().numTensors;
    const report = loadStateDict(model, sd, tinyMap(model));
    assert.equal(tf.memory().numTensors, tensorsBefore, "loadStateDict leaks no tensors");
    assert.equal(report.loaded.length, 9);
    assert.deepEqual(report.skipped, []);
    close(predict(model, x), y, 1e-4, "loaded");
  } finally {
    x.dispose();
    model.dispose();
  }
});

Deno.test("variables can be named by string (LayerVariable.name)", async () => {
  const model = tinyModel();
  const { x, y } = await tinyIO();
  try {
    const sd = await readSafetensors(`${FIX}tiny_model.safetensors`);
    const map = tinyMap(model).map((e) => ({ ...e, variable: (e.variable as tfl.LayerVariable).name }));
    loadStateDict(model, sd, map);
    close(predict(model, x), y, 1e-4, "by name");
  } finally {
    x.dispose();
    model.dispose();
  }
});

Deno.test("a 7-class classifier keeps its fresh init when the classifier prefix is skipped", async () => {
  const model = tinyModel(7);
  try {
    const sd = await readSafetensors(`${FIX}tiny_model.safetensors`);
    const fcKernel = model.getLayer("fc").weights[0];
    const fresh = values(fcKernel);
    // Without skipping, the 5-class checkpoint classifier does not fit.
    assert.throws(
      () => loadStateDict(model, sd, tinyMap(model)),
      /shape mismatches \(2\):\n {2}fc\.weight: torch \[5, 8\] -> linear \[8, 5\], but fc\/kernel\S* is \[8, 7\]/,
    );
    const report = loadStateDict(model, sd, tinyMap(model), { skipPrefixes: ["fc"] });
    assert.deepEqual(report.skipped.sort(), ["fc.bias", "fc.weight"]);
    assert.equal(report.loaded.length, 7);
    assert.deepEqual(values(fcKernel), fresh);
    const stem = model.getLayer("stem").weights[0];
    const expected = torchToTf("stem.weight", sd.tensors.get("stem.weight")!, "conv").values;
    assert.deepEqual(values(stem), expected);
  } finally {
    model.dispose();
  }
});

Deno.test("strict checks list missing, unexpected and unmapped names and assign nothing", async () => {
  const model = tinyModel();
  try {
    const sd = await readSafetensors(`${FIX}tiny_model.safetensors`);
    const tensors = new Map(sd.tensors);
    tensors.delete("dw.bias");
    tensors.set("extra.weight", sd.tensors.get("fc.bias")!);
    const map = tinyMap(model).filter((e) => e.torchName !== "bn.running_var");
    const stem = model.getLayer("stem").weights[0];
    const fresh = values(stem);
    assert.throws(() => loadStateDict(model, tensors, map), (e: unknown) => {
      assert.ok(e instanceof StateDictError);
      assert.match(e.message, /nothing was assigned/);
      assert.match(
        e.message,
        /missing keys \(in the name map, not in the state dict\) \(1\):\n {2}dw\.bias \(for dw\/bias/,
      );
      assert.match(
        e.message,
        /unexpected keys \(in the state dict, not in the name map\) \(2\):\n {2}bn\.running_var\n {2}extra\.weight/,
      );
      assert.match(e.message, /model variables not in the name map \(1\):\n {2}bn\/moving_variance\S* \[4\]/);
      assert.doesNotMatch(e.message, /num_batches_tracked/);
      return true;
    });
    assert.deepEqual(values(stem), fresh);
    // Non-strict: loads what fits and reports the rest.
    const report = loadStateDict(model, tensors, map, { strict: false });
    assert.deepEqual(report.missing.map((s) => s.split(" ")[0]), ["dw.bias"]);
    assert.deepEqual(report.unexpected, ["bn.running_var", "extra.weight"]);
    assert.equal(report.unmapped.length, 1);
    assert.notDeepEqual(values(stem), fresh);
  } finally {
    model.dispose();
  }
});

Deno.test("unknown variable names, duplicate entries and wrong kinds are errors even when not strict", async () => {
  const model = tinyModel();
  try {
    const sd = await readSafetensors(`${FIX}tiny_model.safetensors`);
    const map = tinyMap(model);
    assert.throws(
      () =>
        loadStateDict(model, sd, [...map, { torchName: "zz", variable: "no/such", kind: "param" }], {
          strict: false,
        }),
      /unknown variables in the name map \(1\):\n {2}zz -> no\/such/,
    );
    assert.throws(
      () => loadStateDict(model, sd, [...map, { ...map[1], torchName: "bn.bias" }], { strict: false }),
      /duplicate name-map entries \(2\):\n {2}torch name bn\.bias is mapped twice\n {2}variable bn\/gamma\S* is mapped twice/,
    );
    const wrongKind = map.map((e) => (e.torchName === "dw.weight" ? { ...e, kind: "conv" as const } : e));
    assert.throws(
      () => loadStateDict(model, sd, wrongKind, { strict: false }),
      /dw\.weight: torch \[8, 1, 3, 3\] -> conv \[3, 3, 1, 8\], but dw\/depthwise_kernel\S* is \[3, 3, 4, 2\]/,
    );
  } finally {
    model.dispose();
  }
});

Deno.test("timm classifier prefixes by family", () => {
  assert.equal(timmClassifierPrefix("efficientnet_b3.ra2_in1k"), "classifier");
  assert.equal(timmClassifierPrefix("tf_efficientnet_b0.in1k"), "classifier");
  assert.equal(timmClassifierPrefix("convnext_tiny.fb_in22k"), "head.fc");
  assert.equal(timmClassifierPrefix("resnet50.a1_in1k"), null);
});

Deno.test("loadPretrained resolves from the HF cache, reinitializes a mismatched classifier, loads a matching one", async () => {
  const cache = await Deno.makeTempDir({ prefix: "hf_cache_" });
  const { x, y } = await tinyIO();
  try {
    const snap = `${cache}/models--timm--tiny_test.fixture/snapshots/0123abc`;
    await Deno.mkdir(snap, { recursive: true });
    await Deno.copyFile(`${FIX}tiny_model.safetensors`, `${snap}/model.safetensors`);
    const opts = { cacheDir: cache, offline: true, nameMap: tinyMap, classifier: "fc" };

    const m5 = tinyModel(5);
    const r5 = await loadPretrained(m5, "tiny_test.fixture", opts);
    assert.equal(r5.source, "cache");
    assert.equal(r5.path, `${snap}/model.safetensors`);
    assert.equal(r5.classifierReinitialized, false);
    close(predict(m5, x), y, 1e-4, "pretrained 5-class");
    m5.dispose();

    const m7 = tinyModel(7);
    const fresh = values(m7.getLayer("fc").weights[0]);
    const r7 = await loadPretrained(m7, "tiny_test.fixture", opts);
    assert.equal(r7.classifierReinitialized, true);
    assert.deepEqual(r7.skipped.sort(), ["fc.bias", "fc.weight"]);
    assert.deepEqual(values(m7.getLayer("fc").weights[0]), fresh);
    m7.dispose();

    const m5b = tinyModel(5);
    const forced = await loadPretrained(m5b, "tiny_test.fixture", { ...opts, reinitClassifier: true });
    assert.equal(forced.classifierReinitialized, true);
    m5b.dispose();

    // Explicit path wins over the cache; a missing path is a clear error.
    const dir = await Deno.makeTempDir({ prefix: "explicit_" });
    const m = tinyModel(5);
    const sd = await readSafetensors(`${FIX}tiny_model.safetensors`);
    await writeSafetensors(`${dir}/w.safetensors`, sd.tensors, sd.metadata);
    const rp = await loadPretrained(m, "tiny_test.fixture", { ...opts, path: `${dir}/w.safetensors` });
    assert.equal(rp.source, "path");
    close(predict(m, x), y, 1e-4, "explicit path");
    m.dispose();
    await assert.rejects(
      () => loadPretrained(tinyModel(5), "tiny_test.fixture", { ...opts, path: `${dir}/none.safetensors` }),
      /weights file .*none\.safetensors \(given for tiny_test\.fixture\) does not exist/,
    );
    await Deno.remove(dir, { recursive: true });
  } finally {
    x.dispose();
    await Deno.remove(cache, { recursive: true });
  }
});
