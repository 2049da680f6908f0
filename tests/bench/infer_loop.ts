// Inference loop for a CPU profiler (dev tool): deno run -A --v8-flags=--prof tests/bench/infer_loop.ts <net> [batch] [reps]
import * as tf from "@tensorflow/tfjs-core";
import { initEngine } from "../../lib/engine/init.ts";
import { createModel } from "../../lib/models/registry.ts";
const [net = "efficientnet_b3@48", bs = "256", reps = "6"] = Deno.args;
await initEngine("native");
const [name, size] = net.split("@");
const model = createModel(name, { inputShape: [Number(size), Number(size), 3], numClasses: 7 });
const x = tf.randomNormal([Number(bs), Number(size), Number(size), 3]);
const t = performance.now();
for (let i = 0; i < Number(reps); i++) tf.tidy(() => (model.predict(x) as tf.Tensor).dataSync());
console.log(`${((performance.now() - t) / Number(reps)).toFixed(1)} ms/batch`);
