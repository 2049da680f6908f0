/**
 * The layout engine every chart shares: Observable Plot rendered server-side into a linkedom document (passed
 * through Plot's `document` option, no globals touched), and {@link compose}, which stacks Plot SVGs under a
 * title, subtitle and legend inside one standalone `<svg>` (Plot's own title/legend would wrap the chart in an
 * HTML `<figure>`, which neither a `.svg` file nor librsvg/sharp can render).
 *
 * @module
 */
import * as Plot from "@observablehq/plot";
import { parseHTML } from "linkedom";

export const SVG_NS = "http://www.w3.org/2000/svg";
/** Default figure width in px. */
export const DEFAULT_WIDTH = 640;
/** Font stack of every figure (DejaVu Sans is what the PNG rasteriser finds on Debian). */
export const FONT = "system-ui, 'DejaVu Sans', sans-serif";
export const TRAIN_COLOR = "#4269d0";
export const VAL_COLOR = "#ff725c";
export const STUDY_COLOR = "#d62728";
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
export interface SvgNode {
  tagName: string;
  textContent: string | null;
  readonly outerHTML: string;
  setAttribute(name: string, value: string): void;
  getAttribute(name: string): string | null;
  appendChild(child: SvgNode): unknown;
}
export interface Doc {
  createElementNS(ns: string, name: string): SvgNode;
}
let sharedDocument: Doc | undefined;

/** The linkedom document all figures are built in (created lazily, never installed as a global). */
function dom(): Doc {
  const html = "<!DOCTYPE html><html><head></head><body></body></html>";
  sharedDocument ??= (parseHTML(html) as unknown as { document: Doc }).document;
  return sharedDocument;
}

export type PlotFigure = SvgNode & Plot.Plot;

/** Runs Plot.plot in the linkedom document; options must not ask for an HTML figure (title/legend/caption). */
export function plot(options: Plot.PlotOptions): PlotFigure {
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
export interface LegendItem {
  label: string;
  color: string;
  /** Swatch shape: filled square (default), line, dashed line or diamond. */
  shape?: "square" | "line" | "dash" | "diamond";
}

/** Legend entries for an ordinal color scale of a rendered Plot figure, in domain order. */
export function colorLegend(fig: PlotFigure, shape: LegendItem["shape"] = "square"): LegendItem[] {
  const options = fig.scale("color");
  if (!options?.domain) return [];
  const scale = Plot.scale({ color: options });
  return [...options.domain].map((d) => ({ label: String(d), color: String(scale.apply(d)), shape }));
}

export function svgEl(name: string, attrs: Record<string, string | number> = {}): SvgNode {
  const el = dom().createElementNS(SVG_NS, name);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  return el;
}

/** Rough text width (px) for layout of legends/margins; DejaVu Sans averages ~0.6 em per character. */
export function textWidth(text: string, fontSize: number, bold = false): number {
  return text.length * fontSize * (bold ? 0.66 : 0.6);
}

/**
 * Breaks `text` into lines that fit `maxWidth` (estimated with {@link textWidth}) at spaces; a word longer
 * than a line stays whole. Each line but the last keeps its trailing space, so the lines join back to `text`.
 */
export function wrapText(text: string, fontSize: number, maxWidth: number, bold = false): string[] {
  const words = text.split(/(?<= )/); // keep the space with the word before it
  const lines: string[] = [];
  let line = "";
  for (const w of words) {
    if (line && textWidth((line + w).trimEnd(), fontSize, bold) > maxWidth) {
      lines.push(line);
      line = w;
    } else {
      line += w;
    }
  }
  if (line) lines.push(line);
  return lines;
}

/** One `<text>` with a `<tspan>` per line (`lineHeight` px apart); its textContent is the unwrapped text. */
function textLines(lines: string[], attrs: Record<string, string | number>, lineHeight: number): SvgNode {
  const t = svgEl("text", attrs);
  if (lines.length === 1) {
    t.textContent = lines[0];
    return t;
  }
  lines.forEach((l, i) => {
    const span = svgEl("tspan", { x: attrs.x, ...(i > 0 ? { dy: lineHeight } : {}) });
    span.textContent = l;
    t.appendChild(span);
  });
  return t;
}

/**
 * Stacks one or more Plot SVGs under a title, subtitle and legend inside a single standalone SVG.
 * Written by hand (a few lines of layout) because Plot only offers these as HTML around the SVG.
 */
export function compose(
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
    const lines = wrapText(opts.title, 16, width - 2 * pad, true);
    body.push(
      textLines(lines, { class: "fer-title", x: pad, y: y + 18, "font-size": 16, "font-weight": "bold" }, 20),
    );
    y += 26 + 20 * (lines.length - 1);
  }
  if (opts.subtitle) {
    const lines = wrapText(opts.subtitle, 12, width - 2 * pad);
    body.push(
      textLines(lines, { class: "fer-subtitle", x: pad, y: y + 12, "font-size": 12, fill: "#555" }, 15),
    );
    y += 20 + 15 * (lines.length - 1);
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
export function unique<T>(values: Iterable<T>): T[] {
  return [...new Set(values)];
}

export function pct(v: number, digits = 1): string {
  return `${(v * 100).toFixed(digits)}%`;
}

export function compactCount(v: number): string {
  return v >= 10000 ? `${(v / 1000).toFixed(1)}k` : String(v);
}

export function truncateLabel(s: string): string {
  return s.length > 40 ? `${s.slice(0, 37)}...` : s;
}
