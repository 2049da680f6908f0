/** Shared helpers for the model tests. */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import type { LayersModel } from "@tensorflow/tfjs-layers";
import type { NameMapEntry } from "../../lib/models/weights/convert.ts";
import { torchToTf } from "../../lib/models/weights/convert.ts";
import { loadStateDict, readSafetensors, toFloat32 } from "../../lib/models/weights/index.ts";

const FIXTURES = new URL("../fixtures/models/", import.meta.url).pathname;

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

/** Logit tolerance against torch (float32 on both sides, logits of order 1; observed max error < 1e-6). */
export const TWIN_TOL = 1e-5;

/** What {@link torchTwin} measured. */
export type TwinCheck = { loaded: string[]; keys: string[]; err: number };

/**
 * A reduced model against its PyTorch twin (tests/fixtures/models/): builds, with zero init, the model of the
 * config in `<fixture>.safetensors`' metadata for the input of `<fixture>_io.safetensors`, loads the state dict
 * strictly through `nameMap` (every key and variable used) and returns the keys loaded, the state dict's keys
 * and the largest |logit difference| against the twin's eval-mode logits. The model is disposed.
 */
export async function torchTwin<C>(
  fixture: string,
  build: (
    cfg: C,
    opts: { numClasses: number; inputShape: [number, number, number]; init: "zeros" },
  ) => LayersModel,
  nameMap: (model: LayersModel) => NameMapEntry[],
): Promise<TwinCheck> {
  const sd = await readSafetensors(`${FIXTURES}${fixture}.safetensors`);
  const io = await readSafetensors(`${FIXTURES}${fixture}_io.safetensors`);
  const x = io.tensors.get("input")!;
  const [n, c, h, w] = x.shape;
  const model = build(JSON.parse(sd.metadata!.config) as C, {
    numClasses: 7,
    inputShape: [h, w, c],
    init: "zeros",
  });
  try {
    const report = loadStateDict(model, sd, nameMap(model));
    const got = tf.tidy(() => {
      const input = tf.tensor(nchwToNhwc(toFloat32(x), [n, c, h, w]), [n, h, w, c]);
      return (model.predict(input) as tf.Tensor).dataSync() as Float32Array;
    });
    const err = maxAbsDiff(got, toFloat32(io.tensors.get("logits")!));
    return { loaded: report.loaded, keys: [...sd.tensors.keys()], err };
  } finally {
    model.dispose();
  }
}
