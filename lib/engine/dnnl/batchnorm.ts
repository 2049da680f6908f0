/** oneDNN batch normalization over channels-last data: training forward and backward, and inference. */
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
  BN_GLOBAL_STATS,
  BN_USE_SCALE,
  BN_USE_SHIFT,
  FORWARD_INFERENCE,
  FORWARD_TRAINING,
  TAG_AB,
  TAG_NHWC,
} from "./abi.ts";
import { type Alloc, type DnnlCore, fresh } from "./core.ts";

/** The batch-norm methods of the engine's oneDNN handle (each null when oneDNN refuses the case). */
export function batchNormPrimitives(core: DnnlCore) {
  const { s, md, plain, flat, pdOf, run, zeros } = core;
  /** Channels-last data as oneDNN NCHW-logical dims with an nhwc / ab tag. */
  const bnData = (shape: number[]) => {
    const c = shape[shape.length - 1];
    const n = shape.reduce((p, q) => p * q, 1) / c;
    return shape.length === 4 ? md([shape[0], c, shape[1], shape[2]], TAG_NHWC) : md([n, c], TAG_AB);
  };
  const BN_FLAGS = BN_USE_SCALE | BN_USE_SHIFT;
  const bnFwd = (d: Uint8Array, eps: number) => (op: Uint8Array) =>
    s.dnnl_batch_normalization_forward_desc_init(op, FORWARD_TRAINING, d, eps, BN_FLAGS);

  return {
    /**
     * Inference batch norm with given statistics (all four per-channel): y = (x - mean) / sqrt(var + eps) *
     * gamma + beta in float32 (every output element written).
     */
    batchNormInference(
      x: Float32Array,
      shape: number[],
      mean: Float32Array,
      variance: Float32Array,
      gamma: Float32Array,
      beta: Float32Array,
      eps: number,
      alloc: Alloc = fresh,
    ): Float32Array | null {
      const c = shape[shape.length - 1];
      const p = plain(`bn_infer|${shape}|${eps}`, () => {
        const d = bnData(shape), cd = flat(c);
        return {
          init: (op) =>
            s.dnnl_batch_normalization_forward_desc_init(
              op,
              FORWARD_INFERENCE,
              d,
              eps,
              BN_FLAGS | BN_GLOBAL_STATS,
            ),
          args: [[ARG_SRC, d], [ARG_DST, d], [ARG_MEAN, cd], [ARG_VARIANCE, cd], [ARG_SCALE, cd], [
            ARG_SHIFT,
            cd,
          ]],
        };
      });
      if (!p) return null;
      const y = alloc(x.length);
      run(
        p,
        new Map([[ARG_SRC, x], [ARG_DST, y], [ARG_MEAN, mean], [ARG_VARIANCE, variance], [ARG_SCALE, gamma], [
          ARG_SHIFT,
          beta,
        ]]),
      );
      return y;
    },
    /**
     * Training batch norm over channels-last `x` ([..., C] flattened; `shape` is TF.js's): y, batch mean and
     * biased variance.
     */
    batchNorm(
      x: Float32Array,
      shape: number[],
      gamma: Float32Array,
      beta: Float32Array,
      eps: number,
      alloc: Alloc = fresh,
    ): { y: Float32Array; mean: Float32Array; variance: Float32Array } | null {
      const c = shape[shape.length - 1];
      const p = plain(`bn|${shape}|${eps}`, () => {
        const d = bnData(shape), cd = flat(c);
        return {
          init: bnFwd(d, eps),
          args: [[ARG_SRC, d], [ARG_DST, d], [ARG_MEAN, cd], [ARG_VARIANCE, cd], [ARG_SCALE, cd], [
            ARG_SHIFT,
            cd,
          ]],
        };
      });
      if (!p) return null;
      const y = alloc(x.length), mean = new Float32Array(c), variance = new Float32Array(c);
      run(
        p,
        new Map([[ARG_SRC, x], [ARG_DST, y], [ARG_MEAN, mean], [ARG_VARIANCE, variance], [ARG_SCALE, gamma], [
          ARG_SHIFT,
          beta,
        ]]),
      );
      return { y, mean, variance };
    },
    /** Its backward: dx, dgamma, dbeta. */
    batchNormBackward(
      x: Float32Array,
      shape: number[],
      dy: Float32Array,
      mean: Float32Array,
      variance: Float32Array,
      gamma: Float32Array,
      eps: number,
      alloc: Alloc = fresh,
    ): { dx: Float32Array; dgamma: Float32Array; dbeta: Float32Array } | null {
      const c = shape[shape.length - 1];
      const p = plain(`bn_bwd|${shape}|${eps}`, () => {
        const d = bnData(shape), cd = flat(c);
        return {
          init: (op) => s.dnnl_batch_normalization_backward_desc_init(op, BACKWARD, d, d, eps, BN_FLAGS),
          args: [
            [ARG_SRC, d],
            [ARG_DIFF_DST, d],
            [ARG_MEAN, cd],
            [ARG_VARIANCE, cd],
            [ARG_SCALE, cd],
            [ARG_SHIFT, cd],
            [ARG_DIFF_SRC, d],
            [ARG_DIFF_SCALE, cd],
            [ARG_DIFF_SHIFT, cd],
          ],
          hint: pdOf(bnFwd(d, eps)),
        };
      });
      if (!p) return null;
      const dx = alloc(x.length), dgamma = new Float32Array(c), dbeta = new Float32Array(c);
      run(
        p,
        new Map([
          [ARG_SRC, x],
          [ARG_DIFF_DST, dy],
          [ARG_MEAN, mean],
          [ARG_VARIANCE, variance],
          [ARG_SCALE, gamma],
          [ARG_SHIFT, zeros(c)], // unused by the backward pass, but oneDNN 2.x requires it with use_shift
          [ARG_DIFF_SRC, dx],
          [ARG_DIFF_SCALE, dgamma],
          [ARG_DIFF_SHIFT, dbeta],
        ]),
      );
      return { dx, dgamma, dbeta };
    },
  };
}
