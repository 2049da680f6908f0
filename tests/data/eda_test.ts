import assert from "node:assert/strict";
import type { Split } from "../../lib/data/dataset.ts";
import {
  brightnessByClass,
  classCountRows,
  duplicateGroups,
  pixelsByClass,
  pixelStats,
  randomSamples,
  samplesPerClass,
} from "../../lib/data/eda.ts";

/** 6 images of 2×2 pixels: image i has all pixels 10*i, except images 4 and 5 duplicate image 1. */
function toy(): Split {
  const vals = [0, 10, 20, 30, 10, 10];
  return {
    name: "train",
    classes: ["a", "b"],
    paths: vals.map((_, i) => `p${i}`),
    labels: Int32Array.from([0, 0, 1, 1, 1, 0]),
    images: Uint8Array.from(vals.flatMap((v) => [v, v, v, v])),
    height: 2,
    width: 2,
    channels: 1,
  };
}

Deno.test("classCountRows: one row per split and class", () => {
  assert.deepEqual(classCountRows([toy()]), [
    { split: "train", class: "a", count: 3 },
    { split: "train", class: "b", count: 3 },
  ]);
});

Deno.test("samples: seeded, right pixels and labels, per class", () => {
  const s = toy();
  const r = randomSamples(s, 3, 7);
  assert.equal(r.length, 3);
  assert.deepEqual(randomSamples(s, 3, 7).map((x) => x.pixels[0]), r.map((x) => x.pixels[0]));
  for (const x of r) assert.equal(x.pixels.length, 4);
  const pc = samplesPerClass(s, 2, 1);
  assert.deepEqual(pc.map((x) => x.label), ["a", "a", "b", "b"]);
  // every sampled image's pixels belong to an image of that class
  const byClass = { a: [0, 10], b: [20, 30, 10] } as Record<string, number[]>;
  for (const x of pc) assert.ok(byClass[x.label].includes(x.pixels[0]));
});

Deno.test("pixel statistics", () => {
  const s = toy();
  const st = pixelStats(s);
  const vals = [0, 10, 20, 30, 10, 10];
  const m = vals.reduce((a, b) => a + b) / 6;
  const sd = Math.sqrt(vals.reduce((a, b) => a + (b - m) ** 2, 0) / 6);
  assert.ok(Math.abs(st.mean - m / 255) < 1e-12);
  assert.ok(Math.abs(st.std - sd / 255) < 1e-12);
  const b = brightnessByClass(s);
  assert.deepEqual(b.map((r) => r.mean), [20 / 3, 20]);
  assert.equal(pixelsByClass(s).a.length, 12);
});

Deno.test("duplicateGroups finds byte-identical images", () => {
  assert.deepEqual(duplicateGroups(toy()), [[1, 4, 5]]);
});
