import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import assert from "node:assert/strict";
import {
  colorJitter,
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
