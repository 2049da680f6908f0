import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import "@tensorflow/tfjs-backend-cpu";
import {
  dropPath,
  LayerScale,
  pyRound,
  type SymTensor,
  torchNameMap,
  torchPad,
} from "../../lib/models/layers.ts";

await tf.setBackend("cpu");

Deno.test("layers: dropPath drops whole samples in training, scales kept ones, identity at inference", () => {
  const inp = tfl.input({ shape: [3, 3, 2] });
  const m = tfl.model({ inputs: inp, outputs: dropPath(inp, 0.5, "dp") });
  try {
    tf.tidy(() => {
      const x = tf.ones([200, 3, 3, 2]);
      const y = tf.reshape(m.apply(x, { training: true }) as tf.Tensor, [200, 18]).arraySync() as number[][];
      let kept = 0;
      for (const row of y) {
        assert.ok(row.every((v) => v === row[0]) && (row[0] === 0 || row[0] === 2), `row ${row}`);
        if (row[0] === 2) kept++;
      }
      assert.ok(kept > 60 && kept < 140, `kept ${kept}/200`);
      assert.deepEqual((m.predict(x) as tf.Tensor).dataSync(), x.dataSync());
    });
  } finally {
    m.dispose();
  }
  assert.equal(dropPath(inp, 0, "none"), inp);
});

Deno.test("layers: torchPad gives PyTorch output sizes and symmetric padding for stride 2", () => {
  for (const [n, k] of [[224, 3], [35, 3], [18, 5], [17, 5]]) {
    const inp = tfl.input({ shape: [n, n, 1] });
    const p = torchPad(inp, k, 2, "pad");
    const y = tfl.layers.conv2d({ filters: 1, kernelSize: k, strides: 2, padding: p.padding, useBias: false })
      .apply(p.x) as SymTensor;
    const pad = Math.floor(k / 2);
    assert.deepEqual(y.shape, [
      null,
      Math.floor((n + 2 * pad - k) / 2) + 1,
      Math.floor((n + 2 * pad - k) / 2) + 1,
      1,
    ]);
  }
  // value check: a 3x3/2 box filter on a 4x4 ramp with zero padding 1 on every side (as torch computes it)
  const inp = tfl.input({ shape: [4, 4, 1] });
  const p = torchPad(inp, 3, 2, "pad");
  const conv = tfl.layers.conv2d({
    filters: 1,
    kernelSize: 3,
    strides: 2,
    padding: p.padding,
    useBias: false,
    kernelInitializer: "ones",
  });
  const m = tfl.model({ inputs: inp, outputs: conv.apply(p.x) as SymTensor });
  const out = tf.tidy(
    () => [...(m.predict(tf.reshape(tf.range(0, 16), [1, 4, 4, 1])) as tf.Tensor).dataSync()],
  );
  // each output sums the window of rows/cols 2i-1..2i+1 (zero outside): 0+1+4+5, 1+2+3+5+6+7, ...
  assert.deepEqual(out, [10, 24, 51, 90]); // TF "same" (pad 0 before, 1 after) would give 45 first
  m.dispose();
});

Deno.test("layers: LayerScale multiplies channels by gamma and serializes", () => {
  const inp = tfl.input({ shape: [2, 3] });
  const ls = new LayerScale({ initValue: 0.5, name: "stages.0.blocks.0.gamma" });
  const m = tfl.model({ inputs: inp, outputs: ls.apply(inp) as SymTensor });
  try {
    ls.setWeights([tf.tensor1d([1, 2, 3])]);
    const y = tf.tidy(() => [...(m.predict(tf.ones([1, 2, 3])) as tf.Tensor).dataSync()]);
    assert.deepEqual(y, [1, 2, 3, 1, 2, 3]);
    const map = torchNameMap(m);
    assert.deepEqual(map.map((e) => [e.torchName, e.kind]), [["stages.0.blocks.0.gamma", "param"]]);
    const cfg = ls.getConfig();
    assert.equal(cfg.initValue, 0.5);
    const cls = tf.serialization.SerializationMap.getMap().classNameMap["LayerScale"];
    assert.ok(cls, "LayerScale is registered");
  } finally {
    m.dispose();
  }
});

Deno.test("layers: pyRound rounds half to even like Python", () => {
  assert.deepEqual([0.5, 1.5, 2.5, 3.49, 6, 5.5].map(pyRound), [0, 2, 2, 3, 6, 6]);
});

Deno.test("layers: torchNameMap refuses layers it does not know", () => {
  const inp = tfl.input({ shape: [4] });
  const m = tfl.model({ inputs: inp, outputs: tfl.layers.prelu({ name: "act" }).apply(inp) as SymTensor });
  try {
    assert.throws(() => torchNameMap(m), /no torch mapping for layer act of class PReLU/);
  } finally {
    m.dispose();
  }
});
