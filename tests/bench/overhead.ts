// Fixed per-forward overhead of a model (dev tool): wall ms of predict / apply at several batch sizes.
//   deno run -A tests/bench/overhead.ts [net]
import * as tf from "@tensorflow/tfjs-core";
import { initEngine } from "../../lib/engine/init.ts";
import { netByName } from "./net_by_name.ts";
const [net = "convnext"] = Deno.args;
await initEngine("native");
const model = netByName(net);
const shape = model.inputs[0].shape.slice(1) as number[];
for (const b of [1, 8, 32, 256]) {
  const x = tf.randomNormal([b, ...shape]);
  const time = (label: string, f: () => tf.Tensor) => {
    for (let i = 0; i < 3; i++) tf.tidy(() => f().dataSync());
    const reps = Math.max(3, Math.round(64 / b));
    const t = performance.now();
    for (let i = 0; i < reps; i++) tf.tidy(() => f().dataSync());
    const ms = (performance.now() - t) / reps;
    console.log(
      `batch ${String(b).padStart(3)} ${label.padEnd(22)} ${ms.toFixed(2)} ms  ${
        (1000 * b / ms).toFixed(0)
      } img/s`,
    );
  };
  time("predict", () => model.predict(x) as tf.Tensor);
  time(`predict batchSize ${b}`, () => model.predict(x, { batchSize: b }) as tf.Tensor);
  time("apply (no executor)", () => model.apply(x, { training: false }) as tf.Tensor);
  x.dispose();
}
