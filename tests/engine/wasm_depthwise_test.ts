/**
 * The WebAssembly depthwise weight gradient (lib/engine/wasm/depthwise.ts): its bytes, its sums against the JS
 * reference loop over filter widths that take each column path, and the native engine's routing to it.
 */
import * as tf from "@tensorflow/tfjs-core";
import assert from "node:assert/strict";
import { DEPTHWISE_WASM_BASE64, depthwiseFilterWasm } from "../../lib/engine/wasm/depthwise.ts";
import { type ConvGeom, depthwiseBackpropFilter } from "../../lib/engine/kernels/conv.ts";
import { nativeDnnl, useDnnl } from "../../lib/engine/native.ts";
import { assertBitsEqual, assertClose, compiledWat, NATIVE, rand, runOn } from "./helpers.ts";

Deno.test("wasm depthwise: the committed bytes are depthwise.wat compiled with wabt", async () => {
  assert.equal(await compiledWat("depthwise.wat"), DEPTHWISE_WASM_BASE64);
});

type Case = {
  n: number;
  h: number;
  w: number;
  c: number;
  kh: number;
  kw: number;
  s: number;
  pad: "same" | "valid";
};
const geometry = (k: Case, dilation = 1): ConvGeom =>
  tf.backend_util.computeConv2DInfo(
    [k.n, k.h, k.w, k.c],
    [k.kh, k.kw, k.c, 1],
    k.s,
    dilation,
    k.pad,
    undefined,
    true,
  );

const CASES: [string, Case][] = [
  ["7×7 (four columns, then three)", { n: 3, h: 9, w: 8, c: 8, kh: 7, kw: 7, s: 1, pad: "same" }],
  ["5×5 stride 2, uneven padding (four, then one)", {
    n: 2,
    h: 11,
    w: 10,
    c: 12,
    kh: 5,
    kw: 5,
    s: 2,
    pad: "same",
  }],
  ["3×3 valid (three)", { n: 2, h: 6, w: 7, c: 4, kh: 3, kw: 3, s: 1, pad: "valid" }],
  ["9×9 on a 2×3 map (four, four, one; most rows outside)", {
    n: 2,
    h: 2,
    w: 3,
    c: 16,
    kh: 9,
    kw: 9,
    s: 1,
    pad: "same",
  }],
  ["6 wide, 2 tall (four, one, one)", { n: 1, h: 5, w: 9, c: 4, kh: 2, kw: 6, s: 1, pad: "same" }],
  ["1×1 stride 2", { n: 2, h: 5, w: 5, c: 8, kh: 1, kw: 1, s: 2, pad: "valid" }],
];
for (const [what, k] of CASES) {
  Deno.test(`wasm depthwise: ${what} equals the JS loop`, () => {
    const g = geometry(k);
    const x = rand(k.n * k.h * k.w * k.c, 1), dy = rand(k.n * g.outHeight * g.outWidth * k.c, 2);
    const got = depthwiseFilterWasm(x, dy, g, 1);
    assert.ok(got, "the kernel took the case");
    assert.equal(got.length, k.kh * k.kw * k.c);
    assertClose([got], [depthwiseBackpropFilter(x, dy, g, 1)], 1e-5, what);
  });
}

Deno.test("wasm depthwise: a batch larger than the module's 16 MiB is summed in chunks", () => {
  // 5 images of 64×64×128 input and output gradient, 2 × 2 MiB each (plus padding columns): chunks of 3 and 2
  const k: Case = { n: 5, h: 64, w: 64, c: 128, kh: 3, kw: 3, s: 1, pad: "same" };
  const g = geometry(k);
  const x = rand(k.n * k.h * k.w * k.c, 3), dy = rand(k.n * k.h * k.w * k.c, 4);
  assertClose([depthwiseFilterWasm(x, dy, g, 1)!], [depthwiseBackpropFilter(x, dy, g, 1)], 1e-5, "chunked");
});

Deno.test("wasm depthwise: declines what it does not compute (multiplier, channels, dilation)", () => {
  const k: Case = { n: 1, h: 6, w: 6, c: 8, kh: 3, kw: 3, s: 1, pad: "same" };
  const x = rand(6 * 6 * 8, 5);
  assert.equal(depthwiseFilterWasm(x, rand(6 * 6 * 16, 6), geometry(k), 2), null, "channel multiplier 2");
  const odd = { ...k, c: 6 };
  assert.equal(depthwiseFilterWasm(rand(216, 7), rand(216, 8), geometry(odd), 1), null, "6 channels");
  assert.equal(depthwiseFilterWasm(x, rand(6 * 6 * 8, 9), geometry(k, 2), 1), null, "dilation 2");
});

const HAS_DNNL = NATIVE.ok && nativeDnnl() !== null;
for (const dnnl of [true, false]) {
  Deno.test({
    name: `native engine (${
      dnnl ? "oneDNN" : "OpenBLAS"
    }): a 7×7 depthwise weight gradient is the wasm kernel's`,
    ignore: !NATIVE.ok || (dnnl && !HAS_DNNL),
  }, async () => {
    useDnnl(dnnl);
    try {
      const k: Case = { n: 2, h: 8, w: 8, c: 12, kh: 7, kw: 7, s: 1, pad: "same" };
      const g = geometry(k);
      const xs = rand(k.n * k.h * k.w * k.c, 10), ws = rand(k.kh * k.kw * k.c, 11);
      const r = rand(k.n * k.h * k.w * k.c, 12);
      const [dw] = await runOn("native", () => {
        const x = tf.tensor4d(xs, [k.n, k.h, k.w, k.c]);
        const loss = (w: tf.Tensor) =>
          tf.sum(tf.mul(tf.depthwiseConv2d(x, w as tf.Tensor4D, 1, "same"), tf.tensor4d(r, x.shape)));
        return tf.grad(loss)(tf.tensor4d(ws, [k.kh, k.kw, k.c, 1]));
      });
      // the output gradient of sum(y · r) is r itself
      assertBitsEqual(dw, depthwiseFilterWasm(xs, r, g, 1)!, "native dW vs wasm");
    } finally {
      useDnnl(true);
    }
  });
}

Deno.test({
  name:
    "native engine (oneDNN): a 3×3 depthwise weight gradient oneDNN has a depthwise kernel for stays there",
  ignore: !HAS_DNNL,
}, async () => {
  const k: Case = { n: 2, h: 12, w: 12, c: 16, kh: 3, kw: 3, s: 1, pad: "same" };
  const g = geometry(k) as Parameters<NonNullable<ReturnType<typeof nativeDnnl>>["backwardWeights"]>[2];
  const dnnl = nativeDnnl()!;
  assert.match(dnnl.backwardWeightsImpl(g, k.c), /^jit_dw/);
  const xs = rand(k.n * k.h * k.w * k.c, 20), ws = rand(9 * k.c, 21), r = rand(k.n * k.h * k.w * k.c, 22);
  const [dw] = await runOn("native", () => {
    const x = tf.tensor4d(xs, [k.n, k.h, k.w, k.c]);
    const loss = (w: tf.Tensor) =>
      tf.sum(tf.mul(tf.depthwiseConv2d(x, w as tf.Tensor4D, 1, "same"), tf.tensor4d(r, x.shape)));
    return tf.grad(loss)(tf.tensor4d(ws, [3, 3, k.c, 1]));
  });
  assertBitsEqual(dw, dnnl.backwardWeights(xs, r, g, k.c)!, "native dW vs oneDNN");
});
