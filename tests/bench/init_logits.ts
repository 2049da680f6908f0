// Logit scale and cross-entropy at initialisation for a registry model on random inputs (dev tool):
//   deno run -A tests/bench/init_logits.ts efficientnet_b3@48
import * as tf from "@tensorflow/tfjs-core";
import { initEngine } from "../../lib/engine/init.ts";
import { netByName } from "./net_by_name.ts";
const [net = "efficientnet_b3@48"] = Deno.args;
await initEngine("native");
const model = netByName(net);
const [, size = "48"] = net.split("@");
const x = tf.randomNormal([64, Number(size), Number(size), 3]);
const y = tf.oneHot(tf.tensor1d(Array.from({ length: 64 }, (_, i) => i % 7), "int32"), 7);
for (const training of [false, true]) {
  const logits = model.apply(x, { training }) as tf.Tensor;
  const { mean, variance } = tf.moments(logits);
  const ce = tf.losses.softmaxCrossEntropy(y, logits);
  console.log(
    `training=${training}: logits mean ${mean.dataSync()[0].toFixed(3)} std ${
      Math.sqrt(variance.dataSync()[0]).toFixed(3)
    } CE ${ce.dataSync()[0].toFixed(3)} (ln 7 = 1.946)`,
  );
}
