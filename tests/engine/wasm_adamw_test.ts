/**
 * lib/engine/wasm/adamw.ts: the committed module is `adamw.wat` compiled, and AdamW on WebAssembly SIMD gives
 * bit for bit the JS loop's weights and moments — over several steps, odd sizes (SIMD tails), extreme values,
 * weight decay, and a state exported and imported in between.
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import wabtInit from "wabt";
import { ADAMW_WASM_BASE64, WasmAdamW } from "../../lib/engine/wasm/adamw.ts";
import { AdamW } from "../../lib/train/optim.ts";
import { assertBitsEqual, rand } from "./helpers.ts";

Deno.test("wasm AdamW: the committed bytes are adamw.wat compiled with wabt", async () => {
  const wabt = await wabtInit();
  const src = Deno.readTextFileSync(new URL("../../lib/engine/wasm/adamw.wat", import.meta.url));
  const mod = wabt.parseWat("adamw.wat", src, { simd: true });
  const bytes = mod.toBinary({}).buffer as Uint8Array;
  mod.destroy();
  assert.equal(btoa(String.fromCharCode(...bytes)), ADAMW_WASM_BASE64);
});

Deno.test("wasm AdamW: available here (Deno's V8 has WebAssembly SIMD)", () => {
  assert.ok(WasmAdamW.create([5, 8]) !== null);
});

Deno.test("wasm AdamW: bit for bit the JS loop over steps, odd sizes, extreme values and a state round trip", async () => {
  await tf.setBackend("cpu");
  const shapes = [[3, 3, 2, 5], [7], [1], [64, 33], [4]];
  const make = (tag: string) =>
    shapes.map((s, i) => {
      const n = s.reduce((p, q) => p * q, 1);
      const vals = rand(n, 10 + i);
      if (i === 3) vals.set([0, -0, 1e-30, -1e30, 3e38, 1e-45], 0); // zeros, subnormal, huge
      return tf.variable(tf.tensor(vals, s), true, `wasm_adamw_${tag}_${i}`);
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
