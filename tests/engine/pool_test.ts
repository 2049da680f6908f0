/**
 * The native backend's buffer pool (lib/engine/pool.ts): its bookkeeping, that arrays user code holds are never
 * recycled, and that recycled (stale) outputs change no result: training steps and inference of the bench nets
 * and EfficientNet with every reused array poisoned with NaN give bit-for-bit the results of unpooled runs.
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import type * as tfl from "@tensorflow/tfjs-layers";
import { BufferPool, MIN_POOLED } from "../../lib/engine/pool.ts";
import { NATIVE as NATIVE_NAME, type NativeBackend } from "../../lib/engine/native.ts";
import { convnextNet, crossEntropy, referenceNet } from "../../lib/bench/nets.ts";
import { createModel } from "../../lib/models/registry.ts";
import { AdamW, SGD } from "../../lib/train/optim.ts";
import { assertBitsEqual, NATIVE, rand } from "./helpers.ts";

const ignore = !NATIVE.ok;
const N = MIN_POOLED * 2;

Deno.test("BufferPool: a released array is reused; escaped, shared and small ones never are", () => {
  const pool = new BufferPool(1 << 30);
  const a = pool.take(N);
  pool.held(a);
  pool.release(a);
  assert.strictEqual(pool.take(N), a, "released array reused");
  assert.deepStrictEqual(pool.idleBytes, 0);

  const b = pool.take(N);
  pool.held(b);
  pool.escape(b); // read by user code
  pool.release(b);
  assert.notStrictEqual(pool.take(N), b, "escaped array not reused");

  const c = pool.take(N);
  pool.held(c);
  pool.held(c); // a second tensor holds the same array
  pool.release(c);
  assert.notStrictEqual(pool.take(N), c, "shared array not reused");

  const user = new Float32Array(N); // never handed out by the pool
  pool.held(user);
  pool.release(user);
  assert.deepStrictEqual(pool.idleBytes, 0);

  const small = pool.take(8);
  pool.held(small);
  pool.release(small);
  assert.notStrictEqual(pool.take(8), small, "small arrays are not pooled");
});

Deno.test("BufferPool: the cap bounds idle bytes, 0 disables pooling, zeros() clears, poison fills NaN", () => {
  const pool = new BufferPool(N * 4); // room for one array of N floats
  const [a, b] = [pool.take(N), pool.take(N)];
  for (const x of [a, b]) pool.held(x);
  pool.release(a);
  pool.release(b); // over the cap: the older one, a, is evicted
  assert.deepStrictEqual(pool.idleBytes, N * 4);
  assert.deepStrictEqual(pool.stats.evicted, 1);
  assert.strictEqual(pool.take(N), b);
  assert.notStrictEqual(pool.take(N), a);

  // eviction takes the least recently released length first
  const lru = new BufferPool(N * 4 * 3); // room for three arrays of N floats
  const [p, q, r] = [lru.take(N), lru.take(2 * N), lru.take(N)];
  for (const x of [p, q, r]) lru.held(x);
  lru.release(p); // length N, then 2N, then N again: N is now the most recent length
  lru.release(q);
  lru.release(r); // 4N floats idle: the 2N array goes, both N arrays stay
  assert.deepStrictEqual(lru.idleBytes, N * 4 * 2);
  assert.notStrictEqual(lru.take(2 * N), q);
  assert.deepStrictEqual(new Set([lru.take(N), lru.take(N)]), new Set([p, r]));

  // a length emptied by take() is not left behind for eviction to trip over
  const small = new BufferPool(N * 4 * 2); // room for one array of 2N floats
  const [e1, e2, e3] = [small.take(N), small.take(2 * N), small.take(2 * N)];
  for (const t of [e1, e2, e3]) small.held(t);
  small.release(e1);
  assert.strictEqual(small.take(N), e1); // length N now has no idle array
  small.release(e2);
  small.release(e3); // over the cap: e2 is evicted
  assert.deepStrictEqual(small.idleBytes, N * 4 * 2);
  assert.strictEqual(small.take(2 * N), e3);

  const off = new BufferPool(0);
  const x = off.take(N);
  off.held(x);
  off.release(x);
  assert.notStrictEqual(off.take(N), x);

  const z = pool.take(N).fill(3);
  pool.held(z);
  pool.release(z);
  const z2 = pool.zeros(N);
  assert.strictEqual(z2, z);
  assert.ok(z2.every((v) => v === 0));

  pool.poison = true;
  pool.recycle(z2);
  assert.ok(pool.take(N).every(Number.isNaN));
});

Deno.test(
  { name: "native pool: data read by user code and user arrays are never recycled", ignore },
  async () => {
    await tf.setBackend(NATIVE_NAME);
    const backend = tf.backend() as NativeBackend;
    const saved = { cap: backend.pool.capBytes, poison: backend.pool.poison };
    backend.pool.capBytes = 1 << 30;
    backend.pool.poison = true;
    try {
      const x = tf.tensor(rand(N, 1), [N]);
      const y = tf.relu(x); // pooled output
      const read = y.dataSync();
      const copy = Float32Array.from(read);
      y.dispose();
      const userArray = rand(N, 2);
      const u = tf.tensor(userArray, [N]);
      const userCopy = Float32Array.from(userArray);
      u.dispose();
      // Many outputs of the same length: any recycled array would be poisoned, then overwritten.
      for (let i = 0; i < 8; i++) {
        tf.tidy(() => {
          tf.add(tf.relu(tf.neg(x)), 1);
        });
      }
      assert.deepStrictEqual(read, copy, "dataSync() result unchanged after dispose and later ops");
      assert.deepStrictEqual(userArray, userCopy, "user array unchanged after dispose and later ops");
      x.dispose();
      assert.ok(backend.pool.stats.reused > 0, "the pool reused arrays at all");
    } finally {
      backend.pool.capBytes = saved.cap;
      backend.pool.poison = saved.poison;
    }
  },
);

/** Losses of `steps` AdamW steps and the final weights and inference logits, on the native backend. */
async function trainAndInfer(
  model: tfl.LayersModel,
  init: tf.Tensor[],
  steps: number,
): Promise<{ losses: number[]; weights: Float32Array[]; logits: Float32Array }> {
  model.setWeights(init);
  const shape = model.inputs[0].shape.slice(1) as number[];
  const batch = 4;
  const x = tf.tensor(rand(batch * shape.reduce((p, q) => p * q, 1), 7), [batch, ...shape]);
  const y = tf.tensor1d([0, 3, 5, 6], "int32");
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const opt = new AdamW(vars, { lr: 1e-3 });
  const losses: number[] = [];
  for (let s = 0; s < steps; s++) {
    const { value, grads } = tf.variableGrads(
      () => crossEntropy(model.apply(x, { training: true }) as tf.Tensor, y),
      vars,
    );
    losses.push((await value.data())[0]);
    opt.step(grads);
    tf.dispose([value, ...Object.values(grads)]);
  }
  const logits = tf.tidy(() => (model.predict(x) as tf.Tensor).dataSync() as Float32Array);
  const weights = model.getWeights().map((w) => Float32Array.from(w.dataSync()));
  opt.dispose();
  tf.dispose([x, y]);
  return { losses, weights, logits };
}

const NETS: [string, () => tfl.LayersModel][] = [
  ["reference net (conv, batch norm, ReLU, max pool)", () => referenceNet()],
  ["ConvNeXt-style net (depthwise, layer norm, GELU)", () => convnextNet()],
  [
    "EfficientNet-B3 @32 (SiLU, squeeze-excite, padding)",
    () => createModel("efficientnet_b3", { inputShape: [32, 32, 3], numClasses: 7 }),
  ],
];

for (const [name, make] of NETS) {
  Deno.test(
    { name: `native pool: ${name} — poisoned reuse gives the unpooled results bit for bit`, ignore },
    async () => {
      await tf.setBackend(NATIVE_NAME);
      const backend = tf.backend() as NativeBackend;
      const saved = { cap: backend.pool.capBytes, poison: backend.pool.poison };
      const model = make();
      const init = model.getWeights().map((w) => w.clone());
      try {
        backend.pool.capBytes = 0;
        backend.pool.clear();
        const plain = await trainAndInfer(model, init, 3);
        backend.pool.capBytes = 1 << 30;
        backend.pool.poison = true;
        const before = backend.pool.stats.reused;
        const pooled = await trainAndInfer(model, init, 3);
        assert.ok(backend.pool.stats.reused > before, "arrays were reused");
        assert.deepStrictEqual(pooled.losses, plain.losses);
        assert.ok(plain.losses.every(Number.isFinite));
        assertBitsEqual(pooled.logits, plain.logits, "logits");
        pooled.weights.forEach((w, i) => assertBitsEqual(w, plain.weights[i], `weight ${i}`));
      } finally {
        backend.pool.capBytes = saved.cap;
        backend.pool.poison = saved.poison;
        backend.pool.clear();
        tf.dispose(init);
        model.dispose();
      }
    },
  );
}

Deno.test(
  {
    name: "native pool: AdamW and SGD read gradients and weights in place and write into pooled arrays",
    ignore,
  },
  async () => {
    await tf.setBackend(NATIVE_NAME);
    const backend = tf.backend() as NativeBackend;
    const saved = { cap: backend.pool.capBytes, poison: backend.pool.poison };
    const run = (make: (v: tf.Variable[]) => AdamW | SGD) => {
      const w = tf.variable(tf.tensor(rand(N, 11), [N]), true, `pool_opt_w_${Math.random()}`);
      const opt = make([w]);
      const escaped = backend.pool.stats.escaped;
      const fresh = backend.pool.stats.fresh;
      for (let s = 0; s < 4; s++) {
        const g = tf.tidy(() => tf.mul(tf.tensor(rand(N, 20 + s), [N]), 1)); // a pooled gradient
        opt.step({ [w.name]: g });
        g.dispose();
      }
      const stats = {
        escaped: backend.pool.stats.escaped - escaped,
        fresh: backend.pool.stats.fresh - fresh,
      };
      const out = Float32Array.from(w.dataSync());
      w.dispose();
      opt.dispose();
      return { out, stats };
    };
    const adamw = (v: tf.Variable[]) => new AdamW(v, { lr: 1e-2, weightDecay: 0.1 });
    const sgd = (v: tf.Variable[]) =>
      new SGD(v, { lr: 0.1, momentum: 0.9, nesterov: true, weightDecay: 5e-4 });
    try {
      for (const [name, make] of [["AdamW", adamw], ["SGD", sgd]] as const) {
        backend.pool.capBytes = 0;
        backend.pool.clear();
        const plain = run(make);
        backend.pool.capBytes = 1 << 30;
        backend.pool.poison = true;
        const pooled = run(make);
        assertBitsEqual(pooled.out, plain.out, `${name}: pooled and unpooled updates`);
        assert.equal(pooled.stats.escaped, 0, `${name}: no gradient or weight array escaped the pool`);
        // 4 gradients and 4 updated weights of N floats: after the first step each comes back from the pool
        assert.ok(pooled.stats.fresh <= 4, `${name}: ${pooled.stats.fresh} fresh arrays in 4 steps`);
        backend.pool.poison = false;
      }
    } finally {
      backend.pool.capBytes = saved.cap;
      backend.pool.poison = saved.poison;
      backend.pool.clear();
    }
  },
);
