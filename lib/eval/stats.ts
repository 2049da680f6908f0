/**
 * Uncertainty and significance for evaluation results: percentile-bootstrap confidence intervals for
 * accuracy and macro-F1, and McNemar's test between two runs' predictions on the same items.
 *
 * simple-statistics supplies the percentile (`quantileSorted`, numpy's default linear method) and
 * `gammaln`. The binomial tail and the chi-squared survival function are hand-written: simple-statistics only
 * has `binomialDistribution` (which stops once the cumulative mass is within 1e-4 of 1 and builds cells from
 * an approximate log-gamma) and a table of chi-squared critical values plus a 1e-7-accurate `errorFunction`;
 * p-values need full precision far into the tails.
 */
import { gammaln, quantileSorted } from "simple-statistics";
import { confusionMatrix, macroF1FromCounts } from "./metrics.ts";
import { mulberry32 } from "../util/rng.ts";

/** A point estimate with a two-sided confidence interval. */
export type Interval = { estimate: number; lower: number; upper: number };

/** Options for the bootstrap. */
export type BootstrapOptions = {
  /** Number of bootstrap resamples (default 1000). */
  resamples?: number;
  /** Seed of the mulberry32 generator that draws the resamples (default 0). */
  seed?: number;
  /** Confidence level of the interval (default 0.95). */
  level?: number;
};

/** Bootstrap confidence intervals for accuracy and macro-F1, with the settings that produced them. */
export type BootstrapResult = {
  accuracy: Interval;
  macro_f1: Interval;
  level: number;
  resamples: number;
  seed: number;
  method: "percentile";
};

/**
 * Accuracy and macro-F1 (over all `numClasses` classes, zero_division=0 as in lib/eval/metrics.ts) of each
 * bootstrap resample. Resample b draws n item indices `floor(u * n)` with u from `mulberry32(seed)`, in
 * order; the sequence is the same on every platform (tests/fixtures/metrics/make_stats.py replays it).
 */
export function bootstrapResamples(
  yTrue: ArrayLike<number>,
  yPred: ArrayLike<number>,
  numClasses: number,
  { resamples = 1000, seed = 0 }: Pick<BootstrapOptions, "resamples" | "seed"> = {},
): { accuracy: Float64Array; macro_f1: Float64Array } {
  confusionMatrix(yTrue, yPred, numClasses); // validates lengths and class indices
  const n = yTrue.length;
  if (n === 0) throw new RangeError("bootstrap needs at least one item");
  if (!Number.isInteger(resamples) || resamples < 1) throw new RangeError(`bad resamples ${resamples}`);
  const rand = mulberry32(seed);
  const accuracy = new Float64Array(resamples);
  const macro = new Float64Array(resamples);
  const tp = new Int32Array(numClasses);
  const predicted = new Int32Array(numClasses);
  const support = new Int32Array(numClasses);
  for (let b = 0; b < resamples; b++) {
    tp.fill(0);
    predicted.fill(0);
    support.fill(0);
    let correct = 0;
    for (let i = 0; i < n; i++) {
      const j = Math.floor(rand() * n);
      const t = yTrue[j];
      const p = yPred[j];
      support[t]++;
      predicted[p]++;
      if (t === p) {
        tp[t]++;
        correct++;
      }
    }
    accuracy[b] = correct / n;
    macro[b] = macroF1FromCounts(tp, predicted, support);
  }
  return { accuracy, macro_f1: macro };
}

/** Percentile interval of `values` at `level` (quantiles (1-level)/2 and 1-(1-level)/2, linear method). */
export function percentileInterval(
  values: ArrayLike<number>,
  level: number,
): { lower: number; upper: number } {
  if (!(level > 0 && level < 1)) throw new RangeError(`bad confidence level ${level}`);
  const sorted = Array.from(values).sort((a, b) => a - b);
  const alpha = (1 - level) / 2;
  return { lower: quantileSorted(sorted, alpha), upper: quantileSorted(sorted, 1 - alpha) };
}

/**
 * Percentile-bootstrap confidence intervals for accuracy and macro-F1 (seeded, so repeatable). The
 * estimates are the full-sample values.
 */
export function bootstrapCI(
  yTrue: ArrayLike<number>,
  yPred: ArrayLike<number>,
  numClasses: number,
  { resamples = 1000, seed = 0, level = 0.95 }: BootstrapOptions = {},
): BootstrapResult {
  const m = confusionMatrix(yTrue, yPred, numClasses);
  const tp = m.map((r, k) => r[k]);
  const predicted = m.map((_, k) => m.reduce((a, r) => a + r[k], 0));
  const support = m.map((r) => r.reduce((a, v) => a + v, 0));
  const samples = bootstrapResamples(yTrue, yPred, numClasses, { resamples, seed });
  return {
    accuracy: {
      estimate: tp.reduce((a, v) => a + v, 0) / yTrue.length,
      ...percentileInterval(samples.accuracy, level),
    },
    macro_f1: {
      estimate: macroF1FromCounts(tp, predicted, support),
      ...percentileInterval(samples.macro_f1, level),
    },
    level,
    resamples,
    seed,
    method: "percentile",
  };
}

/**
 * Regularized upper incomplete gamma function Q(a, x) = Γ(a, x) / Γ(a), by its series (x < a + 1) or
 * continued fraction (Numerical Recipes' gser/gcf, modified Lentz), to about machine precision.
 */
export function gammaQ(a: number, x: number): number {
  if (!(a > 0) || !(x >= 0)) throw new RangeError(`gammaQ(${a}, ${x}) is undefined`);
  if (x === 0) return 1;
  if (x === Infinity) return 0;
  const EPS = 1e-17;
  const TINY = 1e-300;
  const logPrefix = -x + a * Math.log(x) - gammaln(a);
  if (x < a + 1) {
    let ap = a;
    let del = 1 / a;
    let sum = del;
    for (let i = 0; i < 10000; i++) {
      ap += 1;
      del *= x / ap;
      sum += del;
      if (Math.abs(del) < Math.abs(sum) * EPS) break;
    }
    return 1 - sum * Math.exp(logPrefix);
  }
  let b = x + 1 - a;
  let c = 1 / TINY;
  let d = 1 / b;
  let h = d;
  for (let i = 1; i < 10000; i++) {
    const an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (Math.abs(d) < TINY) d = TINY;
    c = b + an / c;
    if (Math.abs(c) < TINY) c = TINY;
    d = 1 / d;
    const del = d * c;
    h *= del;
    if (Math.abs(del - 1) < EPS) break;
  }
  return Math.exp(logPrefix) * h;
}

/** Survival function P(X > x) of the chi-squared distribution with `df` degrees of freedom. */
export function chiSquaredSf(x: number, df: number): number {
  if (!(df > 0)) throw new RangeError(`bad degrees of freedom ${df}`);
  return x <= 0 ? 1 : gammaQ(df / 2, x / 2);
}

/**
 * P(X <= k) for X ~ Binomial(n, 1/2), computed exactly with integers (BigInt) and rounded once to a double.
 */
export function binomialHalfCdf(k: number, n: number): number {
  if (!Number.isInteger(n) || n < 0 || !Number.isInteger(k)) {
    throw new RangeError(`bad binomial (${k}, ${n})`);
  }
  if (k < 0) return 0;
  if (k >= n) return 1;
  let term = 1n; // C(n, 0)
  let sum = 1n;
  for (let i = 1; i <= k; i++) {
    term = (term * BigInt(n - i + 1)) / BigInt(i);
    sum += term;
  }
  // sum / 2^n: keep sum's top 80 bits (Number() rounds them to nearest), then divide by powers of two
  // (exact unless the result is subnormal), so 2^n never overflows a double.
  const drop = Math.max(0, sum.toString(2).length - 80);
  let v = Number(sum >> BigInt(drop));
  let e = n - drop;
  for (; e > 1000; e -= 1000) v /= 2 ** 1000;
  return v / 2 ** e;
}

/** McNemar's test result. `b`: items only run A got right; `c`: items only run B got right. */
export type McNemarResult = {
  b: number;
  c: number;
  /** "exact": min(b, c) (the binomial count); "chi2": (max(0, |b - c| - 1))^2 / (b + c). */
  statistic: number;
  pValue: number;
  method: "exact" | "chi2";
};

/** Options for McNemar's test. */
export type McNemarOptions = {
  /** Use the exact binomial test when b + c is below this (default 25), else chi-squared. */
  exactBelow?: number;
};

/**
 * McNemar's test from the discordant counts. With b + c < exactBelow: exact two-sided binomial test,
 * p = min(1, 2 P(X <= min(b, c))), X ~ Bin(b + c, 1/2). Otherwise the chi-squared test with Yates'
 * continuity correction, statistic (max(0, |b - c| - 1))^2 / (b + c) on 1 degree of freedom. (statsmodels
 * omits the max(0, ·) and so gives 1/(b + c) instead of 0 when b = c; otherwise the two agree.) b = c = 0
 * gives statistic 0 and p = 1.
 */
export function mcnemarFromCounts(
  b: number,
  c: number,
  { exactBelow = 25 }: McNemarOptions = {},
): McNemarResult {
  for (const v of [b, c]) {
    if (!Number.isInteger(v) || v < 0) {
      throw new RangeError(`McNemar counts must be non-negative integers: ${v}`);
    }
  }
  const n = b + c;
  if (n < exactBelow) {
    const k = Math.min(b, c);
    return {
      b,
      c,
      statistic: k,
      pValue: n === 0 ? 1 : Math.min(1, 2 * binomialHalfCdf(k, n)),
      method: "exact",
    };
  }
  const d = Math.max(0, Math.abs(b - c) - 1);
  const statistic = (d * d) / n;
  return { b, c, statistic, pValue: chiSquaredSf(statistic, 1), method: "chi2" };
}

/**
 * McNemar's test between two runs' predictions (`predA`, `predB`) on the same items with labels `yTrue`:
 * b counts items A got right and B wrong, c items B got right and A wrong.
 */
export function mcnemar(
  yTrue: ArrayLike<number>,
  predA: ArrayLike<number>,
  predB: ArrayLike<number>,
  opts: McNemarOptions = {},
): McNemarResult {
  if (predA.length !== yTrue.length || predB.length !== yTrue.length) {
    throw new RangeError(
      `McNemar needs predictions for the same items: ${yTrue.length} labels, ${predA.length} and ${predB.length} predictions`,
    );
  }
  let b = 0;
  let c = 0;
  for (let i = 0; i < yTrue.length; i++) {
    const a = predA[i] === yTrue[i];
    const bb = predB[i] === yTrue[i];
    if (a && !bb) b++;
    else if (bb && !a) c++;
  }
  return mcnemarFromCounts(b, c, opts);
}
