/**
 * Figures for the FER2013 toolkit, drawn with Observable Plot and rendered server-side to standalone SVG
 * strings (linkedom provides the DOM; it is passed through Plot's `document` option, no globals are touched).
 *
 * Every figure function returns a complete `<svg xmlns=...>` document: title, subtitle and legend are drawn
 * inside the SVG (Plot's own title/legend options would wrap the chart in an HTML `<figure>`, which neither a
 * `.svg` file nor librsvg/sharp can render), so the same string can be shown in a notebook, written to disk
 * or rasterised to PNG with {@link saveFigure}.
 *
 * @module
 */
import * as Plot from "@observablehq/plot";
import { parseHTML } from "linkedom";
import sharp from "sharp";
import { dirname } from "node:path";
import { writeAtomic } from "../util/fs.ts";

const SVG_NS = "http://www.w3.org/2000/svg";
const DEFAULT_WIDTH = 640;
const FONT = "system-ui, 'DejaVu Sans', sans-serif";
const TRAIN_COLOR = "#4269d0";
const VAL_COLOR = "#ff725c";
const SEED_COLOR = "#d62728";

/** Options shared by every figure. */
export interface FigureOptions {
  /** Figure title drawn at the top; each function has a sensible default. */
  title?: string;
  /** Smaller line under the title; `null` removes the default one. */
  subtitle?: string | null;
  /** Total width in px (default 640). */
  width?: number;
}

// ---------------------------------------------------------------------------------------------------------
// Internals: DOM, rendering and composition
// ---------------------------------------------------------------------------------------------------------

/**
 * The few DOM features used here. Deno type-checks without the DOM lib, so the linkedom objects are typed
 * structurally instead of as DOM `Document` / `Element`.
 */
interface SvgNode {
  tagName: string;
  textContent: string | null;
  readonly outerHTML: string;
  setAttribute(name: string, value: string): void;
  getAttribute(name: string): string | null;
  appendChild(child: SvgNode): unknown;
}
interface Doc {
  createElementNS(ns: string, name: string): SvgNode;
}
let sharedDocument: Doc | undefined;

/** The linkedom document all figures are built in (created lazily, never installed as a global). */
function dom(): Doc {
  const html = "<!DOCTYPE html><html><head></head><body></body></html>";
  sharedDocument ??= (parseHTML(html) as unknown as { document: Doc }).document;
  return sharedDocument;
}

type PlotFigure = SvgNode & Plot.Plot;

/** Runs Plot.plot in the linkedom document; options must not ask for an HTML figure (title/legend/caption). */
function plot(options: Plot.PlotOptions): PlotFigure {
  const fig = Plot.plot({
    ...options,
    document: dom() as unknown as Plot.PlotOptions["document"],
    style: { fontFamily: FONT, ...styleOf(options) },
  }) as unknown as PlotFigure;
  if (fig.tagName.toLowerCase() !== "svg") {
    throw new Error("internal: Plot returned an HTML figure, not an SVG");
  }
  return fig;
}

function styleOf(options: Plot.PlotOptions): Record<string, string> {
  return typeof options.style === "object" && options.style !== null
    ? options.style as Record<string, string>
    : {};
}

/** A legend entry drawn by {@link compose}. */
interface LegendItem {
  label: string;
  color: string;
  /** Swatch shape: filled square (default), line, dashed line or diamond. */
  shape?: "square" | "line" | "dash" | "diamond";
}

/** Legend entries for an ordinal color scale of a rendered Plot figure, in domain order. */
function colorLegend(fig: PlotFigure, shape: LegendItem["shape"] = "square"): LegendItem[] {
  const options = fig.scale("color");
  if (!options?.domain) return [];
  const scale = Plot.scale({ color: options });
  return [...options.domain].map((d) => ({ label: String(d), color: String(scale.apply(d)), shape }));
}

function svgEl(name: string, attrs: Record<string, string | number> = {}): SvgNode {
  const el = dom().createElementNS(SVG_NS, name);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  return el;
}

/** Rough text width (px) for layout of legends/margins; DejaVu Sans averages ~0.6 em per character. */
function textWidth(text: string, fontSize: number): number {
  return text.length * fontSize * 0.6;
}

/**
 * Stacks one or more Plot SVGs under a title, subtitle and legend inside a single standalone SVG.
 * Written by hand (a few lines of layout) because Plot only offers these as HTML around the SVG.
 */
function compose(
  panels: SvgNode[],
  opts: { title?: string; subtitle?: string | null; legend?: LegendItem[]; width: number },
): string {
  const pad = 8;
  const width = Math.max(opts.width, ...panels.map((p) => Number(p.getAttribute("width") ?? 0)));
  const root = svgEl("svg", {
    xmlns: SVG_NS,
    "font-family": FONT,
    "font-size": 10,
    fill: "currentColor",
    color: "#222",
  });
  const body: SvgNode[] = [];
  let y = 4;
  if (opts.title) {
    const title = svgEl("title");
    title.textContent = opts.title;
    root.appendChild(title);
    const t = svgEl("text", {
      class: "fer-title",
      x: pad,
      y: y + 18,
      "font-size": 16,
      "font-weight": "bold",
    });
    t.textContent = opts.title;
    body.push(t);
    y += 26;
  }
  if (opts.subtitle) {
    const s = svgEl("text", { class: "fer-subtitle", x: pad, y: y + 12, "font-size": 12, fill: "#555" });
    s.textContent = opts.subtitle;
    body.push(s);
    y += 20;
  }
  if (opts.legend && opts.legend.length > 0) {
    const g = svgEl("g", { class: "fer-legend", "font-size": 11 });
    let x = pad;
    let rowY = y + 4;
    for (const item of opts.legend) {
      const w = 18 + textWidth(item.label, 11) + 14;
      if (x + w > width - pad && x > pad) {
        x = pad;
        rowY += 18;
      }
      const entry = svgEl("g", { class: "fer-legend-item", transform: `translate(${x},${rowY})` });
      entry.appendChild(swatch(item));
      const label = svgEl("text", { x: 18, y: 10 });
      label.textContent = item.label;
      entry.appendChild(label);
      g.appendChild(entry);
      x += w;
    }
    body.push(g);
    y = rowY + 22;
  }
  for (const panel of panels) {
    panel.setAttribute("x", "0");
    panel.setAttribute("y", String(Math.round(y)));
    body.push(panel);
    y += Number(panel.getAttribute("height") ?? 0) + 6;
  }
  const height = Math.ceil(y + 2);
  root.setAttribute("width", String(width));
  root.setAttribute("height", String(height));
  root.setAttribute("viewBox", `0 0 ${width} ${height}`);
  // Opaque background so PNGs and dark notebook themes show the figure as drawn.
  root.appendChild(svgEl("rect", { class: "fer-background", width: "100%", height: "100%", fill: "white" }));
  for (const el of body) root.appendChild(el);
  return root.outerHTML;
}

function swatch(item: LegendItem): SvgNode {
  switch (item.shape) {
    case "line":
      return svgEl("line", { x1: 0, x2: 14, y1: 6, y2: 6, stroke: item.color, "stroke-width": 2.5 });
    case "dash":
      return svgEl("line", {
        x1: 0,
        x2: 14,
        y1: 6,
        y2: 6,
        stroke: item.color,
        "stroke-width": 2,
        "stroke-dasharray": "4,2",
      });
    case "diamond":
      return svgEl("path", {
        d: "M7,0L13,6L7,12L1,6Z",
        fill: "white",
        stroke: item.color,
        "stroke-width": 2,
      });
    default:
      return svgEl("rect", { width: 12, height: 12, fill: item.color });
  }
}

/** Distinct values in order of first appearance. */
function unique<T>(values: Iterable<T>): T[] {
  return [...new Set(values)];
}

function pct(v: number, digits = 1): string {
  return `${(v * 100).toFixed(digits)}%`;
}

function compactCount(v: number): string {
  return v >= 10000 ? `${(v / 1000).toFixed(1)}k` : String(v);
}

function truncateLabel(s: string): string {
  return s.length > 40 ? `${s.slice(0, 37)}...` : s;
}

// ---------------------------------------------------------------------------------------------------------
// Dataset figures
// ---------------------------------------------------------------------------------------------------------

/** One bar of {@link classDistributionPlot}. */
export interface ClassCount {
  split: string;
  class: string;
  count: number;
}

/**
 * Images per class, one group of bars per class with one bar per split (train / val / test...).
 * `normalize: true` plots each split's share instead of raw counts, which makes splits of different sizes
 * comparable. Class and split order follow first appearance unless `classes` / `splits` are given.
 */
export function classDistributionPlot(
  counts: ClassCount[],
  opts: FigureOptions & { normalize?: boolean; classes?: string[]; splits?: string[] } = {},
): string {
  if (counts.length === 0) throw new Error("classDistributionPlot: no counts given");
  const width = opts.width ?? DEFAULT_WIDTH;
  const classes = opts.classes ?? unique(counts.map((d) => d.class));
  const splits = opts.splits ?? unique(counts.map((d) => d.split));
  const totals = new Map<string, number>();
  for (const d of counts) totals.set(d.split, (totals.get(d.split) ?? 0) + d.count);
  const data = counts.map((d) => ({ ...d, share: d.count / (totals.get(d.split) || 1) }));
  const y = opts.normalize ? "share" : "count";
  const fig = plot({
    width,
    height: 340,
    marginTop: 26,
    marginLeft: 50,
    marginBottom: 40,
    fx: { domain: classes, label: "Class", axis: "bottom", padding: 0.12 },
    x: { domain: splits, axis: null, paddingInner: 0.08 },
    y: {
      grid: true,
      label: opts.normalize ? "Share of split (%)" : "Images",
      percent: opts.normalize,
    },
    color: { domain: splits, type: "categorical" },
    marks: [
      Plot.barY(data, {
        fx: "class",
        x: "split",
        y,
        fill: "split",
        title: (d: typeof data[number]) => `${d.split} / ${d.class}: ${d.count} (${pct(d.share)})`,
      }),
      Plot.text(data, {
        fx: "class",
        x: "split",
        y,
        text: (d: typeof data[number]) => opts.normalize ? (d.share * 100).toFixed(0) : compactCount(d.count),
        dy: -6,
        fontSize: splits.length > 3 ? 7 : 8,
      }),
      Plot.ruleY([0]),
    ],
  });
  const total = [...totals.entries()].map(([s, n]) => `${s} ${n}`).join(", ");
  return compose([fig], {
    title: opts.title ?? "Class distribution",
    subtitle: opts.subtitle === undefined ? `Images per class and split (${total})` : opts.subtitle,
    legend: colorLegend(fig),
    width,
  });
}

/** One face for {@link sampleGridPlot}; pixels are HWC uint8 (channels 1 or 3). */
export interface SampleImage {
  pixels: Uint8Array;
  width: number;
  height: number;
  channels: number;
  label: string;
  /** Label colour, e.g. green/red for correct/incorrect predictions. */
  color?: string;
}

/** Encodes raw HWC uint8 pixels as a PNG data URI (sharp does the PNG encoding). */
export async function pixelsToDataUri(img: Omit<SampleImage, "label">): Promise<string> {
  const { pixels, width, height, channels } = img;
  if (![1, 2, 3, 4].includes(channels)) throw new Error(`image has ${channels} channels; expected 1-4`);
  if (pixels.length !== width * height * channels) {
    throw new Error(
      `image pixel buffer has ${pixels.length} values; expected ${width}x${height}x${channels} = ${
        width * height * channels
      }`,
    );
  }
  let image = sharp(pixels, { raw: { width, height, channels: channels as 1 | 2 | 3 | 4 } });
  // Keep grey faces as 1-channel PNGs (smaller data URIs); sharp would otherwise write sRGB.
  if (channels <= 2) image = image.toColourspace("b-w");
  const png = await image.png().toBuffer();
  return `data:image/png;base64,${png.toString("base64")}`;
}

/**
 * A grid of faces (real pixels, embedded as PNG `<image>`s) with each image's label underneath.
 * `columns` defaults to 8; the cell size follows from the width.
 */
export async function sampleGridPlot(
  images: SampleImage[],
  opts: FigureOptions & { columns?: number } = {},
): Promise<string> {
  if (images.length === 0) throw new Error("sampleGridPlot: no images given");
  const width = opts.width ?? DEFAULT_WIDTH;
  const columns = Math.max(1, Math.min(opts.columns ?? 8, images.length));
  const rows = Math.ceil(images.length / columns);
  const cell = Math.floor(width / columns);
  const labelHeight = 16;
  const size = cell - 6;
  const data = await Promise.all(images.map(async (img, i) => ({
    src: await pixelsToDataUri(img),
    label: img.label,
    color: img.color ?? "#222",
    col: i % columns,
    row: Math.floor(i / columns),
  })));
  const fig = plot({
    width: cell * columns,
    height: rows * (cell + labelHeight),
    margin: 0,
    fx: { domain: [...Array(columns).keys()], axis: null, padding: 0 },
    fy: { domain: [...Array(rows).keys()], axis: null, padding: 0 },
    marks: [
      Plot.image(data, {
        fx: "col",
        fy: "row",
        src: "src",
        width: size,
        height: size,
        frameAnchor: "middle",
        dy: -labelHeight / 2,
        imageRendering: "pixelated",
        title: "label",
      }),
      Plot.text(data, {
        fx: "col",
        fy: "row",
        text: (d: typeof data[number]) => truncateLabel(d.label),
        fill: "color",
        frameAnchor: "bottom",
        dy: -4,
        fontSize: cell < 60 ? 8 : 10,
      }),
    ],
  });
  return compose([fig], {
    title: opts.title ?? "Sample images",
    subtitle: opts.subtitle === undefined
      ? `${images.length} images, ${images[0].width}x${images[0].height}`
      : opts.subtitle,
    width,
  });
}

/** Pixel values for {@link pixelHistogramPlot}: one array, or one array per class. */
export type PixelValues = ArrayLike<number> | Record<string, ArrayLike<number>>;

interface Hist {
  counts: Float64Array;
  total: number;
  mean: number;
  sd: number;
}

/**
 * Histogram over [lo, hi) in `bins` equal bins plus mean/sd, in one pass. Hand-written because the inputs
 * are whole datasets (tens of millions of uint8 values), far too many for Plot's per-datum bin transform.
 */
function histogram(values: ArrayLike<number>, bins: number, lo: number, hi: number): Hist {
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

/**
 * Pixel-intensity overview. With one array: a histogram of intensities (share of pixels per bin). With one
 * array per class: the per-class histograms as lines over the pooled histogram, plus a second panel with
 * each class's mean intensity ± 1 sd. `domain` is the value range (default [0, 256) for uint8 pixels).
 */
export function pixelHistogramPlot(
  values: PixelValues,
  opts: FigureOptions & { bins?: number; domain?: [number, number] } = {},
): string {
  const width = opts.width ?? DEFAULT_WIDTH;
  const bins = opts.bins ?? 32;
  const [lo, hi] = opts.domain ?? [0, 256];
  if (!(bins >= 1) || !(hi > lo)) throw new Error(`pixelHistogramPlot: bad bins (${bins}) or domain`);
  const isSingle = typeof (values as ArrayLike<number>).length === "number";
  const groups: [string, ArrayLike<number>][] = isSingle
    ? [["all", values as ArrayLike<number>]]
    : Object.entries(values as Record<string, ArrayLike<number>>);
  if (groups.length === 0) throw new Error("pixelHistogramPlot: no values given");
  const hists = groups.map(([name, v]) => ({ name, ...histogram(v, bins, lo, hi) }));
  const pooled = new Float64Array(bins);
  let pooledTotal = 0;
  for (const h of hists) {
    h.counts.forEach((c, i) => pooled[i] += c);
    pooledTotal += h.total;
  }
  if (pooledTotal === 0) throw new Error("pixelHistogramPlot: no finite values");
  const step = (hi - lo) / bins;
  const binRows = [...pooled].map((c, i) => ({
    x1: lo + i * step,
    x2: lo + (i + 1) * step,
    share: c / pooledTotal,
  }));
  const x = { label: "Pixel intensity", domain: [lo, hi] };
  const y = { label: "Share of pixels (%)", percent: true, grid: true, nice: true };
  const pooledMean = hists.reduce((s, h) => s + h.mean * h.total, 0) / pooledTotal;
  const subtitle = opts.subtitle === undefined
    ? `${pooledTotal.toLocaleString("en-US")} pixels, mean ${pooledMean.toFixed(1)}, ${bins} bins`
    : opts.subtitle;
  if (isSingle) {
    const fig = plot({
      width,
      height: 300,
      marginLeft: 50,
      x,
      y,
      marks: [
        Plot.rectY(binRows, {
          x1: "x1",
          x2: "x2",
          y: "share",
          fill: TRAIN_COLOR,
          insetLeft: 0.5,
          insetRight: 0.5,
        }),
        Plot.ruleY([0]),
      ],
    });
    return compose([fig], { title: opts.title ?? "Pixel intensities", subtitle, width });
  }
  const classes = hists.map((h) => h.name);
  const lines = hists.flatMap((h) =>
    [...h.counts].map((c, i) => ({
      class: h.name,
      x: lo + (i + 0.5) * step,
      share: h.total ? c / h.total : 0,
    }))
  );
  const color = { domain: classes, type: "categorical" as const };
  const top = plot({
    width,
    height: 280,
    marginLeft: 50,
    x,
    y,
    color,
    marks: [
      Plot.rectY(binRows, { x1: "x1", x2: "x2", y: "share", fill: "#ddd", insetLeft: 0.5, insetRight: 0.5 }),
      Plot.lineY(lines, { x: "x", y: "share", stroke: "class", z: "class", strokeWidth: 1.5 }),
      Plot.ruleY([0]),
    ],
  });
  const means = hists.map((h) => ({
    class: h.name,
    mean: h.mean,
    lo: Math.max(lo, h.mean - h.sd),
    hi: Math.min(hi, h.mean + h.sd),
  }));
  const bottom = plot({
    width,
    height: 220,
    marginLeft: 50,
    marginBottom: 36,
    x: { domain: classes, label: "Class", padding: 0.25 },
    y: { label: "Mean intensity (± 1 sd)", grid: true, domain: [lo, hi] },
    color,
    marks: [
      Plot.barY(means, { x: "class", y: "mean", fill: "class", fillOpacity: 0.85 }),
      Plot.ruleX(means, { x: "class", y1: "lo", y2: "hi", stroke: "#333" }),
      Plot.text(means, { x: "class", y: "hi", text: (d: typeof means[number]) => d.mean.toFixed(1), dy: -6 }),
      Plot.ruleY([lo]),
    ],
  });
  return compose([top, bottom], {
    title: opts.title ?? "Pixel intensities by class",
    subtitle,
    legend: [{ label: "all classes", color: "#ddd" }, ...colorLegend(top, "line")],
    width,
  });
}

// ---------------------------------------------------------------------------------------------------------
// Training curves
// ---------------------------------------------------------------------------------------------------------

/** One epoch of accuracy history (fractions in [0, 1]). */
export interface AccuracyEpoch {
  epoch: number;
  train_acc?: number | null;
  val_acc?: number | null;
}

/** One epoch of loss history. */
export interface LossEpoch {
  epoch: number;
  train_loss?: number | null;
  val_loss?: number | null;
}

function curvesPlot(
  history: { epoch: number }[],
  keys: [string, string],
  o: { yLabel: string; percent: boolean; best: "max" | "min"; title: string; fig: FigureOptions },
): string {
  const width = o.fig.width ?? DEFAULT_WIDTH;
  const series = [["train", keys[0]], ["val", keys[1]]] as const;
  const data = series.flatMap(([split, key]) =>
    history
      .map((h) => ({ epoch: h.epoch, split, value: (h as unknown as Record<string, number | null>)[key] }))
      .filter((d): d is { epoch: number; split: typeof split; value: number } =>
        typeof d.value === "number" && Number.isFinite(d.value)
      )
  );
  if (data.length === 0) throw new Error(`${o.title}: history has no finite ${keys.join(" / ")} values`);
  const val = data.filter((d) => d.split === "val");
  const pick = val.length > 0 ? val : data.filter((d) => d.split === "train");
  const best = pick.reduce((a, b) => (o.best === "max" ? b.value > a.value : b.value < a.value) ? b : a);
  const epochs = unique(data.map((d) => d.epoch)).sort((a, b) => a - b);
  const lastEpoch = epochs[epochs.length - 1];
  const right = best.epoch > (epochs[0] + lastEpoch) / 2;
  const fmt = (v: number) => o.percent ? pct(v) : v.toFixed(3);
  const splits = unique(data.map((d) => d.split));
  const fig = plot({
    width,
    height: 320,
    marginLeft: 50,
    marginRight: 20,
    x: { label: "Epoch", ...(epochs.length <= 15 ? { ticks: epochs } : {}), tickFormat: "d" },
    y: { label: o.yLabel, grid: true, percent: o.percent, nice: true },
    color: { domain: ["train", "val"], range: [TRAIN_COLOR, VAL_COLOR] },
    marks: [
      Plot.lineY(data, {
        x: "epoch",
        y: "value",
        stroke: "split",
        z: "split", // explicit: with one or two epochs Plot would warn about an implicit high-cardinality z
        strokeWidth: 2,
        marker: epochs.length <= 30 ? "circle-stroke" : undefined,
      }),
      Plot.dot([best], { x: "epoch", y: "value", r: 6, stroke: "#111", strokeWidth: 1.5 }),
      Plot.text([best], {
        x: "epoch",
        y: "value",
        text: (d: typeof best) => `best ${d.split} ${fmt(d.value)} (epoch ${d.epoch})`,
        dy: o.best === "max" ? 14 : -14,
        dx: right ? -4 : 4,
        textAnchor: right ? "end" : "start",
        fontWeight: "bold",
        fill: "#111",
        stroke: "white",
        strokeWidth: 3,
        paintOrder: "stroke",
      }),
    ],
  });
  const last = history[history.length - 1] as unknown as Record<string, number | null>;
  const lastText = series
    .filter(([, key]) => typeof last[key] === "number")
    .map(([split, key]) => `${split} ${fmt(last[key] as number)}`)
    .join(", ");
  return compose([fig], {
    title: o.fig.title ?? o.title,
    subtitle: o.fig.subtitle === undefined
      ? `${epochs.length} epochs; last epoch: ${lastText || "n/a"}`
      : o.fig.subtitle,
    legend: splits.map((s) => ({ label: s, color: s === "train" ? TRAIN_COLOR : VAL_COLOR, shape: "line" })),
    width,
  });
}

/** Train vs validation accuracy per epoch (values are fractions, shown as %), best val epoch marked. */
export function accuracyCurvesPlot(history: AccuracyEpoch[], opts: FigureOptions = {}): string {
  return curvesPlot(history, ["train_acc", "val_acc"], {
    yLabel: "Accuracy (%)",
    percent: true,
    best: "max",
    title: "Accuracy per epoch",
    fig: opts,
  });
}

/** Train vs validation loss per epoch, lowest val loss marked. */
export function lossCurvesPlot(history: LossEpoch[], opts: FigureOptions = {}): string {
  return curvesPlot(history, ["train_loss", "val_loss"], {
    yLabel: "Loss",
    percent: false,
    best: "min",
    title: "Loss per epoch",
    fig: opts,
  });
}

// ---------------------------------------------------------------------------------------------------------
// Evaluation figures
// ---------------------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------------------
// Saving
// ---------------------------------------------------------------------------------------------------------

/** Paths written by {@link saveFigure}. */
export interface SavedFigure {
  svg: string;
  png?: string;
}

/**
 * Writes `<pathWithoutExt>.svg` and, with `png: true`, `<pathWithoutExt>.png` rendered by sharp (librsvg) at
 * `density` dpi (default 144: 2x, as librsvg's 1x is 72 dpi). Each file is written to a temp name and renamed into place; parent
 * directories are created. PNG text needs a system font (Debian: fonts-dejavu-core).
 */
export async function saveFigure(
  svg: string,
  pathWithoutExt: string,
  opts: { png?: boolean; density?: number } = {},
): Promise<SavedFigure> {
  const base = pathWithoutExt.replace(/\.(svg|png)$/i, "");
  await Deno.mkdir(dirname(base) || ".", { recursive: true });
  const out: SavedFigure = { svg: `${base}.svg` };
  const bytes = new TextEncoder().encode(
    svg.startsWith("<?xml") ? svg : `<?xml version="1.0" encoding="UTF-8"?>\n${svg}`,
  );
  if (opts.png) {
    // Render first so that a bad SVG leaves neither file half-updated.
    const png = await sharp(bytes, { density: opts.density ?? 144 }).png().toBuffer();
    await writeAtomic(out.svg, bytes);
    out.png = `${base}.png`;
    await writeAtomic(out.png, png);
  } else {
    await writeAtomic(out.svg, bytes);
  }
  return out;
}
