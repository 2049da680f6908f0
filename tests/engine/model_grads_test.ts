/**
 * Whole study models, training mode: the native engine's loss and gradients (fused batch norm, SiLU / GELU,
 * layer norm, oneDNN convolutions, pooled buffers) equal the cpu backend's (TF.js's reference kernels and
 * tfjs-layers' own compositions) for every weight, so a model that does not learn on native is a recipe
 * problem, not an engine bug.
 */
import * as tf from "@tensorflow/tfjs-core";
import type * as tfl from "@tensorflow/tfjs-layers";
import { createModel } from "../../lib/models/registry.ts";
import { crossEntropy } from "../../lib/bench/nets.ts";
import { NATIVE, rand } from "./helpers.ts";

/** Loss, every trainable weight's gradient and the BN moving statistics after one training step, on `backend`. */
async function lossAndGrads(
  backend: string,
  make: () => tfl.LayersModel,
  size: number,
): Promise<Float32Array[]> {
  await tf.setBackend(backend);
  const model = make();
  const batch = 4;
  const x = tf.tensor4d(rand(batch * size * size * 3, 11), [batch, size, size, 3]);
  const y = tf.tensor1d([0, 3, 5, 6], "int32");
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const { value, grads } = tf.variableGrads(
    () => crossEntropy(model.apply(x, { training: true }) as tf.Tensor, y),
    vars,
  );
  const out = [
    Float32Array.from(value.dataSync()),
    ...vars.map((v) => Float32Array.from(grads[v.name].dataSync())),
  ];
  const logits = tf.tidy(() => (model.apply(x, { training: false }) as tf.Tensor).dataSync() as Float32Array);
  out.push(Float32Array.from(logits)); // eval mode after the moving-statistics update
  tf.dispose([x, y, value, ...Object.values(grads)]);
  model.dispose();
  return out;
}

/**
 * Model, input size and tolerance (normwise, relative to each output's largest value). EfficientNet-B3 at
 * initialisation in training mode with batch 4 at 32 px amplifies float32 rounding about 1e5-fold: its initial
 * loss is ~9.5 and the stem gradient ~1.8e4, and with every oneDNN kernel switched off (`FER_DNNL=0`: JS kernels
 * and OpenBLAS only) native and cpu still differ by ~1 % in every gradient (`deno run -A
 * tests/bench/grad_diff.ts efficientnet_b3 32`, with and without FER_DNNL=0: 0.8 % and 1.6 % at most). A wrong
 * term or a missing scale in any kernel moves gradients by far more, which is what this test is for.
 */
const MODELS: [string, number, number][] = [["efficientnet_b3", 32, 5e-2], ["convnext_tiny", 32, 2e-3]];

for (const [name, size, tol] of MODELS) {
  Deno.test({
    name:
      `native: ${name} @${size}, training mode: loss, every gradient and eval logits equal the cpu backend's`,
    ignore: !NATIVE.ok,
  }, async () => {
    // Seeded initialisation, so both backends build the same weights.
    const make = () => createModel(name, { inputShape: [size, size, 3], numClasses: 7, seed: 5 });
    const cpu = await lossAndGrads("cpu", make, size);
    const nat = await lossAndGrads("native", make, size);
    // Some BN shift gradients are zero in exact arithmetic (~1e-8 of the largest gradient here) and pure
    // rounding noise in float32: each output's scale has a floor of 1e-5 of the model's largest gradient.
    const floor = 1e-5 *
      Math.max(...cpu.slice(1, -1).map((g) => g.reduce((m, v) => Math.max(m, Math.abs(v)), 0)));
    cpu.forEach((want, i) => {
      const got = nat[i];
      let scale = floor, err = 0;
      for (let k = 0; k < want.length; k++) {
        scale = Math.max(scale, Math.abs(want[k]));
        err = Math.max(err, Math.abs(got[k] - want[k]));
      }
      if (!(err <= tol * scale)) {
        throw new Error(`${name} output ${i}: max abs err ${err} > ${tol} * ${scale}`);
      }
    });
  });
}
