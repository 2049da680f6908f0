// Train a registry model on one fixed batch for N steps, then compare training-mode (batch statistics) and
// eval-mode (moving statistics) logits: they should converge (dev tool for BN debugging):
//   deno run -A tests/bench/bn_eval.ts efficientnet_b3 48 60 [backend]
import * as tf from "@tensorflow/tfjs-core";
import { initEngine } from "../../lib/engine/init.ts";
import { createModel } from "../../lib/models/registry.ts";
import { crossEntropy } from "../../lib/bench/nets.ts";
import { AdamW } from "../../lib/train/optim.ts";
const [name = "efficientnet_b3", s = "48", n = "60", backend = "native"] = Deno.args;
await initEngine(backend);
const size = Number(s);
const model = createModel(name, { inputShape: [size, size, 3], numClasses: 7, seed: 1 });
const x = tf.randomNormal([32, size, size, 3], 0, 1, "float32", 3);
const y = tf.tensor1d(Array.from({ length: 32 }, (_, i) => i % 7), "int32");
const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
const opt = new AdamW(vars, { lr: 1e-3 });
for (let i = 0; i <= Number(n); i++) {
  if (i % 10 === 0) {
    const [lt, le] = tf.tidy(() => [
      crossEntropy(model.apply(x, { training: true }) as tf.Tensor, y).dataSync()[0],
      crossEntropy(model.apply(x, { training: false }) as tf.Tensor, y).dataSync()[0],
    ]);
    const bn = model.getLayer("bn1").getWeights(); // stem BN: gamma, beta, moving mean, moving variance
    const mm = bn[2].dataSync(), mv = bn[3].dataSync();
    console.log(
      `step ${i}: loss train-mode ${lt.toFixed(3)} eval-mode ${le.toFixed(3)}  bn1 moving mean[0..2] ${
        Array.from(mm.slice(0, 3)).map((v) => v.toFixed(3))
      } var[0..2] ${Array.from(mv.slice(0, 3)).map((v) => v.toFixed(3))}`,
    );
  }
  const { value, grads } = tf.variableGrads(
    () => crossEntropy(model.apply(x, { training: true }) as tf.Tensor, y),
    vars,
  );
  opt.step(grads);
  tf.dispose([value, ...Object.values(grads)]);
}
