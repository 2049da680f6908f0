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
  STUDY_COLOR,
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

/** Observable's categorical colours for runs, a light red for the study's references. */
function modelColors(models: string[]): string[] {
  const scheme = ["#4269d0", "#efb118", "#ff725c", "#6cc5b0", "#3ca951", "#ff8ab7", "#a463f2", "#97bbf5"];
  let k = 0;
  return models.map((m) => isReferenceModel(m) ? "#f6c4c0" : scheme[k++ % scheme.length]);
}

/** Per-class F1, one group per class with one bar per model; the study's values (models "study: ...") in red. */
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
    color: { domain: models, range: modelColors(models) },
    marks: [
      Plot.barY(rows, {
        fx: "class",
        x: "model",
        y: "f1",
        fill: "model",
        title: (d: ClassF1) => `${d.model} / ${d.class}: F1 ${d.f1.toFixed(3)}`,
      }),
      // the study's published values: outlined in red so they read as references, not runs
      Plot.barY(rows.filter((d) => isReferenceModel(d.model)), {
        fx: "class",
        x: "model",
        y: "f1",
        fill: "none",
        stroke: STUDY_COLOR,
        strokeWidth: 1.5,
        strokeDasharray: "3,2",
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

/** True for the study's published numbers as references (model name starting with "study", {@link studyLabel}). */
export function isReferenceModel(model: string): boolean {
  return /^study\b/i.test(model.trim());
}

/**
 * Model comparison: one panel per metric (stacked, so each gets the full width), a row per model with its
 * value as a dark tick over a band from lo to hi (the interval stays visible however narrow), labelled
 * "value (lo–hi)". Rows whose model starts with "study" (e.g. "study: published") are the study's published
 * values: hollow red diamonds on their own rows, labelled, with no interval and no lines across other rows.
 * Values all within [0, 1] are shown as percentages on an axis from 0 to 100 %.
 */
export function comparisonPlot(rows: MetricEstimate[], opts: FigureOptions = {}): string {
  if (rows.length === 0) throw new Error("comparisonPlot: no rows given");
  const width = opts.width ?? DEFAULT_WIDTH;
  const metrics = unique(rows.map((r) => r.metric));
  const models = unique(rows.filter((r) => !isReferenceModel(r.model)).map((r) => r.model));
  const refs = unique(rows.filter((r) => isReferenceModel(r.model)).map((r) => r.model));
  const all = rows.flatMap((r) => [r.value, r.lo, r.hi]).filter(Number.isFinite);
  const percent = all.every((v) => v >= 0 && v <= 1);
  const max = Math.max(...all);
  const min = Math.min(...all);
  // Shares start at 0 and end at 100 %, so bar-like lengths compare honestly; other values start at 0 too
  // when they are all positive.
  const domain: [number, number] = percent
    ? [0, 1]
    : [Math.min(0, min), max + (max - Math.min(0, min)) * 0.1];
  const fmt = (v: number) => percent ? pct(v) : v.toPrecision(3);
  const fmtBound = (v: number) => percent ? (v * 100).toFixed(1) : v.toPrecision(3);
  const hasCi = (r: MetricEstimate) => Number.isFinite(r.lo) && Number.isFinite(r.hi);
  const main = rows.filter((r) => !isReferenceModel(r.model));
  const ref = rows.filter((r) => isReferenceModel(r.model));
  const label = (d: MetricEstimate) =>
    isReferenceModel(d.model)
      ? `${fmt(d.value)} published`
      : hasCi(d)
      ? `${fmt(d.value)} (${fmtBound(d.lo)}–${fmtBound(d.hi)})`
      : fmt(d.value);
  // Labels go right of the mark, or left of it in the right part of the axis (so they stay inside the panel).
  const rightSide = (d: MetricEstimate) => (d.value - domain[0]) / (domain[1] - domain[0]) > 0.55;
  const yDomain = [...models, ...refs];
  const longest = Math.max(...yDomain.map((m) => textWidth(m, 10)));
  const marginLeft = Math.min(240, Math.ceil(longest) + 16);
  const rowHeight = 24;
  const panel = rowHeight * yDomain.length + 16;
  const scaled = (v: number) => (percent ? v * 100 : v);
  const fig = plot({
    width,
    height: 10 + 44 + metrics.length * panel,
    marginLeft,
    marginRight: 72,
    marginTop: 10,
    marginBottom: 44,
    fy: { domain: metrics, label: null, axis: "right", padding: 0.12 },
    // With `percent`, Plot's scale multiplies values by 100, so the domain is given in percent units.
    x: {
      domain: domain.map(scaled),
      label: percent ? "Value (%)" : "Value",
      percent,
      grid: true,
      ticks: 5,
    },
    y: { domain: yDomain, label: null, padding: 0.2 },
    marks: [
      Plot.ruleY(main.filter(hasCi), {
        fy: "metric",
        y: "model",
        x1: "lo",
        x2: "hi",
        stroke: TRAIN_COLOR,
        strokeOpacity: 0.45,
        strokeWidth: 9,
        title: (d: MetricEstimate) => `${d.model}, ${d.metric}: ${label(d)}`,
      }),
      Plot.tickX(main, { fy: "metric", y: "model", x: "value", stroke: "#111", strokeWidth: 2 }),
      Plot.dot(ref, {
        fy: "metric",
        y: "model",
        x: "value",
        symbol: "diamond",
        stroke: STUDY_COLOR,
        fill: "white",
        strokeWidth: 2,
        r: 5,
      }),
      ...[false, true].map((right) =>
        Plot.text(rows.filter((d) => rightSide(d) === right), {
          fy: "metric",
          y: "model",
          x: "value",
          text: label,
          dx: right ? -10 : 10,
          textAnchor: right ? "end" : "start",
          fill: (d: MetricEstimate) => isReferenceModel(d.model) ? STUDY_COLOR : "#222",
        })
      ),
    ],
  });
  const legend: LegendItem[] = [{ label: "value (tick) and 95% interval (band)", color: TRAIN_COLOR }];
  if (refs.length > 0) {
    legend.push({ label: "the study's published value (no interval)", color: STUDY_COLOR, shape: "diamond" });
  }
  return compose([fig], {
    title: opts.title ?? "Model comparison",
    subtitle: opts.subtitle === undefined
      ? `${models.length} models, ${metrics.join(" and ")}`
      : opts.subtitle,
    legend,
    width,
  });
}
