/** Every kernel the native engine replaces agrees with the tfjs `cpu` backend (normwise rel 1e-4). */
import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import assert from "node:assert/strict";
import { agree, assertBitsEqual, assertClose, NATIVE, rand, runOn } from "./helpers.ts";
import { nativeDnnl, useDnnl } from "../../lib/engine/native.ts";
import { dnnlError } from "../../lib/engine/dnnl.ts";

const ignore = !NATIVE.ok;
/** Convolutions run on oneDNN when libdnnl is present, else on the OpenBLAS lowering; both are tested. */
const HAS_DNNL = NATIVE.ok && nativeDnnl() !== null;
if (NATIVE.ok && !HAS_DNNL) console.warn(`skipping oneDNN convolution tests: ${dnnlError()}`);
const CONV_PATHS = [{ path: "oneDNN", dnnl: true, ignore: !HAS_DNNL }, {
  path: "OpenBLAS",
  dnnl: false,
  ignore,
}];
const T = (shape: number[], seed: number) => tf.tensor(rand(shape.reduce((p, q) => p * q, 1), seed), shape);

type ConvCase = {
  n: number;
  h: number;
  w: number;
  c: number;
  co: number;
  k: [number, number];
  s: number;
  pad: "same" | "valid";
  d: number;
};
const CONV_CASES: ConvCase[] = [
  { n: 2, h: 9, w: 7, c: 8, co: 5, k: [3, 3], s: 1, pad: "same", d: 1 }, // shifted GEMM
  { n: 1, h: 8, w: 8, c: 16, co: 12, k: [3, 3], s: 1, pad: "valid", d: 1 },
  { n: 3, h: 7, w: 10, c: 9, co: 4, k: [5, 3], s: 1, pad: "same", d: 1 },
  { n: 2, h: 11, w: 9, c: 8, co: 3, k: [3, 3], s: 1, pad: "same", d: 2 }, // dilation
  { n: 2, h: 6, w: 6, c: 12, co: 7, k: [1, 1], s: 1, pad: "valid", d: 1 }, // 1x1
  { n: 2, h: 9, w: 9, c: 1, co: 6, k: [3, 3], s: 1, pad: "same", d: 1 }, // thin input: im2col
  { n: 3, h: 9, w: 8, c: 5, co: 6, k: [3, 3], s: 2, pad: "same", d: 1 }, // strided im2col
  { n: 1, h: 10, w: 7, c: 8, co: 4, k: [3, 2], s: 2, pad: "valid", d: 1 },
  { n: 2, h: 16, w: 16, c: 3, co: 8, k: [4, 4], s: 4, pad: "valid", d: 1 }, // patchify stem
];

for (const [i, cc] of CONV_CASES.entries()) {
  for (const cp of CONV_PATHS) {
    const name = `conv2d ${JSON.stringify(cc)}`;
    Deno.test(
      { name: `native ${cp.path} ${name}: forward, fused bias+relu, grads`, ignore: cp.ignore },
      async () => {
        useDnnl(cp.dnnl);
        const x = () => T([cc.n, cc.h, cc.w, cc.c], 10 + i);
        const f = () => T([...cc.k, cc.c, cc.co], 20 + i);
        const b = () => T([cc.co], 30 + i);
        await agree(
          "native",
          () => tf.conv2d(x() as tf.Tensor4D, f() as tf.Tensor4D, cc.s, cc.pad, "NHWC", cc.d),
          name,
        );
        await agree("native", () =>
          tf.fused.conv2d({
            x: x() as tf.Tensor4D,
            filter: f() as tf.Tensor4D,
            strides: cc.s,
            pad: cc.pad,
            dilations: cc.d,
            bias: b(),
            activation: "relu",
          }), `fused ${name}`);
        if (cc.d > 1) return; // tfjs has no conv2d gradient for dilations > 1
        await agree("native", () => {
          const xs = x(), fs = f();
          const y = tf.conv2d(xs as tf.Tensor4D, fs as tf.Tensor4D, cc.s, cc.pad, "NHWC", cc.d);
          const r = T(y.shape, 40 + i);
          return tf.grads((a: tf.Tensor, w: tf.Tensor) =>
            tf.sum(tf.mul(tf.conv2d(a as tf.Tensor4D, w as tf.Tensor4D, cc.s, cc.pad, "NHWC", cc.d), r))
          )([xs, fs]);
        }, `grads ${name}`);
      },
    );
  }
}

const DW_CASES = [
  { n: 2, h: 9, w: 8, c: 5, m: 1, k: 3, s: 1, pad: "same" as const, d: 1 },
  { n: 1, h: 8, w: 8, c: 6, m: 2, k: 7, s: 1, pad: "same" as const, d: 1 },
  { n: 3, h: 9, w: 7, c: 4, m: 2, k: 3, s: 2, pad: "valid" as const, d: 1 },
  { n: 2, h: 10, w: 10, c: 3, m: 1, k: 3, s: 1, pad: "same" as const, d: 2 },
  // weight gradients on the WebAssembly kernel (wider than oneDNN's depthwise kernel takes)
  { n: 2, h: 9, w: 8, c: 8, m: 1, k: 7, s: 1, pad: "same" as const, d: 1 },
  { n: 2, h: 11, w: 10, c: 12, m: 1, k: 5, s: 2, pad: "same" as const, d: 1 },
];
for (const [i, cc] of DW_CASES.entries()) {
  for (const cp of CONV_PATHS) {
    const name = `depthwise ${JSON.stringify(cc)}`;
    Deno.test({ name: `native ${cp.path} ${name}: forward, fused, grads`, ignore: cp.ignore }, async () => {
      useDnnl(cp.dnnl);
      const x = () => T([cc.n, cc.h, cc.w, cc.c], 50 + i) as tf.Tensor4D;
      const f = () => T([cc.k, cc.k, cc.c, cc.m], 60 + i) as tf.Tensor4D;
      await agree("native", () => tf.depthwiseConv2d(x(), f(), cc.s, cc.pad, "NHWC", cc.d), name);
      await agree("native", () =>
        tf.fused.depthwiseConv2d({
          x: x(),
          filter: f(),
          strides: cc.s,
          pad: cc.pad,
          dilations: cc.d,
          bias: T([cc.c * cc.m], 70),
          activation: "relu6",
        }), `fused ${name}`);
      if (cc.d > 1) return; // tfjs has no depthwise gradient for dilations > 1
      await agree("native", () => {
        const y = tf.depthwiseConv2d(x(), f(), cc.s, cc.pad, "NHWC", cc.d);
        const r = T(y.shape, 80 + i);
        return tf.grads((a: tf.Tensor, w: tf.Tensor) =>
          tf.sum(
            tf.mul(tf.depthwiseConv2d(a as tf.Tensor4D, w as tf.Tensor4D, cc.s, cc.pad, "NHWC", cc.d), r),
          )
        )([x(), f()]);
      }, `grads ${name}`);
    });
  }
}

Deno.test({
  name: "native matMul / batchMatMul / fused matMul (+ transposes, broadcast batch) and grads",
  ignore,
}, async () => {
  for (const [ta, tb] of [[false, false], [true, false], [false, true], [true, true]]) {
    const a = () => T(ta ? [13, 7] : [7, 13], 1);
    const b = () => T(tb ? [5, 13] : [13, 5], 2);
    await agree("native", () => tf.matMul(a(), b(), ta, tb), `matMul ${ta} ${tb}`);
    await agree(
      "native",
      () =>
        tf.fused.matMul({
          a: a(),
          b: b(),
          transposeA: ta,
          transposeB: tb,
          bias: T([5], 3),
          activation: "relu",
        }),
      "fused",
    );
    await agree(
      "native",
      () => tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.square(tf.matMul(x, y, ta, tb))))([a(), b()]),
      "grads",
    );
  }
  await agree("native", () => tf.matMul(T([3, 4, 6], 4), T([3, 6, 2], 5)), "batched");
  await agree("native", () => tf.matMul(T([2, 3, 4, 6], 6), T([1, 1, 6, 5], 7)), "broadcast batch");
  await agree("native", () => tf.matMul(T([4, 6], 6), T([3, 6, 5], 7)), "rank-2 x rank-3");
});

Deno.test({ name: "native element-wise broadcasting ops, reductions, tile", ignore }, async () => {
  useDnnl(true);
  const pairs: [number[], number[]][] = [
    [[2, 3, 4, 5], [2, 3, 4, 5]],
    [[2, 3, 4, 5], [5]],
    [[5], [2, 3, 4, 5]],
    [[2, 3, 4, 5], [1, 1, 1, 5]],
    [[2, 3, 1, 5], [2, 1, 4, 1]],
    [[6, 1], [6, 7]],
    [[], [3, 4]],
    [[3, 4], []],
  ];
  for (const [i, [sa, sb]] of pairs.entries()) {
    const a = () => T(sa, 100 + i), b = () => tf.add(T(sb, 200 + i), 3); // b away from 0 for div
    for (const op of [tf.add, tf.sub, tf.mul, tf.div, tf.squaredDifference, tf.maximum]) {
      await agree("native", () => op(a(), b()), `${op.name} ${sa} ${sb}`);
    }
    await agree(
      "native",
      () => tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.mul(tf.div(tf.sub(x, y), y), x)))([a(), b()]),
      `grads ${sa} ${sb}`,
    );
    // tfjs's SquaredDifference gradient does not reduce broadcast axes, so only same-shape pairs have one.
    if (sa.join() === sb.join()) {
      await agree(
        "native",
        () =>
          tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.mul(tf.squaredDifference(x, y), x)))([a(), b()]),
        `sqdiff grads ${sa}`,
      );
    }
  }
  const x = () => T([3, 4, 5, 6], 300);
  for (const axis of [0, 1, 3, [0, 1, 2], [1, 2], [0, 1, 2, 3], -1, [0, 2]]) {
    for (const keep of [false, true]) {
      await agree(
        "native",
        () => [tf.sum(x(), axis, keep), tf.mean(x(), axis, keep)],
        `sum/mean ${axis} ${keep}`,
      );
    }
    await agree(
      "native",
      () => tf.grad((v: tf.Tensor) => tf.sum(tf.square(tf.mean(v, axis))))(x()),
      `mean grad ${axis}`,
    );
  }
  // Large enough for the oneDNN mean (global average pooling, squeeze-excite), where it is loaded.
  const big = () => tf.add(T([8, 12, 12, 48], 301), 2);
  for (const axis of [[1, 2], 0, [0, 1, 2], -1, [0, 1, 2, 3]]) {
    for (const keep of [false, true]) {
      await agree("native", () => tf.mean(big(), axis, keep), `large mean ${axis} ${keep}`, 1e-5);
    }
  }
  if (HAS_DNNL) {
    assert.ok(nativeDnnl()!.primitives().some((k) => k.startsWith("avgpool|")), "oneDNN mean ran");
  }
  await agree(
    "native",
    () => [tf.tile(T([2, 3, 1], 5), [3, 1, 4]), tf.tile(T([1, 1, 1, 6], 6), [2, 3, 3, 1])],
    "tile",
  );
  await agree(
    "native",
    () => [tf.relu(x()), tf.step(x(), 0.3), tf.grad((v: tf.Tensor) => tf.sum(tf.mul(tf.relu(v), v)))(x())],
    "relu/step",
  );
});

const POOLS = [[2, 2, "valid"], [3, 2, "same"], [3, 1, "same"], [2, 1, "valid"], [2, 2, "same"]] as const;
/** Max pooling and its gradient on ReLU outputs (many ties at 0: the gradient must go where TF.js sends it). */
const maxPoolCase = (k: number, s: number, pad: "same" | "valid") => () => {
  const x = () => tf.relu(T([2, 7, 9, 5], k * 10 + s)) as tf.Tensor4D;
  const y = tf.maxPool(x(), k, s, pad);
  const w = T(y.shape, 99);
  return [y, tf.grad((v: tf.Tensor) => tf.sum(tf.mul(tf.maxPool(v as tf.Tensor4D, k, s, pad), w)))(x())];
};

for (const cp of CONV_PATHS) {
  Deno.test({
    name: `native maxPool / maxPoolGrad (${cp.path}): ties, same/valid, strides`,
    ignore: cp.ignore,
  }, async () => {
    useDnnl(cp.dnnl);
    for (const [k, s, pad] of POOLS) {
      await agree("native", maxPoolCase(k, s, pad), `maxPool ${k} ${s} ${pad}`);
    }
    useDnnl(true);
  });
}

Deno.test(
  { name: "native maxPool on oneDNN: bit for bit the JS kernel's results", ignore: !HAS_DNNL },
  async () => {
    for (const [k, s, pad] of POOLS) {
      useDnnl(false);
      const js = await runOn("native", maxPoolCase(k, s, pad));
      useDnnl(true);
      const dnnl = await runOn("native", maxPoolCase(k, s, pad));
      assertBitsEqual(dnnl[0], js[0], `forward ${k} ${s} ${pad}`);
      // Overlapping windows sum several dy into one dx in another order: equal within rounding.
      if (k <= s) assertBitsEqual(dnnl[1], js[1], `gradient ${k} ${s} ${pad}`);
      else assertClose([dnnl[1]], [js[1]], 1e-6, `gradient ${k} ${s} ${pad}`);
      assert.ok(
        nativeDnnl()!.primitives().some((key) => key.startsWith(`maxpool|true|`)),
        "oneDNN pooling ran",
      );
    }
  },
);

Deno.test({ name: "native batchNorm / moments grads", ignore }, async () => {
  const x = () => T([3, 5, 4, 6], 400) as tf.Tensor4D;
  const bn = (v: tf.Tensor, m: tf.Tensor, va: tf.Tensor, off: tf.Tensor, sc: tf.Tensor) =>
    tf.batchNorm(v, m, va, off, sc, 1e-3);
  await agree("native", () => {
    const r = T([3, 5, 4, 6], 401);
    const f = (v: tf.Tensor, m: tf.Tensor, va: tf.Tensor, off: tf.Tensor, sc: tf.Tensor) =>
      tf.sum(tf.mul(bn(v, m, va, off, sc), r));
    return tf.grads(f)([x(), T([6], 402), tf.add(tf.abs(T([6], 403)), 0.5), T([6], 404), T([6], 405)]);
  }, "batchNorm grads (all five inputs)");
  await agree("native", () => {
    // training-mode BN as tfjs-layers computes it: moments then batchNorm, gradient through both
    const r = T([3, 5, 4, 6], 406);
    return tf.grad((v: tf.Tensor) => {
      const { mean, variance } = tf.moments(v, [0, 1, 2]);
      return tf.sum(tf.mul(tf.relu(bn(v, mean, variance, T([6], 407), T([6], 408))), r));
    })(x());
  }, "moments + batchNorm + relu grad");
});

for (const cp of CONV_PATHS) {
  Deno.test({
    name:
      `native FusedBatchNorm forward (${cp.path === "oneDNN" ? "oneDNN" : "JS"}): 1-D stats, scalar stats, ` +
      "no scale/offset",
    ignore: cp.ignore,
  }, async () => {
    useDnnl(cp.dnnl);
    await agree(
      "native",
      () =>
        tf.batchNorm(
          T([20, 6], 507),
          T([6], 501),
          tf.add(tf.abs(T([6], 502)), 0.1),
          T([6], 503),
          T([6], 504),
        ),
      "bn 2-D",
    );
    await fusedBatchNormCase();
    if (cp.dnnl) assert.ok(nativeDnnl()!.primitives().some((k) => k.startsWith("bn_infer|")), "oneDNN ran");
    useDnnl(true);
  });
}

async function fusedBatchNormCase() {
  {
    const x = () => T([3, 4, 5, 6], 500);
    await agree(
      "native",
      () => tf.batchNorm(x(), T([6], 501), tf.add(tf.abs(T([6], 502)), 0.1), T([6], 503), T([6], 504), 1e-3),
      "bn 1-D",
    );
    await agree(
      "native",
      () => tf.batchNorm(x(), tf.scalar(0.2), tf.scalar(1.5), undefined, tf.scalar(0.7)),
      "bn scalar",
    );
    await agree(
      "native",
      () => tf.batchNorm(x(), T([6], 505), tf.add(tf.abs(T([6], 506)), 0.1)),
      "bn no scale/offset",
    );
  }
}

Deno.test(
  { name: "native Tile gradient (fused) for ranks 1-4 and LayerNorm-style broadcasts", ignore },
  async () => {
    const cases: [number[], number[]][] = [[[5], [3]], [[2, 3], [2, 4]], [[2, 1, 3], [1, 5, 2]], [[
      2,
      1,
      1,
      3,
    ], [1, 4, 5, 1]]];
    for (const [shape, reps] of cases) {
      await agree("native", () => {
        const r = T(shape.map((d, i) => d * reps[i]), 600);
        return tf.grad((v: tf.Tensor) => tf.sum(tf.mul(tf.tile(v, reps), r)))(T(shape, 601));
      }, `tile grad ${shape} x ${reps}`);
    }
  },
);

Deno.test(
  { name: "native slice / pad (ranks 1-5, int32, -1 sizes) and their gradients; sigmoid", ignore },
  async () => {
    const x = () => T([3, 5, 6, 4], 400);
    const slices: [number[], number[]][] = [
      [[0, 0, 0, 0], [3, 5, 6, 4]],
      [[1, 0, 0, 0], [2, 5, 6, 4]],
      [[0, 1, 2, 0], [3, 3, 4, 4]],
      [[0, 1, 1, 1], [-1, 4, 5, 2]],
      [[2, 4, 5, 3], [1, 1, 1, 1]],
      [[0, 0, 0, 1], [3, 5, 6, 0]],
    ];
    for (const [begin, size] of slices) {
      await agree("native", () => tf.slice(x(), begin, size), `slice ${begin} ${size}`);
      if (size.includes(0)) continue; // TF.js itself cannot differentiate an empty slice
      await agree(
        "native",
        () => tf.grad((v: tf.Tensor) => tf.sum(tf.mul(tf.slice(v, begin, size), 2)))(x()),
        `slice grad ${begin} ${size}`,
      );
    }
    await agree("native", () => tf.slice(tf.range(0, 7, 1, "int32"), [2], [4]), "slice rank 1 int32");
    await agree(
      "native",
      () => tf.slice(T([2, 3, 4, 5, 6], 401), [1, 0, 1, 2, 0], [1, 3, 2, 2, 6]),
      "slice rank 5",
    );
    const pads: [number, number][][] = [
      [[0, 0], [1, 1], [1, 1], [0, 0]],
      [[0, 0], [0, 1], [2, 0], [0, 0]],
      [[1, 2], [0, 0], [0, 0], [3, 1]],
    ];
    for (const p of pads) {
      for (const value of [0, -1.5]) {
        await agree("native", () => tf.pad(x(), p, value), `pad ${p} ${value}`);
      }
      await agree(
        "native",
        () => tf.grad((v: tf.Tensor) => tf.sum(tf.mul(tf.pad(v, p), tf.pad(v, p))))(x()),
        `pad grad ${p}`,
      );
    }
    await agree(
      "native",
      () => tf.pad(tf.tensor2d([[1, 2], [3, 4]], undefined, "int32"), [[1, 0], [0, 2]], 7),
      "pad int32",
    );
    await agree(
      "native",
      () => [
        tf.sigmoid(tf.mul(x(), 8)),
        tf.grad((v: tf.Tensor) => tf.sum(tf.mul(tf.sigmoid(v), v)))(x()),
      ],
      "sigmoid",
    );
  },
);

for (const cp of CONV_PATHS) {
  Deno.test({
    name: `native fused swish / gelu (${
      cp.path === "oneDNN" ? "oneDNN" : "JS"
    }): equal TF.js-layers' compositions`,
    ignore: cp.ignore,
  }, async () => {
    useDnnl(cp.dnnl);
    const x = () => tf.mul(T([2, 5, 7, 6], 500), 6); // [-6, 6): both tails and the centre
    for (const activation of ["swish", "gelu"] as const) {
      const layer = tfl.layers.activation({ activation });
      const f = (v: tf.Tensor) => layer.apply(v) as tf.Tensor;
      await agree(
        "native",
        () => [f(x()), tf.grad((v: tf.Tensor) => tf.sum(tf.mul(f(v), v)))(x())],
        activation,
        1e-5,
      );
      // The fused kernel is what ran on native (so the comparison above is not composition vs itself).
      await tf.setBackend("native");
      const prof = await tf.profile(() => tf.tidy(() => tf.grad((v: tf.Tensor) => tf.sum(f(v)))(x())));
      const names = prof.kernels.map((k) => k.name);
      assert.ok(names.some((n) => n.startsWith("FerNative") && n.endsWith("Grad")), names.join());
      assert.ok(!names.includes("Sigmoid") && !names.includes("Erf"), names.join());
    }
    // swish with alpha != 1 keeps the composition (the fused kernel is alpha = 1 only).
    const sw = tfl.layers.activation({ activation: "swish" }) as unknown as {
      activation: { apply: (x: tf.Tensor, a?: number) => tf.Tensor };
    };
    await agree("native", () => sw.activation.apply(x(), 0.5), "swish alpha 0.5", 1e-5);
    useDnnl(true);
  });
}

for (const cp of CONV_PATHS) {
  Deno.test(
    {
      name: `native fused training batch norm (${
        cp.path === "oneDNN" ? "oneDNN" : "JS"
      }): output, statistics, grads`,
      ignore: cp.ignore,
    },
    async () => {
      useDnnl(cp.dnnl);
      for (const shape of [[4, 5, 6, 8], [3, 7], [2, 3, 3, 1]]) {
        const c = shape[shape.length - 1];
        const run = () => {
          const layer = tfl.layers.batchNormalization({ axis: -1, momentum: 0.9, epsilon: 1e-3 });
          layer.build(shape);
          layer.setWeights([tf.add(T([c], 1), 1.5), T([c], 2), T([c], 3), tf.add(tf.abs(T([c], 4)), 0.5)]);
          const x = tf.add(tf.mul(T(shape, 600), 3), 0.7);
          const w = T(shape, 601);
          const vars = layer.trainableWeights.map((v) => v.read() as tf.Variable);
          const { value, grads } = tf.variableGrads(() => {
            const y = layer.apply(x, { training: true }) as tf.Tensor;
            return tf.sum(tf.mul(tf.square(y), w));
          }, vars);
          const dx = tf.grad((v: tf.Tensor) =>
            tf.sum(tf.mul(layer.apply(v, { training: true }) as tf.Tensor, w))
          )(x);
          const out = [
            layer.apply(x, { training: true }) as tf.Tensor,
            value,
            ...vars.map((v) => grads[v.name]),
            dx,
            ...layer.getWeights().slice(2).map((t) => t.clone()), // moving stats after 4 updates
          ];
          layer.weights.forEach((v) => v.dispose()); // Layer.dispose needs a symbolic call first
          return out;
        };
        await agree("native", run, `batch norm ${shape}`, 2e-4);
      }
      await tf.setBackend("native");
      const layer = tfl.layers.batchNormalization({});
      const x = T([2, 4, 4, 3], 7);
      const prof = await tf.profile(() =>
        tf.tidy(() =>
          tf.grad((v: tf.Tensor) => tf.sum(tf.square(layer.apply(v, { training: true }) as tf.Tensor)))(x)
        )
      );
      const names = prof.kernels.map((k) => k.name);
      assert.ok(names.includes("FerNativeBatchNormTrain") && !names.includes("FusedBatchNorm"), names.join());
      layer.weights.forEach((v) => v.dispose());
      x.dispose();
      useDnnl(true);
    },
  );
}

Deno.test(
  { name: "native oneDNN: the convolutions above ran on oneDNN's JIT kernels", ignore: !HAS_DNNL },
  () => {
    useDnnl(true);
    const impls = nativeDnnl()!.impls();
    assert.ok(impls.length > 0, "no oneDNN primitive was created");
    assert.ok(impls.every((s) => !s.startsWith("ref")), `reference (slow) oneDNN kernels chosen: ${impls}`);
  },
);

for (const cp of CONV_PATHS) {
  Deno.test({ name: `native relu / sigmoid and gradients (${cp.path})`, ignore: cp.ignore }, async () => {
    useDnnl(cp.dnnl);
    const x = () => tf.mul(T([3, 4, 5, 6], 700), 5);
    await agree(
      "native",
      () => [
        tf.relu(x()),
        tf.sigmoid(x()),
        tf.grad((v: tf.Tensor) => tf.sum(tf.mul(tf.relu(v), v)))(x()),
        tf.grad((v: tf.Tensor) => tf.sum(tf.mul(tf.sigmoid(v), v)))(x()),
      ],
      "relu/sigmoid",
      1e-5,
    );
    useDnnl(true);
  });
}

Deno.test({
  name: "native transpose: every permutation of a rank-4 tensor, rank 2/3/5, size-1 dims, int32",
  ignore,
}, async () => {
  const perms = (n: number): number[][] =>
    n === 1
      ? [[0]]
      : perms(n - 1).flatMap((p) =>
        Array.from({ length: n }, (_, i) => [...p.slice(0, i), n - 1, ...p.slice(i)])
      );
  for (const perm of perms(4)) {
    await agree("native", () => tf.transpose(T([3, 4, 5, 6], 800), perm), `transpose ${perm}`);
    await agree("native", () => tf.transpose(T([1, 4, 1, 6], 801), perm), `transpose size-1 ${perm}`);
  }
  await agree(
    "native",
    () => [tf.transpose(T([7, 9], 802)), tf.transpose(T([2, 3, 4], 803), [2, 0, 1])],
    "rank 2/3",
  );
  await agree("native", () => tf.transpose(T([2, 3, 2, 4, 3], 804), [4, 2, 0, 3, 1]), "rank 5");
  await agree(
    "native",
    () => tf.transpose(tf.reshape(tf.range(0, 24, 1, "int32"), [2, 3, 4]), [1, 2, 0]),
    "int32",
  );
  await agree(
    "native",
    () =>
      tf.grad((v: tf.Tensor) => tf.sum(tf.mul(tf.transpose(v, [0, 3, 1, 2]), T([3, 6, 4, 5], 805))))(
        T([3, 4, 5, 6], 806),
      ),
    "transpose grad",
  );
});

for (const cp of CONV_PATHS) {
  Deno.test({
    name: `native fused layer norm (${cp.path === "oneDNN" ? "oneDNN" : "JS"}): output and gradients equal ` +
      "TF.js-layers' LayerNormalization",
    ignore: cp.ignore,
  }, async () => {
    useDnnl(cp.dnnl);
    await layerNormCase();
    if (cp.dnnl) {
      const keys = nativeDnnl()!.primitives();
      assert.ok(
        keys.some((k) => k.startsWith("ln|")) && keys.some((k) => k.startsWith("ln_bwd|")),
        "oneDNN ran",
      );
    }
    useDnnl(true);
  });
}

async function layerNormCase() {
  for (const shape of [[2, 3, 4, 8], [5, 6], [2, 3, 7], [2, 6, 6, 96]]) {
    const c = shape[shape.length - 1];
    const run = () => {
      const layer = tfl.layers.layerNormalization({ axis: -1, epsilon: 1e-6 });
      layer.build(shape);
      layer.setWeights([tf.add(T([c], 1), 1.2), T([c], 2)]);
      const x = tf.add(tf.mul(T(shape, 900), 2), 0.3), w = T(shape, 901);
      const vars = layer.trainableWeights.map((v) => v.read() as tf.Variable);
      const { value, grads } = tf.variableGrads(
        () => tf.sum(tf.mul(tf.square(layer.apply(x) as tf.Tensor), w)),
        vars,
      );
      const dx = tf.grad((v: tf.Tensor) => tf.sum(tf.mul(layer.apply(v) as tf.Tensor, w)))(x);
      const out = [layer.apply(x) as tf.Tensor, value, ...vars.map((v) => grads[v.name]), dx];
      layer.weights.forEach((v) => v.dispose());
      return out;
    };
    await agree("native", run, `layer norm ${shape}`, 1e-4);
  }
  await tf.setBackend("native");
  const layer = tfl.layers.layerNormalization({});
  const x = T([2, 4, 4, 3], 7);
  const prof = await tf.profile(() =>
    tf.tidy(() => tf.grad((v: tf.Tensor) => tf.sum(tf.square(layer.apply(v) as tf.Tensor)))(x))
  );
  const names = prof.kernels.map((k) => k.name);
  assert.ok(names.includes("FerNativeLayerNorm") && !names.includes("FusedBatchNorm"), names.join());
  layer.weights.forEach((v) => v.dispose());
  x.dispose();
}

Deno.test(
  { name: "native add / sub / mul on oneDNN: bit for bit the JS kernels", ignore: !HAS_DNNL },
  async () => {
    // Mixed magnitudes, signed zeros, subnormals, infinities and NaN: float32 add/sub/mul are correctly rounded
    // on both paths, so they must agree exactly (DAZ/FTZ or a fused multiply-add would show here).
    const special = [0, -0, 1e-40, -3e-39, 1e30, -1e-30, Infinity, -Infinity, NaN, 1, 3.4e38, 1.5e-45];
    const V = (shape: number[], seed: number) => {
      const n = shape.reduce((p, q) => p * q, 1);
      const v = rand(n, seed).map((
        x,
        i,
      ) => (i % 7 === 0 ? special[i % special.length] : x * 10 ** ((i % 9) - 4)));
      return tf.tensor(v, shape);
    };
    const cases: [number[], number[]][] = [
      [[512, 96], [96]], // with a matmul: the fused bias below
      [[8, 12, 12, 40], [8, 12, 12, 40]], // same shape
      [[8, 12, 12, 40], [40]], // bias
      [[8, 12, 12, 40], [8, 1, 1, 40]], // squeeze-excite scale
      [[8, 1, 1, 40], [8, 12, 12, 40]], // broadcast first operand
      [[8, 12, 12, 40], []], // scalar
      [[4, 24, 24, 32], [4, 24, 24, 1]], // per-pixel
    ];
    for (const [sa, sb] of cases) {
      const run = () => {
        const a = V(sa, 3), b = V(sb, 4);
        const out = [tf.add(a, b), tf.sub(a, b), tf.mul(a, b)];
        // _FusedMatMul's bias (added in place on oneDNN for large outputs)
        if (sa.length === 2) out.push(tf.fused.matMul({ a: T(sa, 5), b: T([sa[1], sa[1]], 6), bias: b }));
        return out;
      };
      useDnnl(false);
      const js = await runOn("native", run);
      useDnnl(true);
      const fast = await runOn("native", run);
      fast.forEach((f, i) =>
        assertBitsEqual(f, js[i], `${["add", "sub", "mul", "matmul + bias"][i]} ${sa} ${sb}`)
      );
    }
    assert.ok(nativeDnnl()!.primitives().some((k) => k.startsWith("binary|mul|")), "oneDNN binary ran");
  },
);
