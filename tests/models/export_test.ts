import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { serveDir } from "../../lib/web/static.ts";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import * as tfl from "@tensorflow/tfjs-layers";
import { ENSEMBLE_JSON, exportEnsemble, exportForBrowser, exportRun } from "../../lib/models/export.ts";
import { preprocess, preprocessViews } from "../../lib/faces/preprocess.ts";
import { ttaTransforms } from "../../lib/eval/tta.ts";
import { FER_FRAMING, LUMA } from "../../lib/faces/align.ts";
import { loadRunConfig, loadRunModel, runTransform } from "../../lib/runs/runs.ts";
import { IMAGENET_MEAN, IMAGENET_STD } from "../../lib/data/augment.ts";
import { CLASSES } from "../../lib/data/dataset.ts";
import { writePredictionsCsv } from "../../lib/eval/predictions.ts";
import { makeEnsembleFolder, makeTinyRun, randomCrops } from "../faces/helpers.ts";

await tf.setBackend("cpu");

/** Loads `dir/model.json` the way a browser does: over HTTP from a local static server. */
async function loadOverHttp(dir: string): Promise<tfl.LayersModel> {
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    (req) => serveDir(req, dir),
  );
  try {
    return await tfl.loadLayersModel(`http://127.0.0.1:${server.addr.port}/model.json`);
  } finally {
    await server.shutdown();
  }
}

/** The two models' logits agree within `tol` and are not constant (a model that ignores its input would pass). */
function assertSameLogits(a: tf.Tensor, b: tf.Tensor, tol: number): void {
  const diff = tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);
  assert.ok(diff <= tol, `max logit difference ${diff} (tolerance ${tol})`);
  assert.ok(tf.tidy(() => tf.moments(a).variance.dataSync()[0]) > 1e-4, "logits are not constant");
}

Deno.test("export round trip: the exported model gives the checkpoint's logits; metadata has classes, preprocessing and TTA", async () => {
  const tmp = mkdtempSync(join(tmpdir(), "fer-export-"));
  try {
    const runDir = await makeTinyRun(join(tmp, "run"));
    const out = join(tmp, "web");
    const r = await exportRun(runDir, out, { shardBytes: 1000 }); // tiny shards: several files, as for a big model
    assert.ok(r.shards.length > 1);
    assert.deepEqual(
      readdirSync(out).sort(),
      ["model.json", ...r.shards.map((p) => p.split("/").pop()!)].sort(),
    );
    const json = JSON.parse(Deno.readTextFileSync(r.modelJson));
    assert.equal(json.format, "layers-model");
    const meta = json.userDefinedMetadata;
    assert.deepEqual(meta.classes, [...CLASSES]);
    assert.equal(meta.format, "fer-deno-export-v1");
    assert.deepEqual(
      [meta.preprocessing.dataSize, meta.preprocessing.inputSize, meta.preprocessing.channels],
      [48, 48, 1],
    );
    assert.deepEqual([meta.preprocessing.mean, meta.preprocessing.std], [[0.5], [0.5]]);
    // no TTA evaluated on validation: the export applies the single centre view, and says it was the choice
    assert.deepEqual([meta.tta.mode, meta.tta.average, meta.tta.source], ["none", "prob", "validation"]);
    // a named TTA is stored as given; crops on a whole-image run are refused before anything is written
    const flip = await exportRun(runDir, join(tmp, "flip"), { tta: "hflip" });
    assert.deepEqual([flip.metadata.tta?.mode, flip.metadata.tta?.source], ["hflip", "given"]);
    // the accuracy under the exported TTA, from the run's evaluation files (none made yet: null)
    assert.deepEqual(meta.accuracy, { validation: null, test: null });
    const row = (label: number, pred: number) => ({ path: `${label}-${pred}.jpg`, label, pred });
    writePredictionsCsv(join(runDir, "predictions_val_tta-hflip.csv"), [row(0, 0), row(1, 2)], CLASSES);
    writePredictionsCsv(join(runDir, "predictions_tta-hflip.csv"), [
      row(0, 0),
      row(1, 1),
      row(2, 0),
      row(3, 3),
    ], CLASSES);
    const scored = await exportRun(runDir, join(tmp, "scored"), { tta: "hflip" });
    assert.deepEqual(scored.metadata.accuracy, { validation: 0.5, test: 0.75 });
    await assert.rejects(() => exportRun(runDir, join(tmp, "bad"), { tta: "10crop" }), /use --tta hflip/);
    assert.equal(existsSync(join(tmp, "bad")), false);
    assert.ok(meta.preprocessing.framing.eyeDistance > 0 && meta.preprocessing.luma.length === 3);
    assert.equal(meta.run, "run");

    const exported = await loadOverHttp(out);
    const { model } = await loadRunModel(runDir);
    const cfg = loadRunConfig(runDir);
    const crops = randomCrops(5);
    const [a, b] = tf.tidy(() => {
      const x = runTransform(cfg)(crops);
      return [
        model.predict(x) as tf.Tensor,
        exported.predict(preprocess(crops, meta.preprocessing)) as tf.Tensor,
      ];
    });
    assertSameLogits(a, b, 1e-5);
    tf.dispose([a, b, crops]);
    model.dispose();
    exported.dispose();
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});

Deno.test("export folds batch norms into their convolutions: no BatchNormalization in the graph, same logits", async () => {
  const tmp = mkdtempSync(join(tmpdir(), "fer-export-"));
  try {
    const runDir = await makeTinyRun(join(tmp, "run"), { batchNorm: true });
    const out = join(tmp, "web");
    const r = await exportRun(runDir, out);
    const topology = JSON.stringify(JSON.parse(Deno.readTextFileSync(r.modelJson)).modelTopology);
    const { model } = await loadRunModel(runDir);
    assert.ok(model.layers.some((l) => l.getClassName() === "BatchNormalization"), "the checkpoint has one");
    assert.ok(!topology.includes("BatchNormalization"), "folded away in the export");
    const exported = await loadOverHttp(out);
    const crops = randomCrops(5);
    const [a, b] = tf.tidy(() => {
      const x = runTransform(loadRunConfig(runDir))(crops);
      return [model.predict(x) as tf.Tensor, exported.predict(x) as tf.Tensor];
    });
    const scale = tf.tidy(() => tf.max(tf.abs(a)).dataSync()[0]);
    assertSameLogits(a, b, 1e-5 * Math.max(1, scale));
    tf.dispose([a, b, crops]);
    model.dispose();
    exported.dispose();
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});

Deno.test("preprocess (tfjs ops, used in the browser) equals the run's eval transform: 64 px, 3 channels, ImageNet stats", async () => {
  const tmp = mkdtempSync(join(tmpdir(), "fer-export-"));
  try {
    const runDir = await makeTinyRun(join(tmp, "run"), {
      inputSize: 64,
      channels: 3,
      mean: IMAGENET_MEAN,
      std: IMAGENET_STD,
    });
    const r = await exportRun(runDir, join(tmp, "web"));
    assert.equal(r.shards.length, 1);
    const p = r.metadata.preprocessing;
    const crops = randomCrops(3, 5);
    const diff = tf.tidy(() => {
      const a = runTransform(loadRunConfig(runDir))(crops);
      const b = preprocess(crops, p);
      assert.deepEqual(b.shape, [3, 64, 64, 3]);
      return tf.max(tf.abs(tf.sub(a, b))).dataSync()[0];
    });
    assert.ok(diff < 1e-4, `max input difference ${diff}`);
    crops.dispose();
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});

Deno.test("preprocess equals the eval transform of crop-trained runs: resize to cropFrom, then the centre crop", async () => {
  const tmp = mkdtempSync(join(tmpdir(), "fer-export-"));
  try {
    // 44 of 48 (the vgg_fer recipe: no resize, offset 2), 44 of 52 (resize up, offset 4), 44 of 47 (offset
    // 1.5, rounded half to even: 2)
    for (const [cropFrom, offset] of [[48, 2], [52, 4], [47, 2]]) {
      const runDir = await makeTinyRun(join(tmp, `run${cropFrom}`), { inputSize: 44, cropFrom });
      const p = (await exportRun(runDir, join(tmp, `web${cropFrom}`))).metadata.preprocessing;
      assert.deepEqual([p.dataSize, p.cropFrom, p.inputSize], [48, cropFrom, 44]);
      const crops = randomCrops(2, cropFrom);
      const [diff, shifted] = tf.tidy(() => {
        const a = runTransform(loadRunConfig(runDir))(crops);
        const b = preprocess(crops, p);
        assert.deepEqual(b.shape, [2, 44, 44, 1]);
        // a resize straight to 44 (what exports did before cropFrom) is not the model's input
        const resized = preprocess(crops, { ...p, cropFrom: undefined });
        return [tf.max(tf.abs(tf.sub(a, b))).dataSync()[0], tf.max(tf.abs(tf.sub(a, resized))).dataSync()[0]];
      });
      assert.ok(diff < 1e-4, `cropFrom ${cropFrom} (offset ${offset}): max input difference ${diff}`);
      assert.ok(shifted > 0.1, `cropFrom ${cropFrom}: a plain resize should differ (${shifted})`);
      crops.dispose();
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});

Deno.test("preprocessViews: torchvision's five_crop / ten_crop pixels on a 3×3 face, as the evaluation's", () => {
  const x = tf.tensor4d([0, 1, 2, 3, 4, 5, 6, 7, 8], [1, 3, 3, 1]); // 0 1 2 / 3 4 5 / 6 7 8
  const p = {
    dataSize: 3,
    inputSize: 2,
    cropFrom: 3,
    channels: 1 as const,
    mean: [0],
    std: [1 / 255],
    framing: FER_FRAMING,
    luma: LUMA,
  };
  const pix = (mode: "none" | "hflip" | "5crop" | "10crop") =>
    preprocessViews(x, p, mode).map((v) => {
      const out = Array.from(v.dataSync());
      v.dispose();
      return out;
    });
  const five = [[0, 1, 3, 4], [1, 2, 4, 5], [3, 4, 6, 7], [4, 5, 7, 8], [0, 1, 3, 4]];
  const mirrored = [[2, 1, 5, 4], [1, 0, 4, 3], [5, 4, 8, 7], [4, 3, 7, 6], [2, 1, 5, 4]];
  assert.deepEqual(pix("10crop"), [...five, ...mirrored]);
  assert.deepEqual(pix("5crop"), five);
  assert.deepEqual(pix("hflip"), [five[4], mirrored[4]]);
  assert.deepEqual(pix("none"), [five[4]]);
  // a run that sees whole images has no corner crops
  assert.throws(() => preprocessViews(x, { ...p, inputSize: 3, cropFrom: undefined }, "5crop"), /use hflip/);
  x.dispose();
});

Deno.test("preprocessViews equals the evaluation's TTA transforms, view by view (crop-trained and whole-image runs)", async () => {
  const tmp = mkdtempSync(join(tmpdir(), "fer-export-"));
  try {
    const cases = [
      { name: "crops", over: { inputSize: 44, cropFrom: 48 }, mode: "10crop" as const, views: 10 },
      { name: "whole", over: { inputSize: 64, channels: 3 as const }, mode: "hflip" as const, views: 2 },
    ];
    for (const c of cases) {
      const runDir = await makeTinyRun(join(tmp, c.name), c.over);
      const cfg = loadRunConfig(runDir);
      const p = (await exportRun(runDir, join(tmp, `web-${c.name}`))).metadata.preprocessing;
      const crops = randomCrops(2, 7);
      const want = ttaTransforms(cfg, c.mode);
      const got = preprocessViews(crops, p, c.mode);
      assert.equal(got.length, c.views);
      want.forEach((t, i) => {
        const d = tf.tidy(() => tf.max(tf.abs(tf.sub(t(crops), got[i]))).dataSync()[0]);
        assert.ok(d < 1e-4, `${c.name} view ${i}: max input difference ${d}`);
      });
      // the views differ from each other (a flip that did nothing would pass the comparison above trivially)
      const d01 = tf.tidy(() => tf.max(tf.abs(tf.sub(got[0], got[1]))).dataSync()[0]);
      assert.ok(d01 > 0.1, `${c.name}: views 0 and 1 are equal`);
      tf.dispose([crops, ...got]);
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});

Deno.test("export of a folder without a run, or of an ensemble as a run: clear errors", async () => {
  const tmp = mkdtempSync(join(tmpdir(), "fer-export-"));
  try {
    await assert.rejects(() => exportRun(tmp, join(tmp, "out")), /config\.json/);
    writeFileSync(join(tmp, "config.json"), JSON.stringify({ kind: "ensemble", members: [] }));
    await assert.rejects(
      () => exportRun(tmp, join(tmp, "out")),
      /is an ensemble: export it with exportEnsemble/,
    );
    await assert.rejects(() => exportEnsemble(tmp, join(tmp, "out")), /the ensemble lists no members/);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});

Deno.test("exportEnsemble: a folder per member with its recorded TTA and ensemble.json; a later single export removes the list", async () => {
  const tmp = mkdtempSync(join(tmpdir(), "fer-export-ens-"));
  try {
    await makeTinyRun(join(tmp, "a"), { seed: 3 });
    await makeTinyRun(join(tmp, "b"), { seed: 5, inputSize: 44, cropFrom: 48 });
    const ens = makeEnsembleFolder(join(tmp, "ensemble-ab"), [["a", "none"], ["b", "10crop"]]);
    // the ensemble's own reports (members chosen on validation, then test): its scores in the manifest
    writeFileSync(join(ens, "val_report.json"), JSON.stringify({ test_accuracy: 0.8 }));
    writeFileSync(join(ens, "test_report.json"), JSON.stringify({ test_accuracy: 0.7 }));
    const out = join(tmp, "web");
    const r = await exportEnsemble(ens, out);
    assert.deepEqual(r.manifest.accuracy, { validation: 0.8, test: 0.7 });
    assert.deepEqual(readdirSync(out).sort(), [ENSEMBLE_JSON, "member-1", "member-2"]);
    const manifest = JSON.parse(Deno.readTextFileSync(join(out, ENSEMBLE_JSON)));
    assert.deepEqual(manifest, r.manifest);
    assert.equal(manifest.ensemble, "ensemble-ab");
    assert.deepEqual(manifest.members.map((m: { path: string; run: string }) => [m.path, m.run]), [
      ["member-1", "a"],
      ["member-2", "b"],
    ]);
    for (const [i, mode] of ["none", "10crop"].entries()) {
      const meta =
        JSON.parse(Deno.readTextFileSync(join(out, `member-${i + 1}`, "model.json"))).userDefinedMetadata;
      assert.equal(meta.tta.mode, mode);
    }
    // the CLIs' entry point: an ensemble's members and list, or one run's model
    const viaEns = await exportForBrowser(ens, join(tmp, "web3"));
    assert.deepEqual([viaEns.models.length, viaEns.ensemble?.manifest.ensemble], [2, "ensemble-ab"]);
    const viaRun = await exportForBrowser(join(tmp, "a"), join(tmp, "web4"));
    assert.deepEqual([viaRun.models.map((m) => m.metadata.run), viaRun.ensemble], [["a"], null]);
    // `--tta hflip` for all members
    const given = await exportEnsemble(ens, join(tmp, "web2"), { tta: "hflip" });
    assert.deepEqual(given.members.map((m) => m.metadata.tta!.mode), ["hflip", "hflip"]);
    // a single model exported into the folder afterwards: the demo must not load the stale list
    await exportRun(join(tmp, "a"), out);
    assert.ok(existsSync(join(out, "model.json")));
    assert.ok(!existsSync(join(out, ENSEMBLE_JSON)));
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});
