/** Shared helpers for the engine tests: run the same computation on two backends and compare. */
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import { nativeAvailable } from "../../lib/engine/init.ts";
import { registerNative } from "../../lib/engine/native.ts";
import wabtInit from "wabt";

/** Whether OpenBLAS is present; tests needing it use `ignore: !NATIVE.ok` and print the reason. */
export const NATIVE = nativeAvailable();
if (!NATIVE.ok) console.warn(`skipping native-engine tests: ${NATIVE.reason}`);
else registerNative();

/** Deterministic pseudo-random floats in [-1, 1) (LCG), so both backends see identical inputs. */
export function rand(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

/** Run `fn` on `backend`, returning the flattened float values of every tensor it returns (all freed). */
export async function runOn(backend: string, fn: () => tf.Tensor | tf.Tensor[]): Promise<Float32Array[]> {
  await tf.setBackend(backend);
  const before = tf.memory().numTensors;
  const out = tf.tidy(fn);
  const list = Array.isArray(out) ? out : [out];
  const vals = list.map((t) => Float32Array.from(t.dataSync()));
  tf.dispose(list);
  if (tf.memory().numTensors !== before) {
    throw new Error(`${backend}: ${tf.memory().numTensors - before} tensors leaked`);
  }
  return vals;
}

/**
 * Assert `got` equals `want` normwise: max |got - want| <= tol * max(1e-6, max |want|) for each output
 * (GEMM sums in a different order than the reference loops, so bitwise equality is not expected).
 */
export function assertClose(got: Float32Array[], want: Float32Array[], tol: number, what: string): void {
  if (got.length !== want.length) throw new Error(`${what}: ${got.length} outputs vs ${want.length}`);
  got.forEach((g, k) => {
    const w = want[k];
    if (g.length !== w.length) throw new Error(`${what} [${k}]: length ${g.length} vs ${w.length}`);
    let scale = 1e-6, err = 0, at = -1;
    for (let i = 0; i < w.length; i++) scale = Math.max(scale, Math.abs(w[i]));
    for (let i = 0; i < w.length; i++) {
      const e = Math.abs(g[i] - w[i]);
      if (!(e <= err)) {
        err = e;
        at = i;
      }
    }
    if (!(err <= tol * scale)) {
      throw new Error(
        `${what} [${k}]: max abs err ${err} at ${at} (got ${g[at]}, want ${w[at]}) > ${tol} * ${scale}`,
      );
    }
  });
}

/** Compare `fn` on backend `a` against the `cpu` reference. */
export async function agree(
  backend: string,
  fn: () => tf.Tensor | tf.Tensor[],
  what: string,
  tol = 1e-4,
): Promise<void> {
  const want = await runOn("cpu", fn);
  const got = await runOn(backend, fn);
  assertClose(got, want, tol, `${what} on ${backend}`);
}

/**
 * Assert two float arrays are bit for bit equal (NaN payloads aside), naming the first difference (a short
 * message: node's deep-equal diff of large arrays is quadratic).
 */
export function assertBitsEqual(got: Float32Array, want: Float32Array, what: string): void {
  if (got.length !== want.length) throw new Error(`${what}: length ${got.length} vs ${want.length}`);
  const g = new Uint32Array(got.buffer, got.byteOffset, got.length);
  const w = new Uint32Array(want.buffer, want.byteOffset, want.length);
  for (let i = 0; i < g.length; i++) {
    if (g[i] !== w[i] && !(Number.isNaN(got[i]) && Number.isNaN(want[i]))) {
      throw new Error(`${what}: differs at ${i} of ${g.length} (got ${got[i]}, want ${want[i]})`);
    }
  }
}

/** A module of lib/engine/wasm/ (`name`, e.g. "optim.wat") compiled with wabt as its committed bytes were, base64. */
export async function compiledWat(name: string): Promise<string> {
  const wabt = await wabtInit();
  const src = Deno.readTextFileSync(new URL(`../../lib/engine/wasm/${name}`, import.meta.url));
  const mod = wabt.parseWat(name, src, { simd: true });
  const bytes = mod.toBinary({}).buffer as Uint8Array;
  mod.destroy();
  return btoa(String.fromCharCode(...bytes));
}
