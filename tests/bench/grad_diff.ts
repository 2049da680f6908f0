// Per-weight gradient differences between the native and cpu backends for a registry model (dev tool):
//   deno run -A tests/bench/grad_diff.ts efficientnet_b3 32
import * as tf from "@tensorflow/tfjs-core";
import { initEngine } from "../../lib/engine/init.ts";
import { createModel } from "../../lib/models/registry.ts";
import { crossEntropy } from "../../lib/bench/nets.ts";
import { rand } from "../engine/helpers.ts";
const [name = "efficientnet_b3", s = "32"] = Deno.args;
const size = Number(s);
await initEngine("native");
async function run(backend: string) {
  await tf.setBackend(backend);
  const model = createModel(name, { inputShape: [size, size, 3], numClasses: 7, seed: 5 });
  const x = tf.tensor4d(rand(4 * size * size * 3, 11), [4, size, size, 3]);
  const y = tf.tensor1d([0, 3, 5, 6], "int32");
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const { value, grads } = tf.variableGrads(
    () => crossEntropy(model.apply(x, { training: true }) as tf.Tensor, y),
    vars,
  );
  const names = model.trainableWeights.map((w) => w.name);
  return {
    loss: value.dataSync()[0],
    names,
    g: vars.map((v) => Float32Array.from(grads[v.name].dataSync())),
  };
}
const c = await run("cpu");
const n = await run("native");
console.log("loss", c.loss, n.loss);
c.g.forEach((gc, i) => {
  let d = 0, m = 0;
  for (let k = 0; k < gc.length; k++) {
    d = Math.max(d, Math.abs(gc[k] - n.g[i][k]));
    m = Math.max(m, Math.abs(gc[k]));
  }
  console.log(
    `${String(i).padStart(3)} ${c.names[i].padEnd(40)} max|g| ${m.toExponential(2)}  rel ${
      (d / m).toExponential(2)
    }`,
  );
});
