import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import assert from "node:assert/strict";
import {
  colorJitter,
  cropPixels,
  drawErasing,
  erasePixels,
  ERASING_DEFAULTS,
  horizontalFlip,
  IMAGENET_MEAN,
  IMAGENET_STD,
  makeTransforms,
  normalize,
  reflect101,
  resize,
  shiftScaleRotate,
  toChannels,
} from "../../lib/data/augment.ts";
import { ttaViews } from "../../lib/data/views.ts";
import { mulberry32 } from "../../lib/util/rng.ts";

await tf.setBackend("cpu");

/** A random uint8-valued float batch [b,h,w,c]. */
function batch(b: number, h: number, w: number, c: number, seed = 1): tf.Tensor4D {
  const r = mulberry32(seed);
  return tf.tensor4d(Array.from({ length: b * h * w * c }, () => Math.floor(r() * 256)), [b, h, w, c]);
}

function maxAbsDiff(a: tf.Tensor, b: tf.Tensor): number {
  const x = a.dataSync();
  const y = b.dataSync();
  assert.equal(x.length, y.length);
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i] - y[i]));
  return m;
}

Deno.test("horizontal flip twice is the identity; flags pick the images", () => {
  const x = batch(3, 5, 6, 1);
  const once = horizontalFlip(x, [true, false, true]);
  const twice = horizontalFlip(once, [true, false, true]);
  assert.equal(maxAbsDiff(twice, x), 0);
  const a = x.arraySync();
  const f = once.arraySync();
  assert.deepEqual(f[1], a[1]);
  assert.deepEqual(f[0][2].map((p) => p[0]), a[0][2].map((p) => p[0]).reverse());
  tf.dispose([x, once, twice]);
});

Deno.test("shift-scale-rotate with angle 0, scale 1, shift 0 is the identity", () => {
  const x = batch(2, 7, 9, 3);
  const y = shiftScaleRotate(x, [{ angle: 0, scale: 1, dx: 0, dy: 0 }, { angle: 0, scale: 1, dx: 0, dy: 0 }]);
  assert.ok(maxAbsDiff(x, y) < 1e-4);
  tf.dispose([x, y]);
});

Deno.test("rotation and scaling keep the centre pixel; 90° is np.rot90 (counter-clockwise)", () => {
  const x = batch(1, 9, 9, 1, 7);
  const a = x.arraySync()[0];
  for (const p of [{ angle: 10, scale: 1.05, dx: 0, dy: 0 }, { angle: -7, scale: 0.95, dx: 0, dy: 0 }]) {
    const y = shiftScaleRotate(x, [p]);
    assert.ok(Math.abs(y.arraySync()[0][4][4][0] - a[4][4][0]) < 1e-3, JSON.stringify(p));
    y.dispose();
  }
  const r = shiftScaleRotate(x, [{ angle: 90, scale: 1, dx: 0, dy: 0 }]).arraySync()[0];
  for (let i = 0; i < 9; i++) {
    for (let j = 0; j < 9; j++) assert.ok(Math.abs(r[i][j][0] - a[j][8 - i][0]) < 1e-3, `(${i},${j})`);
  }
  x.dispose();
});

Deno.test("shift uses BORDER_REFLECT_101 at the edge", () => {
  assert.deepEqual([-3, -2, -1, 0, 1, 4, 5, 6, 7].map((i) => reflect101(i, 5)), [3, 2, 1, 0, 1, 4, 3, 2, 1]);
  assert.equal(reflect101(-4, 1), 0);
  const row = [10, 20, 30, 40, 50];
  const x = tf.tensor4d([...row, ...row], [1, 2, 5, 1]);
  // shift right by exactly one pixel: out[x] = in[x - 1]; out[0] = in[-1] -> reflect101 -> in[1]
  const y = shiftScaleRotate(x, [{ angle: 0, scale: 1, dx: 1 / 5, dy: 0 }]);
  const got = Array.from(y.dataSync().slice(0, 5)).map((v) => Math.round(v * 1000) / 1000);
  assert.deepEqual(got, [20, 10, 20, 30, 40]);
  tf.dispose([x, y]);
});

Deno.test("color jitter: factor 1 is the identity, brightness clips, contrast follows torchvision", () => {
  const x = batch(2, 4, 4, 3);
  const id = colorJitter(
    x,
    [0, 1].map(() => ({ brightness: 1, contrast: 1, saturation: 1, order: [0, 1, 2, 3] })),
  );
  assert.equal(maxAbsDiff(id, x), 0);
  const c = tf.tensor4d([0, 100, 200, 250], [1, 2, 2, 1]);
  const b = colorJitter(c, [{ brightness: 1.2, contrast: 1, saturation: 1, order: [3, 2, 1, 0] }]);
  Array.from(b.dataSync()).forEach((v, i) => assert.ok(Math.abs(v - [0, 120, 240, 255][i]) < 1e-4));
  const k = colorJitter(c, [{ brightness: 1, contrast: 0.5, saturation: 1, order: [1, 0, 2, 3] }]);
  // mean 137.5: x*0.5 + 137.5*0.5
  Array.from(k.dataSync()).forEach((v, i) =>
    assert.ok(Math.abs(v - [68.75, 118.75, 168.75, 193.75][i]) < 1e-4)
  );
  // saturation is a no-op on gray images expanded to 3 channels
  const g = toChannels(c, 3);
  const s = colorJitter(g, [{ brightness: 1, contrast: 1, saturation: 0.8, order: [2, 0, 1, 3] }]);
  assert.ok(maxAbsDiff(s, g) < 1e-4);
  tf.dispose([x, id, c, b, k, g, s]);
});

Deno.test("normalize: ImageNet statistics per channel and dataset statistics give mean 0, std 1", () => {
  const x = tf.tidy(() => tf.mul(tf.ones([1, 2, 2, 3]), tf.tensor1d(IMAGENET_MEAN.map((m) => m * 255))));
  const y = normalize(x as tf.Tensor4D, IMAGENET_MEAN, IMAGENET_STD);
  assert.ok(maxAbsDiff(y, tf.zerosLike(y)) < 1e-5);
  const z = tf.tidy(() => normalize(tf.fill([1, 1, 1, 3], 255) as tf.Tensor4D, IMAGENET_MEAN, IMAGENET_STD));
  Array.from(z.dataSync()).forEach((v, i) =>
    assert.ok(Math.abs(v - (1 - IMAGENET_MEAN[i]) / IMAGENET_STD[i]) < 1e-5)
  );
  const d = batch(4, 8, 8, 1, 3);
  const data = Array.from(d.dataSync());
  const mean = data.reduce((s, v) => s + v, 0) / data.length;
  const sd = Math.sqrt(data.reduce((s, v) => s + (v - mean) ** 2, 0) / data.length);
  const n = normalize(d, [mean / 255], [sd / 255]);
  const m = tf.moments(n);
  assert.ok(Math.abs(m.mean.dataSync()[0]) < 1e-4);
  assert.ok(Math.abs(Math.sqrt(m.variance.dataSync()[0]) - 1) < 1e-4);
  assert.throws(() => normalize(d, [0.1, 0.2], [1, 1]), /mean has 2 values for 1 channels/);
  tf.dispose([x, y, z, d, n, m.mean, m.variance]);
});

Deno.test("resize matches OpenCV INTER_LINEAR on a known case and keeps constant images", () => {
  // cv2.resize([[0, 100]], (4, 1), INTER_LINEAR) = [0, 25, 75, 100] (half-pixel centres, clamped edges)
  const x = tf.tensor4d([0, 100], [1, 1, 2, 1]);
  const y = resize(x, [1, 4]);
  assert.deepEqual(Array.from(y.dataSync()), [0, 25, 75, 100]);
  tf.dispose([x, y]);
});

Deno.test("makeTransforms: shapes, channels, determinism under a seed, eval is resize+normalize, no leaks", () => {
  const x = batch(4, 12, 12, 1);
  const before = tf.memory().numTensors;
  const opts = {
    size: [16, 16] as [number, number],
    channels: 3 as const,
    mean: IMAGENET_MEAN,
    std: IMAGENET_STD,
  };
  const tr = makeTransforms({ ...opts, train: true, seed: 5 });
  const a = tr(x, [0, 0]);
  assert.deepEqual(a.shape, [4, 16, 16, 3]);
  const b = makeTransforms({ ...opts, train: true, seed: 5 })(x, [0, 0]);
  assert.equal(maxAbsDiff(a, b), 0, "same seed and key -> same output");
  const c = tr(x, [0, 1]);
  assert.ok(maxAbsDiff(a, c) > 1, "another key -> another augmentation");
  const d = makeTransforms({ ...opts, train: true, seed: 6 })(x, [0, 0]);
  assert.ok(maxAbsDiff(a, d) > 1, "another seed -> another augmentation");
  // without a key: one continuing stream, reproducible from the seed
  const s1 = makeTransforms({ ...opts, train: true, seed: 9 });
  const s2 = makeTransforms({ ...opts, train: true, seed: 9 });
  const [p1, q1, p2, q2] = [s1(x), s1(x), s2(x), s2(x)];
  assert.equal(maxAbsDiff(p1, p2), 0);
  assert.equal(maxAbsDiff(q1, q2), 0);
  assert.ok(maxAbsDiff(p1, q1) > 1);
  // eval: equals resize + expand + normalize
  const ev = makeTransforms({ ...opts, train: false })(x);
  const ref = tf.tidy(() => normalize(toChannels(resize(x, [16, 16]), 3), IMAGENET_MEAN, IMAGENET_STD));
  assert.equal(maxAbsDiff(ev, ref), 0);
  const ev1 = makeTransforms({ size: [12, 12], channels: 1, mean: [0.5], std: [0.5], train: false })(x);
  assert.deepEqual(ev1.shape, [4, 12, 12, 1]);
  assert.ok(Math.abs(ev1.dataSync()[0] - (x.dataSync()[0] / 255 - 0.5) / 0.5) < 1e-6);
  tf.dispose([a, b, c, d, p1, q1, p2, q2, ev, ref, ev1]);
  assert.equal(tf.memory().numTensors, before, "transforms leaked tensors");
  x.dispose();
});

Deno.test("training augmentation stays in range and changes about the expected share of images", () => {
  const x = batch(64, 10, 10, 1, 11);
  const tr = makeTransforms({ size: [10, 10], channels: 1, mean: [0], std: [1], train: true, seed: 1 });
  const y = tr(x, [3, 4]);
  const v = y.dataSync();
  assert.ok(v.every((p) => p >= -1e-4 && p <= 1 + 1e-4));
  const xv = x.dataSync();
  let changed = 0;
  for (let i = 0; i < 64; i++) {
    let diff = 0;
    for (let j = i * 100; j < (i + 1) * 100; j++) diff = Math.max(diff, Math.abs(xv[j] / 255 - v[j]));
    if (diff > 1e-3) changed++;
  }
  // P(untouched) = 0.5^3 = 1/8 -> about 56 of 64 changed
  assert.ok(changed > 40 && changed < 64, `changed ${changed}`);
  tf.dispose([x, y]);
});

Deno.test("hue jitter is refused rather than silently ignored", () => {
  assert.throws(
    () =>
      makeTransforms({ size: [4, 4], channels: 3, mean: [0], std: [1], train: true, augment: { hue: 0.2 } }),
    /hue is not implemented/,
  );
});

Deno.test("resize and flip agree with tfjs' own kernels", () => {
  const x = batch(2, 7, 5, 3, 21);
  for (const size of [[16, 11], [3, 4], [7, 5], [14, 10]] as [number, number][]) {
    const ours = resize(x, size);
    const ref = tf.image.resizeBilinear(x, size, false, true);
    assert.ok(maxAbsDiff(ours, ref) < 1e-3, `resize to ${size}`);
    tf.dispose([ours, ref]);
  }
  const f = horizontalFlip(x, [true, true]);
  const r = tf.reverse(x, 2);
  assert.equal(maxAbsDiff(f, r), 0);
  tf.dispose([x, f, r]);
});

// ---- crops, random erasing, TTA views -------------------------------------------------------------------

/** A [1,h,w,1] image holding 0, 1, 2, ... row by row. */
function arange(h: number, w: number): tf.Tensor4D {
  return tf.tensor4d(Array.from({ length: h * w }, (_, i) => i), [1, h, w, 1]);
}

Deno.test("the study's training pipeline draws exactly as before crops and erasing existed", () => {
  // fingerprint of makeTransforms(train, seed 42, key [3, 7]) computed with the code of main before this change
  const r = mulberry32(1);
  const x = tf.tensor4d(Array.from({ length: 8 * 12 * 12 }, () => Math.floor(r() * 256)), [8, 12, 12, 1]);
  const t = makeTransforms({ size: [12, 12], channels: 1, mean: [0.5], std: [0.5], train: true, seed: 42 });
  const y = t(x, [3, 7]);
  const v = y.dataSync();
  let h = 0;
  for (let i = 0; i < v.length; i++) h = (h * 31 + Math.round(v[i] * 1e5)) % 1000000007;
  assert.equal(h, -66862577);
  assert.equal(v[5], 0.23971234261989594);
  tf.dispose([x, y]);
});

Deno.test("cropPixels: exact pixels, per-image offsets, mirrored crops; out-of-image crops are refused", () => {
  const img = { data: Float32Array.from({ length: 2 * 4 * 5 }, (_, i) => i), b: 2, h: 4, w: 5, c: 1 };
  const out = cropPixels(img, 2, 3, [1, 2], [2, 0], [false, true]);
  // image 0 rows 1-2, columns 2-4: [7 8 9 / 12 13 14]; image 1 (offset 20) rows 2-3, columns 0-2, mirrored
  assert.deepEqual(Array.from(out.data), [7, 8, 9, 12, 13, 14, 32, 31, 30, 37, 36, 35]);
  assert.throws(() => cropPixels(img, 2, 3, [3, 0], [0, 0]), /outside a 4x5 image/);
});

Deno.test("ttaViews: torchvision's five_crop / ten_crop pixels on a 3×3 image", () => {
  const x = arange(3, 3); // 0 1 2 / 3 4 5 / 6 7 8
  const pix = (mode: "none" | "hflip" | "5crop" | "10crop") =>
    ttaViews(mode, 3, 2).map((v) => {
      const t = makeTransforms({
        size: [2, 2],
        channels: 1,
        mean: [0],
        std: [1 / 255],
        train: false,
        cropFrom: 3,
        view: v,
      });
      const y = t(x);
      const out = Array.from(y.dataSync());
      y.dispose();
      return out;
    });
  // five_crop: tl, tr, bl, br, centre (offset round(0.5) = 0)
  const five = [[0, 1, 3, 4], [1, 2, 4, 5], [3, 4, 6, 7], [4, 5, 7, 8], [0, 1, 3, 4]];
  // ten_crop's second half: five_crop of the mirrored image 2 1 0 / 5 4 3 / 8 7 6
  const mirrored = [[2, 1, 5, 4], [1, 0, 4, 3], [5, 4, 8, 7], [4, 3, 7, 6], [2, 1, 5, 4]];
  assert.deepEqual(pix("5crop"), five);
  assert.deepEqual(pix("10crop"), [...five, ...mirrored]);
  assert.deepEqual(pix("none"), [five[4]]);
  assert.deepEqual(pix("hflip"), [five[4], mirrored[4]]);
  assert.throws(() => ttaViews("5crop", 48, 48), /needs crops smaller than the image/);
  assert.deepEqual(ttaViews("hflip", 48, 48), [{ top: 0, left: 0, flip: false }, {
    top: 0,
    left: 0,
    flip: true,
  }]);
  x.dispose();
});

Deno.test("crop pipeline: eval is the centre crop, training crops stay inside and follow (seed, key)", () => {
  const x = tf.concat([arange(6, 6), tf.add(arange(6, 6), 100) as tf.Tensor4D]) as tf.Tensor4D;
  const base = {
    size: [4, 4] as [number, number],
    channels: 1 as const,
    mean: [0],
    std: [1 / 255],
    cropFrom: 6,
  };
  const ev = makeTransforms({ ...base, train: false })(x);
  assert.deepEqual(Array.from(ev.dataSync()).slice(0, 16), [
    7,
    8,
    9,
    10,
    13,
    14,
    15,
    16,
    19,
    20,
    21,
    22,
    25,
    26,
    27,
    28,
  ]);
  const off = { hflipP: 0, ssrP: 0, jitterP: 0 };
  const tr = makeTransforms({ ...base, train: true, seed: 3, augment: off });
  const seen = new Set<string>();
  for (let k = 0; k < 20; k++) {
    const y = tr(x, [0, k]);
    const v = y.dataSync();
    for (let n = 0; n < 2; n++) {
      // a crop of arange(6, 6) is identified by its first pixel: top * 6 + left, with top, left in 0..2
      const first = v[n * 16] - 100 * n;
      const top = Math.floor(first / 6);
      const left = first % 6;
      assert.ok(top <= 2 && left <= 2, `crop at (${top}, ${left})`);
      for (let i = 0; i < 4; i++) {
        for (let j = 0; j < 4; j++) assert.equal(v[n * 16 + i * 4 + j], 100 * n + (top + i) * 6 + left + j);
      }
      seen.add(`${top},${left}`);
    }
    y.dispose();
  }
  assert.equal(seen.size, 9, "all nine offsets of a 4-crop from 6 occur");
  const a = tr(x, [1, 2]);
  const b = makeTransforms({ ...base, train: true, seed: 3, augment: off })(x, [1, 2]);
  assert.equal(maxAbsDiff(a, b), 0);
  tf.dispose([x, ev, a, b]);
});

Deno.test("random erasing: torchvision's rectangle draw, exact fill, p 0 and impossible areas erase nothing", () => {
  const seq = (vals: number[]) => {
    let i = 0;
    return () => vals[i++];
  };
  const e = {
    ...ERASING_DEFAULTS,
    p: 1,
    scale: [0.1, 0.3] as [number, number],
    ratio: [1, 1] as [number, number],
  };
  // area 100 * 0.2 = 20, aspect 1 -> 4×4 (round(sqrt(20)) = 4); top = floor(0.5 * 7) = 3, left = floor(0.99 * 7) = 6
  assert.deepEqual(drawErasing(seq([0, 0.5, 0.5, 0.5, 0.99]), 10, 10, e), { top: 3, left: 6, h: 4, w: 4 });
  // aspect exp(log 0.25 + (log 4 - log 0.25) * 0.9999999) ≈ 4: area 20 -> sqrt(80) ≈ 8.9 -> 9 rows, 2 columns
  const e2 = { ...e, scale: [0.2, 0.2] as [number, number], ratio: [0.25, 4] as [number, number] };
  assert.deepEqual(drawErasing(seq([0, 0, 0.9999999, 0, 0]), 10, 10, e2), { top: 0, left: 0, h: 9, w: 2 });
  assert.equal(drawErasing(mulberry32(1), 10, 10, { ...e, p: 0 }), null);
  assert.equal(
    drawErasing(mulberry32(1), 10, 10, { ...e, scale: [0.99, 0.99] }),
    null,
    "never fits -> no erase",
  );
  const img = { data: new Float32Array(2 * 3 * 4).fill(1), b: 2, h: 3, w: 4, c: 1 };
  erasePixels(img, [{ top: 1, left: 1, h: 2, w: 2 }, null], -5);
  assert.deepEqual(Array.from(img.data.slice(0, 12)), [1, 1, 1, 1, 1, -5, -5, 1, 1, -5, -5, 1]);
  assert.ok(img.data.slice(12).every((v) => v === 1));
});

Deno.test("erasing in the training pipeline writes the value after Normalize; the other pixels are untouched", () => {
  const x = tf.fill([16, 8, 8, 1], 200) as tf.Tensor4D;
  const off = { hflipP: 0, ssrP: 0, jitterP: 0 };
  const t = makeTransforms({
    size: [8, 8],
    channels: 1,
    mean: [0.5],
    std: [0.5],
    train: true,
    seed: 1,
    augment: off,
    erasing: { p: 1, value: 0 },
  });
  const y = t(x, [0, 0]);
  const v = y.dataSync();
  const normal = (200 / 255 - 0.5) / 0.5;
  let erasedImages = 0;
  for (let n = 0; n < 16; n++) {
    const img = Array.from(v.slice(n * 64, (n + 1) * 64));
    assert.ok(img.every((p) => p === 0 || Math.abs(p - normal) < 1e-6));
    if (img.some((p) => p === 0)) erasedImages++;
  }
  assert.ok(erasedImages >= 14, `p = 1 erased ${erasedImages} of 16 (a draw may fail all 10 attempts)`);
  tf.dispose([x, y]);
});
