/**
 * How the outputs of test-time views become one prediction: the mean of the views' softmax probabilities, or the
 * softmax of their mean logits. Plain arrays and no runtime imports, so that the CLI, the evaluation and the face pipeline
 * of the browser demo (lib/faces/pipeline.ts) combine views with the same code.
 */

import type { TtaMode } from "../data/views.ts";

/** How the views' outputs are combined. */
export type TtaAverage = "prob" | "logit";

/** TTA settings: the views (lib/data/views.ts) and how their outputs are averaged. */
export type TtaSpec = { mode: TtaMode; average: TtaAverage };

/** No TTA: the single centre view (the run's own evaluation transform). */
export const NO_TTA: TtaSpec = { mode: "none", average: "prob" };

/**
 * Combines per-view outputs `[views][n·c]` (logits) into probabilities `n·c`: the mean of the views'
 * softmaxes (`prob`) or the softmax of the mean logits (`logit`). Plain arrays: the averaging is checked
 * against hand-computed values in tests/eval/combine_test.ts.
 */
export function averageViews(logits: Float32Array[], c: number, average: TtaAverage): Float32Array {
  if (logits.length === 0) throw new RangeError("no views to average");
  const len = logits[0].length;
  const out = new Float32Array(len);
  const softmaxInto = (src: ArrayLike<number>, dst: Float64Array, at: number) => {
    let m = -Infinity;
    for (let k = 0; k < c; k++) m = Math.max(m, src[at + k]);
    let s = 0;
    for (let k = 0; k < c; k++) s += dst[k] = Math.exp(src[at + k] - m);
    for (let k = 0; k < c; k++) dst[k] /= s;
  };
  const p = new Float64Array(c);
  for (let at = 0; at < len; at += c) {
    if (average === "logit") {
      const mean = new Float64Array(c);
      for (const v of logits) for (let k = 0; k < c; k++) mean[k] += v[at + k] / logits.length;
      softmaxInto(mean, p, 0);
      for (let k = 0; k < c; k++) out[at + k] = p[k];
    } else {
      const acc = new Float64Array(c);
      for (const v of logits) {
        softmaxInto(v, p, at);
        for (let k = 0; k < c; k++) acc[k] += p[k] / logits.length;
      }
      for (let k = 0; k < c; k++) out[at + k] = acc[k];
    }
  }
  return out;
}
