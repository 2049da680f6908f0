/**
 * Classification metrics equal to scikit-learn's: confusion matrix, `classification_report` (dict and text).
 *
 * Hand-written rather than taken from a library: no maintained JS package reproduces scikit-learn's exact
 * numbers *and* its text layout (zero-division rules, "accuracy" vs "micro avg" line, Python's
 * round-half-even formatting), which the golden tests in `tests/fixtures/metrics/` pin down.
 *
 * Zero-division setting: we match `classification_report(y_true, y_pred, labels=range(C),
 * target_names=names, output_dict=True, zero_division=0)`. A precision whose class was never predicted, a
 * recall whose class has no support, and an F1 whose precision and recall are both 0 are all 0. (sklearn's
 * default `zero_division="warn"` gives the same numbers plus a warning.) Every class in `range(C)` is
 * reported and takes part in the macro and weighted averages, including classes with no predictions and/or
 * no support.
 */

/** Precision, recall, F1 and support of one class or one average. */
export type Scores = { precision: number; recall: number; f1: number; support: number };

/** A classification report (the numbers of sklearn's `output_dict=True`, keyed by class name). */
export type ClassificationReport = {
  /** Fraction of items whose prediction equals the label (sklearn's "accuracy"). */
  accuracy: number;
  per_class: Record<string, Scores>;
  macro_avg: Scores;
  weighted_avg: Scores;
  /**
   * Present only when some class appears in neither `yTrue` nor `yPred`: sklearn then prints a
   * "micro avg" line (and dict key) instead of "accuracy". Its precision, recall and F1 equal `accuracy`.
   */
  micro_avg?: Scores;
  /** Class names in label order (the keys of `per_class`). */
  classes: string[];
};

function checkLabels(y: ArrayLike<number>, numClasses: number, what: string): void {
  for (let i = 0; i < y.length; i++) {
    const v = y[i];
    if (!Number.isInteger(v) || v < 0 || v >= numClasses) {
      throw new RangeError(`${what}[${i}] = ${v} is not a class index in 0..${numClasses - 1}`);
    }
  }
}

/**
 * Confusion matrix `m[true][pred]` (rows: true class, columns: predicted class), as
 * `sklearn.metrics.confusion_matrix(y_true, y_pred, labels=range(numClasses))`.
 */
export function confusionMatrix(
  yTrue: ArrayLike<number>,
  yPred: ArrayLike<number>,
  numClasses: number,
): number[][] {
  if (yTrue.length !== yPred.length) {
    throw new RangeError(`yTrue has ${yTrue.length} items but yPred has ${yPred.length}`);
  }
  if (!Number.isInteger(numClasses) || numClasses < 1) throw new RangeError(`bad numClasses ${numClasses}`);
  checkLabels(yTrue, numClasses, "yTrue");
  checkLabels(yPred, numClasses, "yPred");
  const m = Array.from({ length: numClasses }, () => new Array<number>(numClasses).fill(0));
  for (let i = 0; i < yTrue.length; i++) m[yTrue[i]][yPred[i]]++;
  return m;
}

/** Per-class precision, recall and F1 from counts, with sklearn's zero_division=0 rules. */
export function prfFromCounts(tp: number, predicted: number, support: number): Scores {
  const precision = predicted === 0 ? 0 : tp / predicted;
  const recall = support === 0 ? 0 : tp / support;
  // sklearn: f = (1 + beta^2) p r / (beta^2 p + r), with a zero denominator replaced by 1.
  const denom = precision + recall;
  const f1 = (2 * precision * recall) / (denom === 0 ? 1 : denom);
  return { precision, recall, f1, support };
}

/** Macro F1 (unweighted mean over all classes, zero_division=0) from per-class counts. */
export function macroF1FromCounts(
  tp: ArrayLike<number>,
  predicted: ArrayLike<number>,
  support: ArrayLike<number>,
): number {
  let s = 0;
  for (let k = 0; k < tp.length; k++) s += prfFromCounts(tp[k], predicted[k], support[k]).f1;
  return s / tp.length;
}

/**
 * sklearn's `classification_report(y_true, y_pred, labels=range(C), target_names=classNames,
 * output_dict=True, zero_division=0)`, with labels given as class indices `0..C-1` (C = classNames.length).
 */
export function classificationReport(
  yTrue: ArrayLike<number>,
  yPred: ArrayLike<number>,
  classNames: readonly string[],
): ClassificationReport {
  const C = classNames.length;
  if (new Set(classNames).size !== C) {
    throw new RangeError(`duplicate class names in ${classNames.join(",")}`);
  }
  const m = confusionMatrix(yTrue, yPred, C);
  const n = yTrue.length;
  if (n === 0) throw new RangeError("classificationReport needs at least one item");
  const per: Scores[] = [];
  let correct = 0;
  let allSeen = true;
  for (let k = 0; k < C; k++) {
    let predicted = 0;
    let support = 0;
    for (let j = 0; j < C; j++) {
      predicted += m[j][k];
      support += m[k][j];
    }
    correct += m[k][k];
    if (predicted === 0 && support === 0) allSeen = false;
    per.push(prfFromCounts(m[k][k], predicted, support));
  }
  const mean = (f: (s: Scores) => number) => per.reduce((a, s) => a + f(s), 0) / C;
  // np.average(x, weights=w) = sum(x * w) / sum(w); sum(w) = n > 0 here.
  const wmean = (f: (s: Scores) => number) => per.reduce((a, s) => a + f(s) * s.support, 0) / n;
  const accuracy = correct / n;
  const report: ClassificationReport = {
    accuracy,
    per_class: Object.fromEntries(classNames.map((name, k) => [name, per[k]])),
    macro_avg: {
      precision: mean((s) => s.precision),
      recall: mean((s) => s.recall),
      f1: mean((s) => s.f1),
      support: n,
    },
    weighted_avg: {
      precision: wmean((s) => s.precision),
      recall: wmean((s) => s.recall),
      f1: wmean((s) => s.f1),
      support: n,
    },
    classes: [...classNames],
  };
  if (!allSeen) {
    // Micro-averaged precision = recall = F1 = correct / n, because every prediction and every label is one
    // of the C labels.
    report.micro_avg = { precision: accuracy, recall: accuracy, f1: accuracy, support: n };
  }
  return report;
}

/**
 * Formats a number like Python's `format(x, ".{digits}f")`: the exact binary value rounded half-to-even.
 * (`Number.prototype.toFixed` rounds exact ties such as 0.125 up, Python rounds them to even: "0.12".)
 */
export function formatFixed(x: number, digits: number): string {
  if (!Number.isFinite(x)) return x > 0 ? "inf" : x < 0 ? "-inf" : "nan";
  const neg = x < 0 || Object.is(x, -0);
  const ax = Math.abs(x);
  // Decompose the double exactly: ax = mant * 2^exp.
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, ax);
  const bits = view.getBigUint64(0);
  const biased = Number((bits >> 52n) & 0x7ffn);
  let mant = bits & ((1n << 52n) - 1n);
  let exp: number;
  if (biased === 0) exp = -1074;
  else {
    mant |= 1n << 52n;
    exp = biased - 1075;
  }
  const scale = 10n ** BigInt(digits);
  let q: bigint;
  if (exp >= 0) q = (mant << BigInt(exp)) * scale;
  else {
    const num = mant * scale;
    const den = 1n << BigInt(-exp);
    q = num / den;
    const r2 = (num % den) * 2n;
    if (r2 > den || (r2 === den && q % 2n === 1n)) q += 1n;
  }
  let s = q.toString();
  if (digits > 0) {
    s = s.padStart(digits + 1, "0");
    s = `${s.slice(0, -digits)}.${s.slice(-digits)}`;
  }
  return (neg ? "-" : "") + s;
}

/** Python's `len` (code points), so padding matches sklearn for non-ASCII class names too. */
function pyLen(s: string): number {
  return [...s].length;
}

function padLeft(s: string, width: number): string {
  const n = pyLen(s);
  return n >= width ? s : " ".repeat(width - n) + s;
}

/**
 * The report as sklearn's `classification_report(..., digits=digits)` text (default digits = 2), byte for
 * byte, including the trailing newline.
 */
export function formatReport(report: ClassificationReport, { digits = 2 }: { digits?: number } = {}): string {
  const names = report.classes;
  const heading = "weighted avg";
  const width = Math.max(...names.map(pyLen), heading.length, digits);
  const col = (s: string) => " " + padLeft(s, 9);
  // sklearn 1.2 quirk (reproduced to stay byte-equal): when no prediction is right its counts become floats
  // (multilabel_confusion_matrix's "pathological case"), so supports print as "12.0".
  const support = (v: number) => report.accuracy === 0 ? v.toFixed(1) : String(v);
  const row = (name: string, s: Scores) =>
    padLeft(name, width) + " " + col(formatFixed(s.precision, digits)) + col(formatFixed(s.recall, digits)) +
    col(formatFixed(s.f1, digits)) + col(support(s.support)) + "\n";
  let out = padLeft("", width) + " " + ["precision", "recall", "f1-score", "support"].map(col).join("") +
    "\n\n";
  for (const name of names) out += row(name, report.per_class[name]);
  out += "\n";
  if (report.micro_avg) out += row("micro avg", report.micro_avg);
  else {
    out += padLeft("accuracy", width) + " " + col("") + col("") + col(formatFixed(report.accuracy, digits)) +
      col(support(report.macro_avg.support)) + "\n";
  }
  out += row("macro avg", report.macro_avg);
  out += row(heading, report.weighted_avg);
  return out;
}

/**
 * A confusion matrix as a text table: one row per true class, one column per predicted class, with row and
 * column totals.
 */
export function formatConfusionMatrix(matrix: number[][], classNames: readonly string[]): string {
  const C = classNames.length;
  if (matrix.length !== C || matrix.some((r) => r.length !== C)) {
    throw new RangeError(`confusion matrix is not ${C}x${C}`);
  }
  const colTotals = classNames.map((_, j) => matrix.reduce((a, r) => a + r[j], 0));
  const rowTotals = matrix.map((r) => r.reduce((a, v) => a + v, 0));
  const total = rowTotals.reduce((a, v) => a + v, 0);
  const corner = "true \\ pred";
  const firstW = Math.max(corner.length, "total".length, ...classNames.map(pyLen));
  const cells = [...matrix.flat(), ...colTotals, total].map((v) => String(v).length);
  const colW = Math.max(...classNames.map(pyLen), "total".length, ...cells);
  const line = (label: string, values: string[]) =>
    label + " ".repeat(firstW - pyLen(label)) + values.map((v) => "  " + padLeft(v, colW)).join("");
  const lines = [line(corner, [...classNames, "total"])];
  matrix.forEach((r, i) => lines.push(line(classNames[i], [...r, rowTotals[i]].map(String))));
  lines.push(line("total", [...colTotals, total].map(String)));
  return lines.join("\n") + "\n";
}
