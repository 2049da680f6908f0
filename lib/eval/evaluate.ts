/**
 * A model on a split, in inference mode: mean loss, accuracy and, on request, each image's predicted class and
 * class probabilities (what training's validation and test passes and `evaluate <run>` compute).
 */
import * as tf from "@tensorflow/tfjs-core";
import type * as tfl from "@tensorflow/tfjs-layers";
import type { Transform } from "../data/augment.ts";
import { batches, type Split } from "../data/dataset.ts";
import type { LossFn } from "../train/losses.ts";
import { forInference } from "../models/fold.ts";

/**
 * Loss, accuracy (and with `keep`, predictions and probabilities) of a model on a split, in eval mode. Values
 * are read back once per batch, asynchronously (GPU backends cannot read synchronously under Deno). On CPU
 * backends the batch norms are folded into their convolutions first (lib/models/fold.ts).
 */
export async function evaluate(
  model: tfl.LayersModel,
  split: Split,
  transform: Transform,
  lossFn: LossFn,
  batchSize: number,
  keep = false,
): Promise<{ loss: number; accuracy: number; preds?: Int32Array; probs?: Float32Array }> {
  const n = split.labels.length;
  const c = model.outputs[0].shape[1] as number;
  const preds = keep ? new Int32Array(n) : undefined;
  const probs = keep ? new Float32Array(n * c) : undefined;
  let lossSum = 0;
  let correct = 0;
  let at = 0;
  const inf = forInference(model);
  try {
    for (const { x, y } of batches(split, { batchSize, shuffle: false })) {
      const [l, p, pr] = tf.tidy(() => {
        const logits = inf.model.apply(transform(x), { training: false }) as tf.Tensor;
        return [lossFn(logits, y), tf.argMax(logits, 1), tf.softmax(logits)];
      });
      const b = y.shape[0];
      lossSum += (await l.data())[0] * b;
      const pv = await p.data();
      const yv = await y.data();
      for (let i = 0; i < b; i++) if (pv[i] === yv[i]) correct++;
      if (preds && probs) {
        preds.set(pv, at);
        probs.set(await pr.data(), at * c);
      }
      at += b;
      tf.dispose([x, y, l, p, pr]);
    }
  } finally {
    inf.release();
  }
  return { loss: n ? lossSum / n : NaN, accuracy: n ? correct / n : NaN, preds, probs };
}
