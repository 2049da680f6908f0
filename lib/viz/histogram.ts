/**
 * Histogram maths for the pixel-intensity figures.
 *
 * @module
 */

export interface Hist {
  counts: Float64Array;
  total: number;
  mean: number;
  sd: number;
}

/**
 * Histogram over [lo, hi) in `bins` equal bins plus mean/sd, in one pass. Hand-written because the inputs
 * are whole datasets (tens of millions of uint8 values), far too many for Plot's per-datum bin transform.
 */
export function histogram(values: ArrayLike<number>, bins: number, lo: number, hi: number): Hist {
  const counts = new Float64Array(bins);
  const scale = bins / (hi - lo);
  let sum = 0;
  let sumSq = 0;
  let total = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (!Number.isFinite(v)) continue;
    let b = Math.floor((v - lo) * scale);
    if (b < 0) b = 0;
    else if (b >= bins) b = bins - 1;
    counts[b]++;
    sum += v;
    sumSq += v * v;
    total++;
  }
  const mean = total ? sum / total : NaN;
  const sd = total ? Math.sqrt(Math.max(0, sumSq / total - mean * mean)) : NaN;
  return { counts, total, mean, sd };
}
