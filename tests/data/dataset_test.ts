import assert from "node:assert/strict";
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import sharp from "sharp";
import {
  batches,
  checkDecodeMemory,
  classCounts,
  CLASSES,
  DatasetError,
  decodeBytes,
  decodeImage,
  DecodeSizeError,
  loadDataset,
  loadSplit,
  PROJECT_ROOT,
  recordSkipped,
  resolveDataRoot,
  scanSplit,
  SKIPPED_FILE,
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
  // fromBatch: the same order from that batch on (an epoch resumed in its middle)
  const rest = [...batches(split, { batchSize: 4, shuffle: true, seed: 1, fromBatch: 1 })];
  assert.deepEqual(rest.flatMap((b) => [...b.indices]), seen.slice(4));
  rest.forEach((b) => tf.dispose([b.x, b.y]));
  assert.equal([...batches(split, { batchSize: 4, fromBatch: 9 })].length, 0);
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

// ---- reliability (issue 17): symbolic link loops, unreadable folders, damaged files, memory, cache --------------

/** Runs `code` (TypeScript, project import map) with file permissions enforced even for root (setpriv drops
 * CAP_DAC_OVERRIDE/CAP_DAC_READ_SEARCH), so chmod-ed folders are really unreadable or unwritable. */
async function runWithoutDacOverride(
  code: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const deno = Deno.execPath();
  const argv = Deno.uid() === 0
    ? ["setpriv", "--bounding-set=-dac_override,-dac_read_search", deno, "eval", code]
    : [deno, "eval", code];
  const o = await new Deno.Command(argv[0], {
    args: argv.slice(1),
    cwd: PROJECT_ROOT,
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  const dec = new TextDecoder();
  return { code: o.code, stdout: dec.decode(o.stdout), stderr: dec.decode(o.stderr) };
}

function hasSetpriv(): boolean {
  if (Deno.uid() !== 0) return true;
  try {
    return new Deno.Command("setpriv", { args: ["--version"], stdout: "null", stderr: "null" }).outputSync()
      .success;
  } catch {
    return false;
  }
}

const DATASET_URL = new URL("../../lib/data/dataset.ts", import.meta.url).href;

Deno.test("symbolic links: loops and links back into the dataset are not followed, and are reported", async () => {
  const root = await makeDataset(["x", "y"], { x: 3, y: 2 });
  const outside = mkdtempSync(join(tmpdir(), "fer-outside-"));
  try {
    await writeJpeg(join(outside, "o_0.jpg"), 77);
    symlinkSync("..", join(root, "train", "x", "up")); // loop through the split folder
    symlinkSync(".", join(root, "train", "y", "loop")); // loop onto itself
    symlinkSync(join(root, "train", "y"), join(root, "train", "x", "side")); // another class's images
    symlinkSync(join(root, "train", "y", "img_0.jpg"), join(root, "train", "x", "dup.jpg")); // a file twice
    symlinkSync(outside, join(root, "train", "x", "ext")); // a real folder outside: followed (ImageFolder does)
    symlinkSync(outside, join(root, "train", "y", "ext2")); // the same folder again, under another label
    symlinkSync(join(root, "nowhere"), join(root, "train", "y", "broken.jpg"));
    const s = scanSplit(root, "train");
    const rel = (p: string) => p.slice(root.length + 1);
    assert.deepEqual(s.files.map(rel), [
      "train/x/img_0.jpg",
      "train/x/img_1.jpg",
      "train/x/img_2.jpg",
      "train/x/ext/o_0.jpg",
      "train/y/img_0.jpg",
      "train/y/img_1.jpg",
    ]);
    const links = Object.fromEntries(s.links.map((l) => [rel(l.path), l.reason]));
    assert.deepEqual(Object.keys(links).sort(), [
      "train/x/dup.jpg",
      "train/x/side",
      "train/x/up",
      "train/y/broken.jpg",
      "train/y/ext2",
      "train/y/loop",
    ]);
    assert.match(links["train/x/up"], /loop/);
    assert.match(links["train/y/loop"], /loop/);
    assert.match(links["train/x/side"], /counted twice/);
    assert.match(links["train/x/dup.jpg"], /already in the dataset/);
    assert.match(links["train/y/ext2"], /already scanned/);
    assert.match(links["train/y/broken.jpg"], /broken/);
    const ds = await loadDataset({ root, cacheDir: false, verbose: false });
    assert.equal(ds.train.labels.length, 6);
    assert.equal(new Set(ds.train.paths).size, 6);
    assert.equal(ds.links.length, 6);
  } finally {
    rmSync(root, { recursive: true });
    rmSync(outside, { recursive: true });
  }
});

Deno.test({
  name: "unreadable class folder: a DatasetError naming the folder and the remedy, not an EACCES stack trace",
  ignore: !hasSetpriv(),
  fn: async () => {
    const root = await makeDataset(["x", "y"], { x: 1, y: 1 });
    try {
      chmodSync(join(root, "train", "y"), 0o000);
      const r = await runWithoutDacOverride(
        `import { loadDataset } from "${DATASET_URL}";
         try { await loadDataset({ root: "${root}", cacheDir: false, verbose: false }); console.log("loaded"); }
         catch (e) { console.log(JSON.stringify({ name: e.name, message: e.message })); }`,
      );
      const out = JSON.parse(r.stdout.trim().split("\n").pop()!);
      assert.equal(out.name, "DatasetError", r.stdout + r.stderr);
      assert.match(
        out.message,
        new RegExp(`cannot read class folder ${join(root, "train", "y")}: permission denied`),
      );
      assert.match(out.message, /chmod/);
    } finally {
      chmodSync(join(root, "train", "y"), 0o755);
      rmSync(root, { recursive: true });
    }
  },
});

Deno.test("damaged JPEGs: truncated and zero-padded files are skipped as truncated, never 'Unknown error'", async () => {
  const root = await makeDataset(["x", "y"], { x: 2, y: 2 });
  try {
    const good = await sharp(
      Uint8Array.from({ length: 48 * 48 }, (_, i) => (i * 7) % 256),
      { raw: { width: 48, height: 48, channels: 1 } },
    ).jpeg().toBuffer();
    // many at once: libvips' shared error buffer made concurrent failures report "Unknown error"
    for (let i = 0; i < 24; i++) {
      writeFileSync(
        join(root, "train", "x", `cut_${String(i).padStart(2, "0")}.jpg`),
        good.subarray(0, 200 + 20 * i),
      );
    }
    const padded = new Uint8Array(good.length);
    padded.set(good.subarray(0, good.length - 200)); // a write cut short on a crash: zeros where data was
    writeFileSync(join(root, "train", "y", "padded.jpg"), padded);
    writeFileSync(join(root, "train", "y", "empty.jpg"), new Uint8Array(0));
    const ds = await loadDataset({ root, cacheDir: false, verbose: false });
    assert.equal(ds.train.labels.length, 4);
    assert.equal(ds.skipped.length, 26);
    for (const s of ds.skipped) {
      assert.doesNotMatch(s.reason, /Unknown error/, s.path);
      if (s.path.endsWith("empty.jpg")) assert.match(s.reason, /empty file/);
      else assert.match(s.reason, /truncated or corrupt JPEG/, `${s.path}: ${s.reason}`);
    }
  } finally {
    rmSync(root, { recursive: true });
  }
});

Deno.test("decode size: refused before allocating when the images would not fit in memory", async () => {
  const root = await makeDataset(["x", "y"], { x: 2, y: 2 });
  try {
    const need = decodeBytes(8, 48, 1); // 4 train + 4 test images at 48 px
    await assert.rejects(
      loadDataset({ root, cacheDir: false, verbose: false, size: 48, memoryBytes: need }),
      (e: Error) =>
        e instanceof DecodeSizeError && /size 48 is too large: 8 images at 48×48×1/.test(e.message) &&
        e.maxSize < 48 && e.maxSize > 0,
    );
    const ok = await loadDataset({ root, cacheDir: false, verbose: false, size: 48, memoryBytes: 2 * need });
    assert.equal(ok.train.labels.length, 4);
    assert.throws(() => checkDecodeMemory(10, 0, 1, 1e9), DecodeSizeError);
    // the bound scales with the data: the largest size that fits is reported exactly
    try {
      checkDecodeMemory(35887, 100000, 1, 24 * 2 ** 30);
      assert.fail("no error");
    } catch (e) {
      const max = (e as DecodeSizeError).maxSize;
      assert.doesNotThrow(() => checkDecodeMemory(35887, max, 1, 24 * 2 ** 30));
      assert.throws(() => checkDecodeMemory(35887, max + 1, 1, 24 * 2 ** 30), DecodeSizeError);
    }
  } finally {
    rmSync(root, { recursive: true });
  }
});

/** Captures console.warn / console.error while `f` runs. */
async function captureStderr<T>(f: () => Promise<T>): Promise<{ value: T; lines: string[] }> {
  const lines: string[] = [];
  const [w, e] = [console.warn, console.error];
  console.warn = console.error = (...a: unknown[]) => void lines.push(a.join(" "));
  try {
    return { value: await f(), lines };
  } finally {
    [console.warn, console.error] = [w, e];
  }
}

Deno.test("unwritable pixel cache: one warning naming the path and FER_CACHE_DIR, and the data still load", async () => {
  const root = await makeDataset(["x", "y"], { x: 2, y: 2 });
  const blocker = join(root, "not-a-folder");
  writeFileSync(blocker, "a file where the cache folder should be");
  try {
    const { value: ds, lines } = await captureStderr(() =>
      loadDataset({ root, cacheDir: join(blocker, "cache"), verbose: false })
    );
    assert.equal(ds.train.labels.length, 4);
    assert.deepEqual(ds.cache, { train: "unwritable", test: "unwritable" });
    const warnings = lines.filter((l) => /pixel cache/.test(l));
    assert.equal(warnings.length, 1, lines.join("\n")); // once, not once per split
    assert.match(warnings[0], new RegExp(`cannot write the pixel cache ${join(blocker, "cache")}/`));
    assert.match(warnings[0], /FER_CACHE_DIR/);
  } finally {
    rmSync(root, { recursive: true });
  }
});

Deno.test({
  name: "read-only pixel cache folder (EACCES): warns with the path and FER_CACHE_DIR, loads without it",
  ignore: !hasSetpriv(),
  fn: async () => {
    const root = await makeDataset(["x", "y"], { x: 2, y: 2 });
    const cacheDir = mkdtempSync(join(tmpdir(), "fer-rocache-"));
    try {
      chmodSync(cacheDir, 0o555);
      const r = await runWithoutDacOverride(
        `import { loadDataset } from "${DATASET_URL}";
         const ds = await loadDataset({ root: "${root}", cacheDir: "${cacheDir}", verbose: false });
         console.log(JSON.stringify({ n: ds.train.labels.length, cache: ds.cache }));`,
      );
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(JSON.parse(r.stdout.trim().split("\n").pop()!), {
        n: 4,
        cache: { train: "unwritable", test: "unwritable" },
      });
      const warnings = r.stderr.split("\n").filter((l) => /pixel cache/.test(l));
      assert.equal(warnings.length, 1, r.stderr);
      assert.match(warnings[0], new RegExp(`cannot write the pixel cache ${cacheDir}/.*EACCES`));
      assert.match(warnings[0], /FER_CACHE_DIR/);
    } finally {
      chmodSync(cacheDir, 0o755);
      rmSync(root, { recursive: true });
      rmSync(cacheDir, { recursive: true });
    }
  },
});

Deno.test("first load: a progress line while a large split is decoded (not silence)", async () => {
  const root = await makeDataset(["x", "y"], { x: 1, y: 1 }, 1);
  try {
    const small = await sharp(new Uint8Array(64).fill(9), { raw: { width: 8, height: 8, channels: 1 } })
      .jpeg()
      .toBuffer();
    for (let i = 0; i < 2000; i++) writeFileSync(join(root, "train", i % 2 ? "x" : "y", `s_${i}.jpg`), small);
    const { value, lines } = await captureStderr(() =>
      loadSplit(root, "train", { size: 8, cacheDir: false, progress: true })
    );
    assert.equal(value.split.labels.length, 2002);
    assert.ok(lines.some((l) => /^decoding 2,002 train images/.test(l)), lines.join("\n"));
    assert.ok(lines.some((l) => /decoding train: 2,002\/2,002 images \(100%/.test(l)), lines.join("\n"));
  } finally {
    rmSync(root, { recursive: true });
  }
});

Deno.test("recordSkipped: skipped files and links land in the run folder as skipped.json", async () => {
  const root = await makeDataset(["x", "y"], { x: 2, y: 2 });
  const runDir = mkdtempSync(join(tmpdir(), "fer-run-"));
  try {
    writeFileSync(join(root, "train", "x", "bad.jpg"), "nope");
    symlinkSync(".", join(root, "train", "y", "loop"));
    const ds = await loadDataset({ root, cacheDir: false, verbose: false });
    const out = recordSkipped(runDir, ds);
    assert.equal(out, join(runDir, SKIPPED_FILE));
    const j = JSON.parse(readFileSync(out, "utf8"));
    assert.equal(j.root, root);
    assert.deepEqual(j.files.map((f: { path: string }) => f.path), ["train/x/bad.jpg"]);
    assert.deepEqual(j.links.map((f: { path: string }) => f.path), ["train/y/loop"]);
    recordSkipped(runDir, { classes: ["a"] }); // data given directly: empty lists
    assert.deepEqual(JSON.parse(readFileSync(out, "utf8")), { root: null, files: [], links: [] });
  } finally {
    rmSync(root, { recursive: true });
    rmSync(runDir, { recursive: true });
  }
});
