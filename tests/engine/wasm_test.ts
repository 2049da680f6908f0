/** The fallback path: wasm with the JS gradient kernels, the JS GEMM, and the cpu engine. */
import * as tf from "@tensorflow/tfjs-core";
import { setWasmPaths } from "@tensorflow/tfjs-backend-wasm";
import { agree, assertClose, rand } from "./helpers.ts";
import { wasmDir } from "../../lib/engine/init.ts";
import { registerWasmGrads, WASM_GRAD_KERNELS } from "../../lib/engine/wasm_grads.ts";
import { jsGemm } from "../../lib/engine/kernels/gemm.ts";
import { crossEntropy, referenceNet } from "../../lib/bench/nets.ts";

setWasmPaths(wasmDir());
registerWasmGrads();
const T = (shape: number[], seed: number) => tf.tensor(rand(shape.reduce((p, q) => p * q, 1), seed), shape);

Deno.test("wasm grads: the missing kernels are registered", () => {
  for (const k of WASM_GRAD_KERNELS) if (!tf.getKernel(k, "wasm")) throw new Error(`${k} missing for wasm`);
});

Deno.test("wasm grads: conv2d and depthwise gradients agree with cpu", async () => {
  for (const [s, pad] of [[1, "same"], [2, "valid"], [2, "same"]] as const) {
    await agree("wasm", () => {
      const x = T([2, 9, 7, 5], 1), w = T([3, 3, 5, 4], 2);
      const r = T(tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, s, pad).shape, 3);
      return tf.grads((a: tf.Tensor, f: tf.Tensor) =>
        tf.sum(tf.mul(tf.conv2d(a as tf.Tensor4D, f as tf.Tensor4D, s, pad), r))
      )([x, w]);
    }, `conv2d grads s${s} ${pad}`);
    for (const m of [1, 2]) {
      await agree("wasm", () => {
        const x = T([2, 8, 9, 3], 4), w = T([3, 3, 3, m], 5);
        const r = T(tf.depthwiseConv2d(x as tf.Tensor4D, w as tf.Tensor4D, s, pad).shape, 6);
        return tf.grads((a: tf.Tensor, f: tf.Tensor) =>
          tf.sum(tf.mul(tf.depthwiseConv2d(a as tf.Tensor4D, f as tf.Tensor4D, s, pad), r))
        )([x, w]);
      }, `depthwise grads s${s} ${pad} m${m}`);
    }
  }
});

Deno.test("wasm: one training step of a small reference net runs and gives the cpu loss and gradients", async () => {
  const step = () => {
    const model = referenceNet({ input: [12, 12, 1], widths: [8, 16], hidden: 16, seed: 3 });
    const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
    const x = T([4, 12, 12, 1], 9), y = tf.tensor1d([0, 1, 2, 3], "int32");
    // dropout off (training: false would also switch BN): compare the inference-mode loss gradient
    const { value, grads } = tf.variableGrads(
      () => crossEntropy(model.apply(x, { training: false }) as tf.Tensor, y),
      vars,
    );
    const out = [value, ...Object.keys(grads).sort().map((k) => grads[k])];
    const keep = out.map((t) => t.clone());
    tf.dispose([...out, x, y]);
    model.dispose();
    return keep;
  };
  await agree("wasm", step, "reference-net gradients", 1e-3);
});

Deno.test("jsGemm matches a naive triple loop for all transpose combinations", () => {
  const m = 5, n = 4, k = 7;
  for (const ta of [false, true]) {
    for (const tb of [false, true]) {
      const a = rand(m * k, 1), b = rand(k * n, 2), c = rand(m * n, 3);
      const want = new Float32Array(m * n);
      for (let i = 0; i < m; i++) {
        for (let j = 0; j < n; j++) {
          let s = 0;
          for (let p = 0; p < k; p++) {
            s += (ta ? a[p * m + i] : a[i * k + p]) * (tb ? b[j * k + p] : b[p * n + j]);
          }
          want[i * n + j] = 2 * s + 0.5 * c[i * n + j];
        }
      }
      jsGemm(ta, tb, m, n, k, 2, a, ta ? m : k, b, tb ? k : n, 0.5, c, n);
      assertClose([c], [want], 1e-5, `jsGemm ta=${ta} tb=${tb}`);
    }
  }
});
