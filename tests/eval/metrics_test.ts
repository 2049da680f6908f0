import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import {
  type ClassificationReport,
  classificationReport,
  confusionMatrix,
  formatConfusionMatrix,
  formatFixed,
  formatReport,
  macroF1FromCounts,
  type Scores,
} from "../../lib/eval/metrics.ts";

type SkScores = { precision: number; recall: number; "f1-score": number; support: number };
/** One golden case written by tests/fixtures/metrics/make_fixtures.py (sklearn 1.2). */
export type GoldenCase = {
  name: string;
  class_names: string[];
  y_true: number[];
  y_pred: number[];
  dict: Record<string, SkScores | number>;
  text2: string;
  text4: string;
  confusion: number[][];
};

const FIX = new URL("../fixtures/metrics/cases.json", import.meta.url);
const raw = JSON.parse(readFileSync(FIX, "utf8")) as {
  sklearn_version: string;
  cases: (Omit<GoldenCase, "y_true" | "y_pred"> & { y_true: string; y_pred: string })[];
};
/** The fixture stores labels as strings of class-index digits. */
const golden = {
  ...raw,
  cases: raw.cases.map((c) => ({
    ...c,
    y_true: Array.from(c.y_true, Number),
    y_pred: Array.from(c.y_pred, Number),
  })),
};

function close(actual: number, expected: number, what: string): void {
  assert.ok(Math.abs(actual - expected) <= 1e-12, `${what}: ${actual} != ${expected}`);
}

function closeScores(actual: Scores, expected: SkScores, what: string): void {
  close(actual.precision, expected.precision, `${what} precision`);
  close(actual.recall, expected.recall, `${what} recall`);
  close(actual.f1, expected["f1-score"], `${what} f1`);
  assert.equal(actual.support, expected.support, `${what} support`);
}

/** Checks a report against sklearn's output_dict (keys, every number to 1e-12). */
export function assertMatchesSklearn(r: ClassificationReport, c: GoldenCase): void {
  const d = c.dict;
  for (const name of c.class_names) closeScores(r.per_class[name], d[name] as SkScores, `${c.name}/${name}`);
  assert.deepEqual(Object.keys(r.per_class), c.class_names);
  closeScores(r.macro_avg, d["macro avg"] as SkScores, `${c.name}/macro`);
  closeScores(r.weighted_avg, d["weighted avg"] as SkScores, `${c.name}/weighted`);
  if ("accuracy" in d) {
    assert.equal(r.micro_avg, undefined, `${c.name}: sklearn prints accuracy, we have micro_avg`);
    close(r.accuracy, d.accuracy as number, `${c.name}/accuracy`);
  } else {
    assert.ok(r.micro_avg, `${c.name}: sklearn prints micro avg`);
    closeScores(r.micro_avg, d["micro avg"] as SkScores, `${c.name}/micro`);
    close(r.accuracy, (d["micro avg"] as SkScores).precision, `${c.name}/accuracy`);
  }
}

Deno.test("golden fixtures cover the required situations", () => {
  const names = golden.cases.map((c) => c.name);
  for (
    const n of [
      "perfect",
      "all_one_class",
      "never_predicted_disgust",
      "absent_from_true_disgust",
      "absent_from_both_disgust",
      "single_item_right",
      "fer2013_imbalanced",
      "decimal_ties",
      "long_class_names",
    ]
  ) assert.ok(names.includes(n), n);
  assert.ok(golden.cases.length >= 25);
  assert.ok(golden.cases.some((c) => "micro avg" in c.dict));
});

for (const c of golden.cases) {
  Deno.test(`classificationReport equals sklearn: ${c.name}`, () => {
    const r = classificationReport(c.y_true, c.y_pred, c.class_names);
    assertMatchesSklearn(r, c);
    assert.deepEqual(confusionMatrix(c.y_true, c.y_pred, c.class_names.length), c.confusion);
  });
  Deno.test(`formatReport equals sklearn text: ${c.name}`, () => {
    const r = classificationReport(c.y_true, c.y_pred, c.class_names);
    assert.equal(formatReport(r), c.text2);
    assert.equal(formatReport(r, { digits: 2 }), c.text2);
    assert.equal(formatReport(r, { digits: 4 }), c.text4);
  });
}

Deno.test("formatFixed rounds exact ties half to even like Python, others to nearest", () => {
  assert.equal(formatFixed(0.125, 2), "0.12");
  assert.equal(formatFixed(0.375, 2), "0.38");
  assert.equal(formatFixed(0.625, 2), "0.62");
  assert.equal(formatFixed(0.03125, 4), "0.0312");
  assert.equal(formatFixed(0.09375, 4), "0.0938");
  assert.equal(formatFixed(2.5, 0), "2");
  assert.equal(formatFixed(3.5, 0), "4");
  // 0.145 is stored as 0.14499999999999999001..., so it rounds down (as in Python), not up.
  assert.equal(formatFixed(0.145, 2), "0.14");
  assert.equal(formatFixed(0.155, 2), "0.15"); // 0.1549999... in binary
  assert.equal(formatFixed(1 / 3, 2), "0.33");
  assert.equal(formatFixed(2 / 3, 4), "0.6667");
  assert.equal(formatFixed(0, 2), "0.00");
  assert.equal(formatFixed(1, 2), "1.00");
  assert.equal(formatFixed(0.999, 2), "1.00");
  assert.equal(formatFixed(0.004, 2), "0.00");
  assert.equal(formatFixed(123.456, 1), "123.5");
  assert.equal(formatFixed(-0.125, 2), "-0.12");
  assert.equal(formatFixed(5e-324, 3), "0.000");
});

Deno.test("confusionMatrix: rows are true classes, columns predictions; bad input rejected", () => {
  assert.deepEqual(confusionMatrix([0, 0, 1, 2], [0, 1, 1, 0], 3), [[1, 1, 0], [0, 1, 0], [1, 0, 0]]);
  assert.deepEqual(confusionMatrix(new Int32Array([1]), new Int32Array([1]), 2), [[0, 0], [0, 1]]);
  assert.throws(() => confusionMatrix([0, 1], [0], 2), /2 items but yPred has 1/);
  assert.throws(() => confusionMatrix([0, 3], [0, 1], 3), /yTrue\[1\] = 3/);
  assert.throws(() => confusionMatrix([0, 1], [0, -1], 3), /yPred\[1\] = -1/);
  assert.throws(() => confusionMatrix([0.5], [0], 3), /yTrue\[0\] = 0.5/);
});

Deno.test("classificationReport rejects empty input and duplicate names", () => {
  assert.throws(() => classificationReport([], [], ["a", "b"]), /at least one/);
  assert.throws(() => classificationReport([0], [0], ["a", "a"]), /duplicate/);
});

Deno.test("macroF1FromCounts equals the report's macro F1", () => {
  const c = golden.cases.find((x) => x.name === "fer2013_imbalanced")!;
  const m = confusionMatrix(c.y_true, c.y_pred, 7);
  const tp = m.map((r, k) => r[k]);
  const predicted = m[0].map((_, k) => m.reduce((a, r) => a + r[k], 0));
  const support = m.map((r) => r.reduce((a, v) => a + v, 0));
  close(macroF1FromCounts(tp, predicted, support), (c.dict["macro avg"] as SkScores)["f1-score"], "macro f1");
});

Deno.test("formatConfusionMatrix prints class names, counts and totals in aligned columns", () => {
  const text = formatConfusionMatrix([[5, 1], [0, 12]], ["cat", "a_long_name"]);
  const lines = text.trimEnd().split("\n");
  assert.equal(lines.length, 4);
  assert.match(lines[0], /^true \\ pred\s+cat\s+a_long_name\s+total$/);
  assert.match(lines[1], /^cat\s+5\s+1\s+6$/);
  assert.match(lines[2], /^a_long_name\s+0\s+12\s+12$/);
  assert.match(lines[3], /^total\s+5\s+13\s+18$/);
  // Every line has the same width: the columns line up.
  assert.equal(new Set(lines.map((l) => l.length)).size, 1);
  assert.throws(() => formatConfusionMatrix([[1]], ["a", "b"]), /not 2x2/);
});
