/**
 * Evaluation figures: confusion matrix, per-class F1 and the model comparison with intervals.
 *
 * @module
 */
import * as Plot from "@observablehq/plot";
import {
  colorLegend,
  compose,
  DEFAULT_WIDTH,
  type FigureOptions,
  type LegendItem,
  pct,
  plot,
  SEED_COLOR,
  textWidth,
  TRAIN_COLOR,
  unique,
} from "./layout.ts";

/**
 * Confusion-matrix heatmap: true class on y, predicted class on x, the count written in each cell.
 * `normalize: true` colours by the row-normalised rate (recall per true class) and writes "rate% / count".
 */
export function confusionMatrixPlot(
  matrix: number[][],
  classes: string[],
  opts: FigureOptions & { normalize?: boolean } = {},
): string {
  const n = classes.length;
  if (n === 0 || matrix.length !== n || matrix.some((r) => r.length !== n)) {
    throw new Error(
      `confusionMatrixPlot: matrix must be ${n}x${n} to match ${n} classes; got ${matrix.length}x${
        matrix[0]?.length ?? 0
      }`,
    );
  }
  const width = opts.width ?? DEFAULT_WIDTH;
  const rowSums = matrix.map((r) => r.reduce((a, b) => a + b, 0));
  const total = rowSums.reduce((a, b) => a + b, 0);
  const correct = matrix.reduce((s, r, i) => s + r[i], 0);
  const cells = matrix.flatMap((r, i) =>
    r.map((count, j) => ({
      true: classes[i],
      pred: classes[j],
      count,
      rate: rowSums[i] ? count / rowSums[i] : 0,
    }))
  );
  const value = opts.normalize ? "rate" : "count";
  const max = opts.normalize ? 1 : Math.max(1, ...cells.map((c) => c.count));
  const marginLeft = Math.max(60, Math.ceil(Math.max(...classes.map((c) => textWidth(c, 10)))) + 30);
  const marginTop = 10;
  const marginBottom = 44;
  const side = width - marginLeft - 12;
  const fontSize = n <= 8 ? 11 : n <= 14 ? 9 : 7;
  const fig = plot({
    width,
    height: side + marginTop + marginBottom,
    marginLeft,
    marginTop,
    marginBottom,
    marginRight: 12,
    x: { domain: classes, label: "Predicted label", labelAnchor: "center", padding: 0.02 },
    y: { domain: classes, label: "True label", labelAnchor: "center", padding: 0.02 },
    color: { type: "linear", scheme: "blues", domain: [0, max] },
    marks: [
      Plot.cell(cells, {
        x: "pred",
        y: "true",
        fill: value,
        title: (d: typeof cells[number]) =>
          `true ${d.true}, predicted ${d.pred}: ${d.count} (${pct(d.rate)})`,
      }),
      Plot.text(cells, {
        x: "pred",
        y: "true",
        text: (d: typeof cells[number]) => opts.normalize ? `${pct(d.rate, 0)}\n${d.count}` : String(d.count),
        fill: (d: typeof cells[number]) => (d[value] / max > 0.55 ? "white" : "#111"),
        fontSize,
      }),
    ],
  });
  return compose([fig], {
    title: opts.title ?? (opts.normalize ? "Confusion matrix (row-normalised)" : "Confusion matrix"),
    subtitle: opts.subtitle === undefined
      ? `accuracy ${total ? pct(correct / total) : "n/a"} (${correct}/${total})${
        opts.normalize ? "; cells: recall of the true class / count" : ""
      }`
      : opts.subtitle,
    width,
  });
}

/** One bar of {@link perClassF1Plot}. */
export interface ClassF1 {
  model: string;
  class: string;
  f1: number;
}

/** Per-class F1, one group per class with one bar per model. */
export function perClassF1Plot(rows: ClassF1[], opts: FigureOptions = {}): string {
  if (rows.length === 0) throw new Error("perClassF1Plot: no rows given");
  const width = opts.width ?? DEFAULT_WIDTH;
  const classes = unique(rows.map((r) => r.class));
  const models = unique(rows.map((r) => r.model));
  const fig = plot({
    width,
    height: 340,
    marginLeft: 50,
    marginTop: 26,
    marginBottom: 40,
    fx: { domain: classes, label: "Class", axis: "bottom", padding: 0.12 },
    x: { domain: models, axis: null, paddingInner: 0.08 },
    y: { domain: [0, 1], grid: true, label: "F1" },
    color: { domain: models, type: "categorical" },
    marks: [
      Plot.barY(rows, {
        fx: "class",
        x: "model",
        y: "f1",
        fill: "model",
        title: (d: ClassF1) => `${d.model} / ${d.class}: F1 ${d.f1.toFixed(3)}`,
      }),
      ...(models.length <= 4
        ? [Plot.text(rows, {
          fx: "class",
          x: "model",
          y: "f1",
          text: (d: ClassF1) => d.f1.toFixed(2),
          dy: -6,
          fontSize: models.length > 2 ? 7 : 8,
        })]
        : []),
      Plot.ruleY([0]),
    ],
  });
  const macro = models.map((m) => {
    const f = rows.filter((r) => r.model === m);
    return `${m} ${(f.reduce((s, r) => s + r.f1, 0) / f.length).toFixed(3)}`;
  });
  return compose([fig], {
    title: opts.title ?? "Per-class F1",
    subtitle: opts.subtitle === undefined ? `mean F1 over classes: ${macro.join(", ")}` : opts.subtitle,
    legend: colorLegend(fig),
    width,
  });
}

/** One estimate of {@link comparisonPlot}: value with its interval (e.g. a bootstrap 95% CI). */
export interface MetricEstimate {
  model: string;
  metric: string;
  value: number;
  lo: number;
  hi: number;
}

/** True for reference rows such as the seed's published numbers (model name starting with "seed"). */
export function isReferenceModel(model: string): boolean {
  return /^seed\b/i.test(model.trim());
}

/**
 * Model comparison: one panel per metric, a dot per model at its value with a rule over [lo, hi].
 * Rows whose model starts with "seed" (e.g. "seed: published") are references: drawn as hollow red diamonds
 * on their own row plus a dashed vertical rule across the panel; NaN bounds draw no interval.
 * Values all within [0, 1] are shown as percentages.
 */
export function comparisonPlot(rows: MetricEstimate[], opts: FigureOptions = {}): string {
  if (rows.length === 0) throw new Error("comparisonPlot: no rows given");
  const width = opts.width ?? DEFAULT_WIDTH;
  const metrics = unique(rows.map((r) => r.metric));
  const models = unique(rows.filter((r) => !isReferenceModel(r.model)).map((r) => r.model));
  const refs = unique(rows.filter((r) => isReferenceModel(r.model)).map((r) => r.model));
  const all = rows.flatMap((r) => [r.value, r.lo, r.hi]).filter(Number.isFinite);
  const percent = all.every((v) => v >= 0 && v <= 1);
  let [xmin, xmax] = [Math.min(...all), Math.max(...all)];
  const span = xmax - xmin || Math.abs(xmax) || 1;
  xmin -= span * 0.12;
  xmax += span * 0.12;
  if (percent) [xmin, xmax] = [Math.max(0, xmin), Math.min(1, xmax)];
  const fmt = (v: number) => percent ? pct(v) : v.toPrecision(3);
  const withCi = rows.filter((r) => Number.isFinite(r.lo) && Number.isFinite(r.hi));
  const main = rows.filter((r) => !isReferenceModel(r.model));
  const ref = rows.filter((r) => isReferenceModel(r.model));
  const yDomain = [...models, ...refs];
  const longest = Math.max(...yDomain.map((m) => textWidth(m, 10)));
  const marginLeft = Math.min(240, Math.ceil(longest) + 16);
  const fig = plot({
    width,
    height: 46 + 60 + 30 * yDomain.length,
    marginLeft,
    marginRight: 16,
    marginTop: 30,
    marginBottom: 46,
    fx: { domain: metrics, label: null, axis: "top", padding: 0.08 },
    // With `percent`, Plot's scale multiplies values by 100, so the domain is given in percent units.
    x: {
      domain: percent ? [xmin * 100, xmax * 100] : [xmin, xmax],
      label: percent ? "Value (%)" : "Value",
      percent,
      grid: true,
      ticks: 5,
    },
    y: { domain: yDomain, label: null, padding: 0.3 },
    marks: [
      Plot.ruleX(ref, {
        fx: "metric",
        x: "value",
        stroke: SEED_COLOR,
        strokeDasharray: "4,3",
        strokeOpacity: 0.8,
      }),
      Plot.ruleY(withCi, {
        fx: "metric",
        y: "model",
        x1: "lo",
        x2: "hi",
        stroke: (d: MetricEstimate) => isReferenceModel(d.model) ? SEED_COLOR : "#333",
        strokeWidth: 2,
      }),
      Plot.dot(main, { fx: "metric", y: "model", x: "value", fill: TRAIN_COLOR, r: 4.5 }),
      Plot.dot(ref, {
        fx: "metric",
        y: "model",
        x: "value",
        symbol: "diamond",
        stroke: SEED_COLOR,
        fill: "white",
        strokeWidth: 2,
        r: 5,
      }),
      Plot.text(rows, {
        fx: "metric",
        y: "model",
        x: "value",
        text: (d: MetricEstimate) => fmt(d.value),
        dy: -10,
        fill: (d: MetricEstimate) => isReferenceModel(d.model) ? SEED_COLOR : "#222",
        stroke: "white",
        strokeWidth: 3,
        paintOrder: "stroke",
      }),
    ],
  });
  const legend: LegendItem[] = [{ label: "model (interval: lo–hi)", color: TRAIN_COLOR }];
  if (refs.length > 0) legend.push({ label: "reference (seed)", color: SEED_COLOR, shape: "diamond" });
  return compose([fig], {
    title: opts.title ?? "Model comparison",
    subtitle: opts.subtitle === undefined
      ? `${models.length} models, ${metrics.join(" and ")}`
      : opts.subtitle,
    legend,
    width,
  });
}
