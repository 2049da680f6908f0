/**
 * bfloat16 convolutions and matmuls (lib/engine/dnnl/conv.ts, matmul.ts): they agree with float32 to bfloat16's precision, differ from
 * it (so bfloat16 kernels ran), and switching back restores float32 exactly; `setPrecision` (lib/engine/init.ts)
 * says why when bfloat16 is not available.
 */
import * as tf from "@tensorflow/tfjs-core";
import assert from "node:assert/strict";
import { agree, assertBitsEqual, NATIVE, rand, runOn } from "./helpers.ts";
import { nativeDnnl, useDnnl } from "../../lib/engine/native.ts";
import { isBf16Kernel } from "../../lib/engine/dnnl/conv.ts";
import { setPrecision } from "../../lib/engine/init.ts";

const dnnl = NATIVE.ok ? nativeDnnl() : null;
/** Whether this CPU has oneDNN's hardware bfloat16 convolutions (AMX or AVX-512 BF16). */
const BF16 = dnnl !== null && dnnl.setPrecision("bfloat16");
dnnl?.setPrecision("float32");
if (dnnl && !BF16) {
  console.warn("skipping bfloat16 convolution tests: no hardware bfloat16 kernels on this CPU");
}

const T = (shape: number[], seed: number) => tf.tensor(rand(shape.reduce((p, q) => p * q, 1), seed), shape);

/** A convolution's output and both gradients, on fixed inputs. */
function convAndGrads(
  c: { n: number; h: number; c: number; co: number; k: number; s: number },
  seed: number,
) {
  return () => {
    const x = T([c.n, c.h, c.h, c.c], seed) as tf.Tensor4D;
    const w = T([c.k, c.k, c.c, c.co], seed + 1) as tf.Tensor4D;
    const conv = (a: tf.Tensor, b: tf.Tensor) => tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, c.s, "same");
    const r = T(conv(x, w).shape, seed + 2);
    return [conv(x, w), ...tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(conv(a, b), r)))([x, w])];
  };
}

/**
 * `fn` in bfloat16 agrees with the float32 reference to bfloat16's precision (8 significant bits: each product
 * carries ~2^-9 relative error; sums accumulate in float32) and differs from native float32 (so bfloat16 kernels
 * ran); back in float32 it is bit for bit what it was.
 */
async function checkBfloat16(fn: () => tf.Tensor[], what: string): Promise<void> {
  const f32 = await runOn("native", fn);
  try {
    dnnl!.setPrecision("bfloat16");
    await agree("native", fn, `bfloat16 ${what}`, 2e-2);
    const low = await runOn("native", fn);
    low.forEach((v, j) =>
      assert.ok(v.some((x, k) => x !== f32[j][k]), `${what} output ${j}: float32, not bfloat16`)
    );
  } finally {
    dnnl!.setPrecision("float32");
  }
  const again = await runOn("native", fn);
  again.forEach((v, j) => assertBitsEqual(v, f32[j], `${what}: float32 after bfloat16, output ${j}`));
}

const CASES = [
  { n: 4, h: 12, c: 32, co: 32, k: 3, s: 1 },
  { n: 2, h: 11, c: 64, co: 48, k: 3, s: 2 },
  { n: 3, h: 8, c: 16, co: 64, k: 1, s: 1 },
];

for (const [i, c] of CASES.entries()) {
  Deno.test({ name: `bfloat16 conv2d ${JSON.stringify(c)}: forward and grads`, ignore: !BF16 }, async () => {
    useDnnl(true);
    await checkBfloat16(convAndGrads(c, 10 * i + 1), `conv2d ${JSON.stringify(c)}`);
  });
}

Deno.test(
  { name: "bfloat16: depthwise convolutions stay float32 (bit for bit)", ignore: !BF16 },
  async () => {
    const fn = () => {
      const x = T([2, 9, 9, 16], 21) as tf.Tensor4D, w = T([3, 3, 16, 1], 22) as tf.Tensor4D;
      const dw = (a: tf.Tensor, b: tf.Tensor) =>
        tf.depthwiseConv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, "same");
      const r = T(dw(x, w).shape, 23);
      return [dw(x, w), ...tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(dw(a, b), r)))([x, w])];
    };
    const f32 = await runOn("native", fn);
    dnnl!.setPrecision("bfloat16");
    try {
      (await runOn("native", fn)).forEach((v, j) => assertBitsEqual(v, f32[j], `depthwise output ${j}`));
    } finally {
      dnnl!.setPrecision("float32");
    }
  },
);

/** Matmuls in each transpose combination, batched, and a dense layer's gradients (the GEMMs' transposed forms). */
const MATMULS: [string, () => tf.Tensor[]][] = [
  ["a·b", () => [tf.matMul(T([37, 24], 1), T([24, 19], 2))]],
  ["aᵀ·b", () => [tf.matMul(T([24, 37], 3), T([24, 19], 4), true, false)]],
  ["a·bᵀ", () => [tf.matMul(T([37, 24], 5), T([19, 24], 6), false, true)]],
  ["aᵀ·bᵀ", () => [tf.matMul(T([24, 37], 7), T([19, 24], 8), true, true)]],
  ["batched", () => [tf.matMul(T([3, 17, 24], 9), T([3, 24, 11], 10))]],
  ["dense grads", () => {
    const x = T([33, 48], 11), w = T([48, 29], 12), r = T([33, 29], 13);
    return tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(tf.matMul(a, b), r)))([x, w]);
  }],
];
for (const [name, fn] of MATMULS) {
  Deno.test({ name: `bfloat16 matmul ${name}`, ignore: !BF16 }, () => checkBfloat16(fn, `matmul ${name}`));
}

Deno.test("matmul lowGemm: nothing in float32, or with alpha ≠ 1 / beta ≠ 0 (the caller's GEMM runs)", {
  ignore: !BF16,
}, () => {
  const a = new Float32Array(12).fill(1), b = new Float32Array(12).fill(1), c = new Float32Array(9).fill(7);
  assert.equal(dnnl!.lowGemm(false, false, 3, 3, 4, 1, a, 4, b, 3, 0, c, 3), false);
  try {
    dnnl!.setPrecision("bfloat16");
    assert.equal(dnnl!.lowGemm(false, false, 3, 3, 4, 2, a, 4, b, 3, 0, c, 3), false);
    assert.equal(dnnl!.lowGemm(false, false, 3, 3, 4, 1, a, 4, b, 3, 1, c, 3), false);
    assert.deepEqual([...c], new Array(9).fill(7));
    assert.equal(dnnl!.lowGemm(false, false, 3, 3, 4, 1, a, 4, b, 3, 0, c, 3), true);
    assert.deepEqual([...c], new Array(9).fill(4));
  } finally {
    dnnl!.setPrecision("float32");
  }
});

Deno.test({ name: "bfloat16 convolutions run oneDNN's bfloat16 kernels", ignore: !BF16 }, async () => {
  dnnl!.setPrecision("bfloat16");
  try {
    await runOn("native", convAndGrads({ n: 2, h: 10, c: 24, co: 40, k: 3, s: 1 }, 99));
  } finally {
    dnnl!.setPrecision("float32");
  }
  const low = dnnl!.primitives().filter((k) => k.includes("|bf16|"));
  assert.ok(low.length >= 3, `bfloat16 primitives created: ${low.join(", ")}`);
  assert.ok(dnnl!.impls().some(isBf16Kernel), `implementations: ${dnnl!.impls().join(", ")}`);
});

Deno.test("isBf16Kernel: hardware bfloat16 kernels only", () => {
  assert.ok(isBf16Kernel("brgconv:avx512_core_amx_bf16"));
  assert.ok(isBf16Kernel("jit:avx512_core_bf16"));
  assert.ok(!isBf16Kernel("brgconv:avx512_core"));
  assert.ok(!isBf16Kernel("ref:any"));
  assert.ok(!isBf16Kernel("ref_bf16:any"));
});

Deno.test({ name: "setPrecision: in effect, or float32 with the reason", ignore: !NATIVE.ok }, async () => {
  await tf.setBackend("cpu");
  assert.deepEqual(setPrecision("bfloat16"), {
    precision: "float32",
    reason: "the cpu engine computes in float32 only",
  });
  await tf.setBackend("native");
  const r = setPrecision("bfloat16");
  try {
    if (BF16) assert.deepEqual(r, { precision: "bfloat16", reason: "" });
    else assert.equal(r.precision, "float32");
    if (!dnnl) assert.match(r.reason, /oneDNN is not loaded/);
    else if (!BF16) assert.match(r.reason, /no hardware bfloat16 kernels/);
    assert.equal(dnnl?.precision() ?? "float32", r.precision);
  } finally {
    assert.deepEqual(setPrecision("float32"), { precision: "float32", reason: "" });
  }
  assert.equal(dnnl?.precision() ?? "float32", "float32");
});
