// Time the native conv kernels on the reference net's layer shapes, batch 64 (dev tool).
import * as tf from "@tensorflow/tfjs-core";
import { initEngine } from "../../lib/engine/init.ts";
await initEngine(Deno.args[0] ?? "native");
const layers: [number, number, number][] = [
  [48, 1, 64],
  [48, 64, 64],
  [24, 64, 128],
  [24, 128, 128],
  [12, 128, 256],
  [12, 256, 256],
  [6, 256, 512],
  [6, 512, 512],
];
for (const [hw, c, co] of layers) {
  const x = tf.randomNormal([64, hw, hw, c]) as tf.Tensor4D,
    w = tf.randomNormal([3, 3, c, co]) as tf.Tensor4D;
  const dy = tf.randomNormal([64, hw, hw, co]) as tf.Tensor4D;
  const gf = 2 * 64 * hw * hw * 9 * c * co / 1e9;
  const time = (f: () => tf.Tensor) => {
    f().dispose();
    const t = performance.now();
    f().dispose();
    return performance.now() - t;
  };
  const a = time(() => tf.conv2d(x, w, 1, "same"));
  const b = time(() => tf.conv2dTranspose(dy, w, x.shape, 1, "same"));
  const cc = time(() =>
    tf.backend_util &&
    tf.engine().runKernel("Conv2DBackpropFilter", { x, dy }, {
      strides: 1,
      pad: "same",
      dataFormat: "NHWC",
      filterShape: [3, 3, c, co],
    }) as tf.Tensor
  );
  console.log(
    `${hw}x${hw} ${c}->${co}: fwd ${a.toFixed(0)} ms (${(gf / a * 1e3).toFixed(1)} GF/s)  bwdIn ${
      b.toFixed(0)
    } ms (${(gf / b * 1e3).toFixed(1)})  bwdW ${cc.toFixed(0)} ms (${(gf / cc * 1e3).toFixed(1)})`,
  );
  tf.dispose([x, w, dy]);
}
