import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import {
  binomialHalfCdf,
  bootstrapCI,
  bootstrapResamples,
  chiSquaredSf,
  gammaQ,
  mcnemar,
  mcnemarFromCounts,
  percentileInterval,
} from "../../lib/eval/stats.ts";
import { mulberry32 } from "../../lib/util/rng.ts";

const FIX = new URL("../fixtures/metrics/", import.meta.url);
type Case = { name: string; class_names: string[]; y_true: number[]; y_pred: number[] };
type RawCase = { name: string; class_names: string[]; y_true: string; y_pred: string };
/** The fixture stores labels as strings of class-index digits. */
const cases = new Map<string, Case>(
  (JSON.parse(readFileSync(new URL("cases.json", FIX), "utf8")).cases as RawCase[]).map((c) => [
    c.name,
    { ...c, y_true: Array.from(c.y_true, Number), y_pred: Array.from(c.y_pred, Number) },
  ]),
);
type BootRef = {
  case: string;
  resamples: number;
  seed: number;
  level: number;
  accuracy_first: number[];
  macro_f1_first: number[];
  accuracy_mean: number;
  macro_f1_mean: number;
  accuracy: [number, number];
  macro_f1: [number, number];
  accuracy_estimate: number;
  macro_f1_estimate: number;
};
const refs = JSON.parse(readFileSync(new URL("stats.json", FIX), "utf8")) as {
  bootstrap: BootRef[];
  mcnemar: { b: number; c: number; exact_p: number; chi2_stat?: number; chi2_p?: number }[];
  chi2_sf: { x: number; df: number; sf: number }[];
};

function close(actual: number, expected: number, tol: number, what: string): void {
  assert.ok(Math.abs(actual - expected) <= tol, `${what}: ${actual} != ${expected}`);
}

/** Relative closeness (p-values span many orders of magnitude). */
function rclose(actual: number, expected: number, rtol: number, what: string): void {
  assert.ok(Math.abs(actual - expected) <= rtol * Math.abs(expected), `${what}: ${actual} != ${expected}`);
}

for (const r of refs.bootstrap) {
  Deno.test(`bootstrap replays the Python/sklearn reference: ${r.case} (seed ${r.seed})`, () => {
    const c = cases.get(r.case)!;
    const C = c.class_names.length;
    const s = bootstrapResamples(c.y_true, c.y_pred, C, { resamples: r.resamples, seed: r.seed });
    r.accuracy_first.forEach((v, i) => close(s.accuracy[i], v, 1e-12, `accuracy[${i}]`));
    r.macro_f1_first.forEach((v, i) => close(s.macro_f1[i], v, 1e-12, `macro_f1[${i}]`));
    close(s.accuracy.reduce((a, v) => a + v, 0) / r.resamples, r.accuracy_mean, 1e-12, "accuracy mean");
    close(s.macro_f1.reduce((a, v) => a + v, 0) / r.resamples, r.macro_f1_mean, 1e-12, "macro-F1 mean");
    const ci = bootstrapCI(c.y_true, c.y_pred, C, { resamples: r.resamples, seed: r.seed, level: r.level });
    close(ci.accuracy.lower, r.accuracy[0], 1e-12, "accuracy lower");
    close(ci.accuracy.upper, r.accuracy[1], 1e-12, "accuracy upper");
    close(ci.macro_f1.lower, r.macro_f1[0], 1e-12, "macro-F1 lower");
    close(ci.macro_f1.upper, r.macro_f1[1], 1e-12, "macro-F1 upper");
    close(ci.accuracy.estimate, r.accuracy_estimate, 1e-12, "accuracy estimate");
    close(ci.macro_f1.estimate, r.macro_f1_estimate, 1e-12, "macro-F1 estimate");
    assert.deepEqual([ci.level, ci.resamples, ci.seed, ci.method], [
      r.level,
      r.resamples,
      r.seed,
      "percentile",
    ]);
  });
}

Deno.test("bootstrap is deterministic under a seed and changes with the seed", () => {
  const c = cases.get("fer2013_imbalanced")!;
  const a = bootstrapCI(c.y_true, c.y_pred, 7, { resamples: 200, seed: 5 });
  const b = bootstrapCI(c.y_true, c.y_pred, 7, { resamples: 200, seed: 5 });
  const d = bootstrapCI(c.y_true, c.y_pred, 7, { resamples: 200, seed: 6 });
  assert.deepEqual(a, b);
  assert.notDeepEqual(a.accuracy, d.accuracy);
  // Defaults: 1000 resamples, seed 0, 95%.
  const def = bootstrapCI(c.y_true.slice(0, 500), c.y_pred.slice(0, 500), 7);
  assert.deepEqual([def.resamples, def.seed, def.level], [1000, 0, 0.95]);
});

Deno.test("bootstrap CIs contain the point estimate, are ordered, and narrow with more data", () => {
  const c = cases.get("fer2013_imbalanced")!;
  const full = bootstrapCI(c.y_true, c.y_pred, 7, { resamples: 500, seed: 1 });
  const small = bootstrapCI(c.y_true.slice(0, 300), c.y_pred.slice(0, 300), 7, { resamples: 500, seed: 1 });
  for (const ci of [full, small]) {
    for (const iv of [ci.accuracy, ci.macro_f1]) {
      assert.ok(iv.lower <= iv.estimate && iv.estimate <= iv.upper, JSON.stringify(iv));
      assert.ok(iv.lower < iv.upper);
    }
  }
  const w = (iv: { lower: number; upper: number }) => iv.upper - iv.lower;
  assert.ok(w(full.accuracy) < w(small.accuracy) / 2);
  // Binomial standard error of accuracy: the 95% width is about 2 * 1.96 * sqrt(p(1-p)/n).
  const p = full.accuracy.estimate;
  const expected = 2 * 1.96 * Math.sqrt((p * (1 - p)) / c.y_true.length);
  assert.ok(Math.abs(w(full.accuracy) - expected) < 0.25 * expected, `${w(full.accuracy)} vs ${expected}`);
  // A wider level gives a wider interval from the same resamples.
  const w99 = bootstrapCI(c.y_true, c.y_pred, 7, { resamples: 500, seed: 1, level: 0.99 });
  assert.ok(w(w99.accuracy) > w(full.accuracy));
  // Perfect predictions: every resample is perfect.
  const perfect = cases.get("perfect")!;
  const pci = bootstrapCI(perfect.y_true, perfect.y_pred, 7, { resamples: 100 });
  assert.deepEqual([pci.accuracy.lower, pci.accuracy.upper], [1, 1]);
});

Deno.test("bootstrap rejects bad input", () => {
  assert.throws(() => bootstrapCI([], [], 7), /at least one/);
  assert.throws(() => bootstrapCI([0], [0], 7, { resamples: 0 }), /resamples/);
  assert.throws(() => bootstrapCI([0], [0], 7, { level: 1 }), /level/);
  assert.throws(() => bootstrapCI([0, 1], [0], 7), /2 items/);
  assert.throws(() => bootstrapCI([9], [0], 7), /yTrue\[0\] = 9/);
});

Deno.test("percentileInterval uses numpy's linear method", () => {
  // numpy.quantile(range(1, 11), [0.025, 0.975]) = [1.225, 9.775]
  const iv = percentileInterval([10, 9, 8, 7, 6, 5, 4, 3, 2, 1], 0.95);
  close(iv.lower, 1.225, 1e-12, "lower");
  close(iv.upper, 9.775, 1e-12, "upper");
});

for (const m of refs.mcnemar) {
  Deno.test(`McNemar b=${m.b} c=${m.c} matches the exact / scipy references`, () => {
    const ex = mcnemarFromCounts(m.b, m.c, { exactBelow: Infinity });
    assert.equal(ex.method, "exact");
    assert.equal(ex.statistic, Math.min(m.b, m.c));
    rclose(ex.pValue, m.exact_p, 1e-14, "exact p");
    if (m.chi2_stat !== undefined) {
      const ch = mcnemarFromCounts(m.b, m.c, { exactBelow: 0 });
      assert.equal(ch.method, "chi2");
      close(ch.statistic, m.chi2_stat, 1e-12, "chi2 statistic");
      rclose(ch.pValue, m.chi2_p!, 1e-10, "chi2 p");
    }
    // Default: exact below 25 discordant pairs.
    const def = mcnemarFromCounts(m.b, m.c);
    assert.equal(def.method, m.b + m.c < 25 ? "exact" : "chi2");
    assert.deepEqual([def.b, def.c], [m.b, m.c]);
  });
}

Deno.test("McNemar textbook values", () => {
  // Agresti (2007), presidential approval: b = 150, c = 86; continuity-corrected chi2 = 63^2/236 = 16.82.
  const r = mcnemarFromCounts(150, 86);
  close(r.statistic, 3969 / 236, 1e-12, "statistic");
  assert.ok(r.pValue > 4.1e-5 && r.pValue < 4.12e-5, String(r.pValue));
  // Exact: b = 0, c = 6 -> p = 2 / 64; b = 1, c = 9 -> p = 2 * 11 / 1024.
  assert.equal(mcnemarFromCounts(0, 6).pValue, 2 / 64);
  assert.equal(mcnemarFromCounts(1, 9).pValue, 22 / 1024);
  assert.equal(mcnemarFromCounts(0, 0).pValue, 1);
  assert.equal(mcnemarFromCounts(4, 4).pValue, 1);
  assert.equal(mcnemarFromCounts(30, 30).pValue, 1);
  assert.throws(() => mcnemarFromCounts(-1, 2), /non-negative/);
});

Deno.test("mcnemar counts discordant items from two runs' predictions", () => {
  const yTrue = [0, 1, 2, 3, 4, 5, 6, 0, 1, 2];
  const a = [0, 1, 2, 3, 0, 0, 0, 1, 1, 2]; // right on 0,1,2,3,8,9
  const b = [0, 0, 0, 3, 4, 5, 0, 0, 1, 0]; // right on 0,3,4,5,7,8
  const r = mcnemar(yTrue, a, b);
  assert.deepEqual([r.b, r.c], [3, 3]); // only A: 1,2,9; only B: 4,5,7
  assert.equal(r.pValue, 1);
  // Symmetric: swapping runs swaps b and c and keeps p.
  const rand = mulberry32(3);
  const n = 2000;
  const y = Array.from({ length: n }, () => Math.floor(rand() * 7));
  const pa = y.map((v) => (rand() < 0.7 ? v : Math.floor(rand() * 7)));
  const pb = y.map((v) => (rand() < 0.6 ? v : Math.floor(rand() * 7)));
  const ab = mcnemar(y, pa, pb);
  const ba = mcnemar(y, pb, pa);
  assert.deepEqual([ab.b, ab.c], [ba.c, ba.b]);
  assert.equal(ab.pValue, ba.pValue);
  assert.equal(ab.method, "chi2");
  assert.ok(ab.pValue < 1e-6, `70% vs 60% accurate runs on ${n} items: p = ${ab.pValue}`);
  assert.throws(() => mcnemar([0, 1], [0], [0, 1]), /same items/);
});

Deno.test("chi-squared survival function matches scipy.stats.chi2.sf", () => {
  for (const { x, df, sf } of refs.chi2_sf) rclose(chiSquaredSf(x, df), sf, 1e-12, `chi2.sf(${x}, ${df})`);
  assert.equal(chiSquaredSf(0, 1), 1);
  close(chiSquaredSf(3.841458820694124, 1), 0.05, 1e-14, "5% critical value");
  assert.equal(gammaQ(1, 0), 1);
  close(gammaQ(1, 2), Math.exp(-2), 1e-15, "Q(1, x) = e^-x");
  assert.throws(() => chiSquaredSf(1, 0), /degrees of freedom/);
});

Deno.test("binomialHalfCdf is exact", () => {
  assert.equal(binomialHalfCdf(0, 1), 0.5);
  assert.equal(binomialHalfCdf(2, 4), 11 / 16);
  assert.equal(binomialHalfCdf(-1, 4), 0);
  assert.equal(binomialHalfCdf(4, 4), 1);
  assert.equal(binomialHalfCdf(0, 60), 2 ** -60);
  assert.equal(binomialHalfCdf(0, 2000), 0); // 2^-2000 underflows
  assert.equal(binomialHalfCdf(1, 1010), 1011 * 2 ** -1010); // past the 2^1000 step, still normal
  close(binomialHalfCdf(500, 1001), 0.5, 1e-15, "median of odd n");
});
