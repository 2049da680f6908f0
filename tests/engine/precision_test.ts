/**
 * bfloat16 convolutions (lib/engine/dnnl/conv.ts): they agree with float32 to bfloat16's precision, differ from
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

const CASES = [
  { n: 4, h: 12, c: 32, co: 32, k: 3, s: 1 },
  { n: 2, h: 11, c: 64, co: 48, k: 3, s: 2 },
  { n: 3, h: 8, c: 16, co: 64, k: 1, s: 1 },
];

for (const [i, c] of CASES.entries()) {
  Deno.test({ name: `bfloat16 conv2d ${JSON.stringify(c)}: forward and grads`, ignore: !BF16 }, async () => {
    useDnnl(true);
    const fn = convAndGrads(c, 10 * i + 1);
    const f32 = await runOn("native", fn);
    try {
      dnnl!.setPrecision("bfloat16");
      // bfloat16 keeps 8 significant bits: each product carries ~2^-9 relative error, sums accumulate in float32
      await agree("native", fn, `bfloat16 ${JSON.stringify(c)}`, 2e-2);
      const low = await runOn("native", fn);
      low.forEach((v, j) =>
        assert.ok(v.some((x, k) => x !== f32[j][k]), `output ${j} equals float32: not bfloat16`)
      );
    } finally {
      dnnl!.setPrecision("float32");
    }
    const again = await runOn("native", fn);
    again.forEach((v, j) => assertBitsEqual(v, f32[j], `float32 after bfloat16, output ${j}`));
  });
}

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
