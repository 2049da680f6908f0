// Where a training step's time goes outside the kernels (dev tool): forward+backward, the optimizer, disposal.
//   deno run -A tests/bench/step_split.ts [net] [batch] [steps] [adamw|sgd]
import * as tf from "@tensorflow/tfjs-core";
import { initEngine } from "../../lib/engine/init.ts";
import { netByName } from "./net_by_name.ts";
import { AdamW, SGD } from "../../lib/train/optim.ts";
import { crossEntropy } from "../../lib/bench/nets.ts";

const [net = "ref", bs = "64", n = "5", optName = "adamw"] = Deno.args;
console.log(await initEngine("native"));
const model = netByName(net);
const b = Number(bs);
const shape = model.inputs[0].shape.slice(1) as number[];
const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
// sgd: the crop recipe's optimizer (lib/train/experiments.ts)
const opt = optName === "sgd"
  ? new SGD(vars, { lr: 0.05, momentum: 0.9, nesterov: true, weightDecay: 5e-4 })
  : new AdamW(vars, { lr: 1e-3 });
const x = tf.randomNormal([b, ...shape]);
const y = tf.tensor1d(Array.from({ length: b }, (_, i) => i % 7), "int32");
const pool = (tf.backend() as { pool?: { stats: Record<string, number> } }).pool;
for (let s = 0; s < Number(n); s++) {
  const t0 = performance.now();
  const { value, grads } = tf.variableGrads(
    () => crossEntropy(model.apply(x, { training: true }) as tf.Tensor, y),
    vars,
  );
  await value.data();
  const t1 = performance.now();
  opt.step(grads);
  const t2 = performance.now();
  tf.dispose([value, ...Object.values(grads)]);
  const t3 = performance.now();
  console.log(
    `step ${s}: fwd+bwd ${(t1 - t0).toFixed(0)} ms, optimizer ${(t2 - t1).toFixed(0)} ms, dispose ${
      (t3 - t2).toFixed(0)
    } ms, total ${(t3 - t0).toFixed(0)} ms; tensors ${tf.memory().numTensors}; pool ${
      JSON.stringify(pool?.stats)
    }, rss ${(Deno.memoryUsage().rss / 2 ** 20).toFixed(0)} MB`,
  );
}
