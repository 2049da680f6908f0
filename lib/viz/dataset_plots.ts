/**
 * Dataset figures: class distribution, sample-face grids and pixel-intensity histograms.
 *
 * @module
 */
import * as Plot from "@observablehq/plot";
import sharp from "sharp";
import {
  colorLegend,
  compactCount,
  compose,
  DEFAULT_WIDTH,
  type FigureOptions,
  pct,
  plot,
  TRAIN_COLOR,
  truncateLabel,
  unique,
} from "./layout.ts";
import { histogram } from "./histogram.ts";

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
