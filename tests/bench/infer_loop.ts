// Inference reps of a registry model, one line per rep (dev tool; also usable under a CPU profiler):
//   deno run -A tests/bench/infer_loop.ts <model>@<size> [batch] [reps] [train steps first]
import * as tf from "@tensorflow/tfjs-core";
import { initEngine } from "../../lib/engine/init.ts";
import { netByName } from "./net_by_name.ts";
import { syntheticTraining } from "../../lib/bench/nets.ts";
const [net = "efficientnet_b3@48", bs = "256", reps = "6", trainSteps = "0"] = Deno.args;
await initEngine("native");
const model = netByName(net);
const [, size = "48"] = net.split("@");
if (Number(trainSteps) > 0) {
  const { step, dispose } = syntheticTraining(model, Number(bs));
  for (let i = 0; i < Number(trainSteps); i++) await step();
  dispose();
}
const x = tf.randomNormal([Number(bs), Number(size), Number(size), 3]);
for (let i = 0; i < Number(reps); i++) {
  const t = performance.now();
  tf.tidy(() => (model.predict(x, { batchSize: Number(bs) }) as tf.Tensor).dataSync());
  console.log(`rep ${i + 1}: ${(performance.now() - t).toFixed(0)} ms`);
}
