/** Shared helpers for the model tests. */
import assert from "node:assert/strict";
import type { NameMapEntry } from "../../lib/models/weights/convert.ts";
import { torchToTf } from "../../lib/models/weights/convert.ts";

/** NCHW -> NHWC copy. */
export function nchwToNhwc(src: Float32Array, [n, c, h, w]: number[]): Float32Array {
  const out = new Float32Array(src.length);
  for (let b = 0; b < n; b++) {
    for (let ch = 0; ch < c; ch++) {
      for (let y = 0; y < h; y++) {
        for (let x = 0; x < w; x++) out[((b * h + y) * w + x) * c + ch] = src[((b * c + ch) * h + y) * w + x];
      }
    }
  }
  return out;
}

/** Largest absolute elementwise difference. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, "length mismatch");
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return Number.isNaN(m) ? Infinity : m;
}

/**
 * Checks that a name map covers exactly the given timm keys (minus num_batches_tracked) and that each torch
 * shape converts to the mapped variable's shape.
 */
export function compareNameMapToKeys(map: NameMapEntry[], keys: [string, number[]][]): void {
  const want = new Map(keys.filter(([k]) => !k.endsWith("num_batches_tracked")));
  const got = new Map(map.map((e) => [e.torchName, e]));
  const missing = [...want.keys()].filter((k) => !got.has(k));
  const extra = [...got.keys()].filter((k) => !want.has(k));
  assert.deepEqual({ missing, extra }, { missing: [], extra: [] });
  for (const [k, shape] of want) {
    const e = got.get(k)!;
    const v = e.variable as { shape: number[] };
    const numel = shape.reduce((a, b) => a * b, 1);
    const conv = torchToTf(k, { shape, values: new Float32Array(numel) }, e.kind, v.shape);
    assert.deepEqual(conv.shape, v.shape, `${k}: torch ${shape} -> ${conv.shape} vs ${v.shape}`);
  }
}
