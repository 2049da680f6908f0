import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import sharp from "sharp";
import {
  batches,
  classCounts,
  CLASSES,
  DatasetError,
  decodeImage,
  loadDataset,
  PROJECT_ROOT,
  resolveDataRoot,
  scanSplit,
  trainValSplit,
} from "../../lib/data/dataset.ts";

await tf.setBackend("cpu");

/** Writes a grayscale JPEG whose pixels all equal `value`. */
async function writeJpeg(path: string, value: number, size = 48): Promise<void> {
  mkdirSync(join(path, ".."), { recursive: true });
  const px = new Uint8Array(size * size).fill(value);
  await sharp(px, { raw: { width: size, height: size, channels: 1 } }).jpeg({ quality: 100 }).toFile(path);
}

/** A temp dataset: per split, per class, `n` images with pixel value 10*label + index. */
async function makeDataset(classes: string[], n: Record<string, number>, tests = 2): Promise<string> {
  const root = mkdtempSync(join(tmpdir(), "fer-data-"));
  for (const [label, c] of classes.entries()) {
    for (let i = 0; i < n[c]; i++) await writeJpeg(join(root, "train", c, `img_${i}.jpg`), 10 * label + i);
    for (let i = 0; i < tests; i++) await writeJpeg(join(root, "test", c, `t_${i}.jpg`), 10 * label + i);
  }
  return root;
}

Deno.test("scan: classes sorted, labels in that order, files sorted (ImageFolder semantics)", async () => {
  const root = await makeDataset(["b_cls", "a_cls", "C_cls"], { b_cls: 3, a_cls: 2, C_cls: 1 });
  try {
    const s = scanSplit(root, "train");
    assert.deepEqual(s.classes, ["C_cls", "a_cls", "b_cls"]); // code-point order, as Python's sorted()
    assert.deepEqual(s.labels, [0, 1, 1, 2, 2, 2]);
    assert.deepEqual(s.files.map((f) => f.slice(root.length + 1)), [
      "train/C_cls/img_0.jpg",
      "train/a_cls/img_0.jpg",
      "train/a_cls/img_1.jpg",
      "train/b_cls/img_0.jpg",
      "train/b_cls/img_1.jpg",
      "train/b_cls/img_2.jpg",
    ]);
  } finally {
    rmSync(root, { recursive: true });
  }
});

Deno.test("committed sample: Kaggle layout with the seven classes in order", async () => {
  const ds = await loadDataset({
    root: join(PROJECT_ROOT, "data", "sample"),
    cacheDir: false,
    verbose: false,
  });
  assert.deepEqual(ds.classes, [...CLASSES]);
  assert.equal(ds.train.height, 48);
  assert.equal(ds.train.channels, 1);
  assert.equal(ds.train.images.length, ds.train.labels.length * 48 * 48);
  assert.equal(ds.skipped.length, 0);
  const counts = classCounts(ds.test);
  assert.equal(Object.values(counts).reduce((a, b) => a + b, 0), ds.test.labels.length);
  assert.ok(Object.values(counts).every((c) => c > 0));
});

Deno.test("decode: pixels, resize and channel expansion", async () => {
  const root = await makeDataset(["x", "y"], { x: 1, y: 1 }, 1);
  try {
    const f = join(root, "train", "y", "img_0.jpg");
    const g = await decodeImage(f, 48, 1);
    assert.equal(g.length, 48 * 48);
    assert.ok(Math.abs(g[100] - 10) <= 1, `pixel ${g[100]}`);
    const big = await decodeImage(f, 64, 3);
    assert.equal(big.length, 64 * 64 * 3);
    assert.ok(Math.abs(big[5] - 10) <= 1);
  } finally {
    rmSync(root, { recursive: true });
  }
});

Deno.test("decode: colour images become luminance, not one colour channel; gray JPEGs stay exact", async () => {
  const dir = mkdtempSync(join(tmpdir(), "fer-colour-"));
  try {
    const rgb = new Uint8Array(48 * 48 * 3);
    for (let i = 0; i < rgb.length; i += 3) rgb[i] = 200; // pure red
    await sharp(rgb, { raw: { width: 48, height: 48, channels: 3 } }).png().toFile(join(dir, "red.png"));
    const g = await decodeImage(join(dir, "red.png"), 48, 1);
    assert.equal(g.length, 48 * 48);
    assert.ok(g[0] > 20 && g[0] < 120, `luminance of red should be well below 200, got ${g[0]}`);
    const sample = join(PROJECT_ROOT, "data", "sample", "train", "happy");
    const f = join(sample, readdirSync(sample).sort()[0]);
    const ref = await sharp(f).greyscale().extractChannel(0).raw().toBuffer();
    assert.deepEqual(await decodeImage(f, 48, 1), new Uint8Array(ref));
  } finally {
    rmSync(dir, { recursive: true });
  }
});

Deno.test("stratified split: per-class proportions, disjoint, seeded", () => {
  const n = 1000;
  const labels = Int32Array.from({ length: n }, (_, i) => (i % 10 < 7 ? 0 : i % 10 < 9 ? 1 : 2));
  const split = {
    name: "train",
    classes: ["a", "b", "c"],
    paths: Array.from({ length: n }, (_, i) => `p${i}`),
    labels,
    images: Uint8Array.from({ length: n }, (_, i) => i % 256),
    height: 1,
    width: 1,
    channels: 1,
  };
  const { train, val } = trainValSplit(split, { valFraction: 0.1, seed: 3 });
  assert.deepEqual(classCounts(val), { a: 70, b: 20, c: 10 });
  assert.deepEqual(classCounts(train), { a: 630, b: 180, c: 90 });
  const all = new Set([...train.paths, ...val.paths]);
  assert.equal(all.size, n);
  // pixels travel with their rows
  for (let k = 0; k < val.paths.length; k++) assert.equal(val.images[k], Number(val.paths[k].slice(1)) % 256);
  const again = trainValSplit(split, { valFraction: 0.1, seed: 3 });
  assert.deepEqual(again.val.paths, val.paths);
  const other = trainValSplit(split, { valFraction: 0.1, seed: 4 });
  assert.notDeepEqual(other.val.paths, val.paths);
  assert.throws(() => trainValSplit(split, { valFraction: 1 }), RangeError);
});

Deno.test("cache: hit on reload, invalidated when a file changes, is added, or is touched", async () => {
  const root = await makeDataset(["x", "y"], { x: 2, y: 2 });
  const cacheDir = mkdtempSync(join(tmpdir(), "fer-cache-"));
  try {
    const a = await loadDataset({ root, cacheDir, verbose: false });
    assert.deepEqual(a.cache, { train: "miss", test: "miss" });
    const b = await loadDataset({ root, cacheDir, verbose: false });
    assert.deepEqual(b.cache, { train: "hit", test: "hit" });
    assert.deepEqual(b.train.images, a.train.images);
    assert.deepEqual(b.train.paths, a.train.paths);
    assert.deepEqual(b.train.labels, a.train.labels);
    // a changed file (new content and size)
    await writeJpeg(join(root, "train", "x", "img_0.jpg"), 200, 40);
    const c = await loadDataset({ root, cacheDir, verbose: false });
    assert.equal(c.cache.train, "miss");
    assert.equal(c.cache.test, "hit");
    assert.ok(Math.abs(c.train.images[0] - 200) <= 1);
    // an added file
    await writeJpeg(join(root, "train", "y", "img_9.jpg"), 99);
    const d = await loadDataset({ root, cacheDir, verbose: false });
    assert.equal(d.cache.train, "miss");
    assert.equal(d.train.labels.length, 5);
    // only the modification time changes
    const t = new Date(2020, 1, 1);
    utimesSync(join(root, "train", "y", "img_9.jpg"), t, t);
    assert.equal((await loadDataset({ root, cacheDir, verbose: false })).cache.train, "miss");
    assert.equal((await loadDataset({ root, cacheDir, verbose: false })).cache.train, "hit");
    // a corrupt cache file is rebuilt, not trusted
    for (const f of readdirSync(cacheDir)) writeFileSync(join(cacheDir, f), "garbage");
    const e = await loadDataset({ root, cacheDir, verbose: false });
    assert.deepEqual(e.cache, { train: "miss", test: "miss" });
    assert.equal(e.train.labels.length, 5);
    assert.ok(readdirSync(cacheDir).every((f) => !f.endsWith(".tmp")));
  } finally {
    rmSync(root, { recursive: true });
    rmSync(cacheDir, { recursive: true });
  }
});

Deno.test("bad files: corrupt and non-image files are skipped, named, counted", async () => {
  const root = await makeDataset(["x", "y"], { x: 3, y: 2 });
  try {
    writeFileSync(join(root, "train", "x", "broken.jpg"), "this is not a jpeg");
    writeFileSync(join(root, "train", "y", "notes.txt"), "hello");
    const good = await sharp(new Uint8Array(48 * 48).fill(5), { raw: { width: 48, height: 48, channels: 1 } })
      .jpeg().toBuffer();
    writeFileSync(join(root, "train", "y", "truncated.jpg"), good.subarray(0, 100));
    const ds = await loadDataset({ root, cacheDir: false, verbose: false });
    assert.equal(ds.train.labels.length, 5);
    assert.deepEqual(ds.skipped.map((s) => s.path.slice(root.length + 1)), [
      "train/x/broken.jpg",
      "train/y/notes.txt",
      "train/y/truncated.jpg",
    ]);
    assert.match(ds.skipped[0].reason, /cannot decode/);
    assert.match(ds.skipped[1].reason, /not an image file/);
    assert.match(ds.skipped[2].reason, /cannot decode/);
  } finally {
    rmSync(root, { recursive: true });
  }
});

Deno.test("errors: missing folder, missing split, empty class, class mismatch", async () => {
  const root = await makeDataset(["x", "y"], { x: 1, y: 1 });
  try {
    await assert.rejects(
      loadDataset({ root: join(root, "nope"), cacheDir: false, verbose: false }),
      (e: Error) => e instanceof DatasetError && /dataset folder not found: .*nope/.test(e.message),
    );
    mkdirSync(join(root, "train", "z"));
    mkdirSync(join(root, "test", "z"));
    await assert.rejects(
      loadDataset({ root, cacheDir: false, verbose: false }),
      (e: Error) => e instanceof DatasetError && /empty class folder: .*train\/z/.test(e.message),
    );
    rmSync(join(root, "train", "z"), { recursive: true });
    await writeJpeg(join(root, "test", "z", "a.jpg"), 1);
    await assert.rejects(
      loadDataset({ root, cacheDir: false, verbose: false }),
      (e: Error) => e instanceof DatasetError && /class folders differ/.test(e.message),
    );
    rmSync(join(root, "test"), { recursive: true });
    await assert.rejects(
      loadDataset({ root, cacheDir: false, verbose: false }),
      (e: Error) => e instanceof DatasetError && /missing 'test' folder/.test(e.message),
    );
    // a class whose only file is corrupt
    const r2 = await makeDataset(["x", "y"], { x: 1, y: 1 });
    rmSync(join(r2, "train", "y", "img_0.jpg"));
    writeFileSync(join(r2, "train", "y", "bad.jpg"), "nope");
    await assert.rejects(
      loadDataset({ root: r2, cacheDir: false, verbose: false }),
      (e: Error) => e instanceof DatasetError && /no decodable images/.test(e.message),
    );
    rmSync(r2, { recursive: true });
  } finally {
    rmSync(root, { recursive: true });
  }
});

Deno.test("batches: shuffled, seeded, complete, no tensor leak", () => {
  const n = 10;
  const split = {
    name: "train",
    classes: ["a", "b"],
    paths: Array.from({ length: n }, (_, i) => `p${i}`),
    labels: Int32Array.from({ length: n }, (_, i) => i % 2),
    images: Uint8Array.from({ length: n * 4 }, (_, i) => Math.floor(i / 4)),
    height: 2,
    width: 2,
    channels: 1,
  };
  const before = tf.memory().numTensors;
  const seen: number[] = [];
  for (const b of batches(split, { batchSize: 4, shuffle: true, seed: 1 })) {
    const x = b.x.dataSync();
    const y = b.y.dataSync();
    b.indices.forEach((i, k) => {
      assert.equal(x[k * 4], i);
      assert.equal(y[k], i % 2);
    });
    assert.equal(b.x.dtype, "float32");
    assert.equal(b.y.dtype, "int32");
    seen.push(...b.indices);
    tf.dispose([b.x, b.y]);
  }
  assert.equal(tf.memory().numTensors, before);
  assert.deepEqual([...seen].sort((a, b) => a - b), Array.from({ length: n }, (_, i) => i));
  assert.notDeepEqual(seen, Array.from({ length: n }, (_, i) => i));
  const again = [...batches(split, { batchSize: 4, shuffle: true, seed: 1 })];
  assert.deepEqual(again.flatMap((b) => [...b.indices]), seen);
  again.forEach((b) => tf.dispose([b.x, b.y]));
  const dropped = [...batches(split, { batchSize: 4, dropLast: true })];
  assert.equal(dropped.length, 2);
  dropped.forEach((b) => tf.dispose([b.x, b.y]));
});

const fer = resolveDataRoot();
const hasReal = !fer.sample && existsSync(join(fer.root, "train"));
Deno.test({
  name: hasReal ? "full FER2013: exact counts" : "full FER2013: exact counts (skipped: FER2013_DIR not set)",
  ignore: !hasReal,
  fn: async () => {
    const ds = await loadDataset({ verbose: false });
    assert.equal(ds.train.labels.length, 28709);
    assert.equal(ds.test.labels.length, 7178);
    assert.deepEqual(classCounts(ds.test), {
      angry: 958,
      disgust: 111,
      fear: 1024,
      happy: 1774,
      neutral: 1233,
      sad: 1247,
      surprise: 831,
    });
    assert.deepEqual(classCounts(ds.train), {
      angry: 3995,
      disgust: 436,
      fear: 4097,
      happy: 7215,
      neutral: 4965,
      sad: 4830,
      surprise: 3171,
    });
    assert.equal(ds.skipped.length, 0);
  },
});
