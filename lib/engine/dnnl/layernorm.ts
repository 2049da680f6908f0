/**
 * oneDNN layer normalization over the last axis (rows of C values), forward and backward, with scale and shift.
 *
 * The backward primitive needs the forward's row statistics; TF.js's gradient receives only x, dy and gamma,
 * so the backward method first runs the training forward (into per-geometry scratch) for mean and variance.
 * Statistics are float32 here (the JS kernel accumulates in float64), so results agree with it to rounding,
 * not bit for bit; the models that use layer norm (ConvNeXt) are not part of `deno task start`.
 */
import {
  ARG_DIFF_DST,
  ARG_DIFF_SCALE,
  ARG_DIFF_SHIFT,
  ARG_DIFF_SRC,
  ARG_DST,
  ARG_MEAN,
  ARG_SCALE,
  ARG_SHIFT,
  ARG_SRC,
  ARG_VARIANCE,
  BACKWARD,
  BN_USE_SCALE,
  BN_USE_SHIFT,
  FORWARD_INFERENCE,
  FORWARD_TRAINING,
  TAG_A,
  TAG_AB,
} from "./abi.ts";
import { type Alloc, type DnnlCore, fresh } from "./core.ts";

const FLAGS = BN_USE_SCALE | BN_USE_SHIFT;

/** The layer-norm methods of the engine's oneDNN handle (each null when oneDNN refuses the case). */
export function layerNormPrimitives(core: DnnlCore) {
  const { s, md, plain, pdOf, run, zeros } = core;
  const descs = (rows: number, c: number) => ({
    d: md([rows, c], TAG_AB),
    st: md([rows], TAG_A),
    cd: md([c], TAG_A),
  });
  const fwdInit = (prop: number, d: Uint8Array, st: Uint8Array, eps: number) => (op: Uint8Array) =>
    s.dnnl_layer_normalization_forward_desc_init(op, prop, d, st, eps, FLAGS);
  const scratch = new Map<string, { y: Float32Array; mean: Float32Array; variance: Float32Array }>();

  return {
    /** y = (x - mean) / sqrt(var + eps) * gamma + beta per row of `c` values (every output element written). */
    layerNorm(
      x: Float32Array,
      c: number,
      gamma: Float32Array,
      beta: Float32Array,
      eps: number,
      alloc: Alloc = fresh,
    ): Float32Array | null {
      const rows = x.length / c;
      const p = plain(`ln|${rows}|${c}|${eps}`, () => {
        const { d, st, cd } = descs(rows, c);
        return {
          init: fwdInit(FORWARD_INFERENCE, d, st, eps),
          args: [[ARG_SRC, d], [ARG_DST, d], [ARG_SCALE, cd], [ARG_SHIFT, cd]],
        };
      });
      if (!p) return null;
      const y = alloc(x.length);
      run(p, new Map([[ARG_SRC, x], [ARG_DST, y], [ARG_SCALE, gamma], [ARG_SHIFT, beta]]));
      return y;
    },
    /** dx, dgamma, dbeta from x, dy and gamma (the statistics recomputed by a training forward). */
    layerNormBackward(
      x: Float32Array,
      c: number,
      dy: Float32Array,
      gamma: Float32Array,
      eps: number,
      alloc: Alloc = fresh,
    ): { dx: Float32Array; dgamma: Float32Array; dbeta: Float32Array } | null {
      const rows = x.length / c;
      const fwd = plain(`ln_train|${rows}|${c}|${eps}`, () => {
        const { d, st, cd } = descs(rows, c);
        return {
          init: fwdInit(FORWARD_TRAINING, d, st, eps),
          args: [[ARG_SRC, d], [ARG_DST, d], [ARG_MEAN, st], [ARG_VARIANCE, st], [ARG_SCALE, cd], [
            ARG_SHIFT,
            cd,
          ]],
        };
      });
      const bwd = plain(`ln_bwd|${rows}|${c}|${eps}`, () => {
        const { d, st, cd } = descs(rows, c);
        return {
          init: (op) => s.dnnl_layer_normalization_backward_desc_init(op, BACKWARD, d, d, st, eps, FLAGS),
          args: [
            [ARG_SRC, d],
            [ARG_DIFF_DST, d],
            [ARG_MEAN, st],
            [ARG_VARIANCE, st],
            [ARG_SCALE, cd],
            [ARG_SHIFT, cd],
            [ARG_DIFF_SRC, d],
            [ARG_DIFF_SCALE, cd],
            [ARG_DIFF_SHIFT, cd],
          ],
          hint: pdOf(fwdInit(FORWARD_TRAINING, d, st, eps)),
        };
      });
      if (!fwd || !bwd) return null;
      const key = `${rows}|${c}`;
      let t = scratch.get(key);
      if (!t) {
        t = { y: new Float32Array(x.length), mean: new Float32Array(rows), variance: new Float32Array(rows) };
        scratch.set(key, t);
      }
      const shift = zeros(c); // the forward needs a shift; the statistics do not depend on it
      run(
        fwd,
        new Map([[ARG_SRC, x], [ARG_DST, t.y], [ARG_MEAN, t.mean], [ARG_VARIANCE, t.variance], [
          ARG_SCALE,
          gamma,
        ], [
          ARG_SHIFT,
          shift,
        ]]),
      );
      const dx = alloc(x.length), dgamma = new Float32Array(c), dbeta = new Float32Array(c);
      run(
        bwd,
        new Map([
          [ARG_SRC, x],
          [ARG_DIFF_DST, dy],
          [ARG_MEAN, t.mean],
          [ARG_VARIANCE, t.variance],
          [ARG_SCALE, gamma],
          [ARG_SHIFT, shift],
          [ARG_DIFF_SRC, dx],
          [ARG_DIFF_SCALE, dgamma],
          [ARG_DIFF_SHIFT, dbeta],
        ]),
      );
      return { dx, dgamma, dbeta };
    },
  };
}
