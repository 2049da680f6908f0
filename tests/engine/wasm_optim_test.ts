/**
 * lib/engine/wasm/optim.ts: the committed module is `optim.wat` compiled, and AdamW and SGD on WebAssembly SIMD
 * give bit for bit the JS loops' weights and state — over several steps, odd sizes (SIMD tails), extreme values,
 * and a state exported and imported in between.
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import { OPTIM_WASM_BASE64, WasmOptimState } from "../../lib/engine/wasm/optim.ts";
import { AdamW, SGD } from "../../lib/train/optim.ts";
import { assertBitsEqual, compiledWat, rand } from "./helpers.ts";

Deno.test("wasm optimizers: the committed bytes are optim.wat compiled with wabt", async () => {
  assert.equal(await compiledWat("optim.wat"), OPTIM_WASM_BASE64);
});

Deno.test("wasm optimizers: available here (Deno's V8 has WebAssembly SIMD)", () => {
  assert.ok(WasmOptimState.create([5, 8], 2) !== null);
});

Deno.test("wasm AdamW: bit for bit the JS loop over steps, odd sizes, extreme values and a state round trip", async () => {
  await tf.setBackend("cpu");
  const shapes = [[3, 3, 2, 5], [7], [1], [64, 33], [4]];
  const make = (tag: string) =>
    shapes.map((s, i) => {
      const n = s.reduce((p, q) => p * q, 1);
      const vals = rand(n, 10 + i);
      if (i === 3) vals.set([0, -0, 1e-30, -1e30, 3e38, 1e-45], 0); // zeros, subnormal, huge
      return tf.variable(tf.tensor(vals, s), true, `wasm_optim_adamw_${tag}_${i}`);
    });
  const [a, b] = [make("simd"), make("js")];
  const simd = new AdamW(a, { lr: 3e-3, weightDecay: 0.05 });
  const js = new AdamW(b, { lr: 3e-3, weightDecay: 0.05, simd: false });
  const grads = (vars: tf.Variable[], step: number) =>
    Object.fromEntries(vars.map((v, i) => {
      const g = rand(v.size, 100 * step + i);
      if (i === 3 && step === 1) g.set([0, 1e-20, -5e3, 1e-40], 0);
      return [v.name, tf.tensor(g, v.shape)];
    }));
  for (let step = 1; step <= 5; step++) {
    if (step === 3) { // export and re-import the state, as a resume does
      const st = simd.exportState();
      simd.importState(st);
      simd.lr = js.lr = 1e-3; // a scheduler changes the rate
    }
    const [ga, gb] = [grads(a, step), grads(b, step)];
    // same gradient values under the other set's names
    simd.step(ga);
    js.step(gb);
    tf.dispose([...Object.values(ga), ...Object.values(gb)]);
  }
  a.forEach((v, i) =>
    assertBitsEqual(v.dataSync() as Float32Array, b[i].dataSync() as Float32Array, `w${i}`)
  );
  const [sa, sb] = [simd.exportState(), js.exportState()];
  a.forEach((v, i) => {
    assertBitsEqual(sa.m[v.name], sb.m[b[i].name], `m${i}`);
    assertBitsEqual(sa.v[v.name], sb.v[b[i].name], `v${i}`);
  });
  simd.dispose();
  js.dispose();
  tf.dispose([...a, ...b]);
});

Deno.test("wasm SGD: bit for bit the JS loop (Nesterov and plain momentum, weight decay), with a resume", async () => {
  await tf.setBackend("cpu");
  for (const nesterov of [true, false]) {
    const shapes = [[3, 3, 1, 6], [9], [2], [33, 5]];
    const make = (tag: string) =>
      shapes.map((s, i) => {
        const vals = rand(s.reduce((p, q) => p * q, 1), 40 + i);
        if (i === 3) vals.set([0, -0, 1e-30, -1e30, 3e38, 1e-45], 0);
        return tf.variable(tf.tensor(vals, s), true, `wasm_sgd_${tag}_${nesterov}_${i}`);
      });
    const [a, b] = [make("simd"), make("js")];
    const opts = { lr: 0.05, momentum: 0.9, nesterov, weightDecay: 5e-4 };
    let simd = new SGD(a, opts);
    const js = new SGD(b, { ...opts, simd: false });
    for (let step = 1; step <= 5; step++) {
      if (step === 3) { // a resume: a new optimizer, its state imported
        const slots = simd.exportSlots();
        simd.dispose();
        simd = new SGD(a, opts);
        simd.importSlots(2, slots);
        simd.lr = js.lr = 0.01;
      }
      const grads = (vars: tf.Variable[]) =>
        Object.fromEntries(vars.map((v, i) => {
          const g = rand(v.size, 200 * step + i);
          if (i === 3 && step === 2) g.set([0, 1e-20, -5e3, 1e-40], 0);
          return [v.name, tf.tensor(g, v.shape)];
        }));
      const [ga, gb] = [grads(a), grads(b)];
      simd.step(ga);
      js.step(gb);
      tf.dispose([...Object.values(ga), ...Object.values(gb)]);
    }
    a.forEach((v, i) =>
      assertBitsEqual(
        v.dataSync() as Float32Array,
        b[i].dataSync() as Float32Array,
        `nesterov ${nesterov} w${i}`,
      )
    );
    const [sa, sb] = [simd.exportSlots().buf, js.exportSlots().buf];
    a.forEach((v, i) => assertBitsEqual(sa[v.name], sb[b[i].name], `nesterov ${nesterov} buf${i}`));
    simd.dispose();
    js.dispose();
    tf.dispose([...a, ...b]);
  }
});
