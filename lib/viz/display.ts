/**
 * Notebook display helpers for the Deno Jupyter kernel (`deno jupyter`).
 *
 * Inside the kernel every output goes out as one IOPub message through {@link sendMessage}; anywhere else
 * (scripts, tests) `Deno.jupyter` is unavailable (reading it throws), so the helpers fall back to short console
 * output and never fail.
 *
 * Why outputs go through one paced queue: in Deno 2.9 `Deno.jupyter.broadcast` (and so `display`) starts the
 * send without returning its promise, so `await display(...)` resolves before the message is sent; when a cell
 * ends right after a few displays, the pending sends run after the kernel has reported the cell idle (the
 * frontend drops them, or they land in the next cell). On top of that the kernel's IOPub socket is a ZeroMQ
 * PUB socket, which silently drops a message when its send buffer is still full of earlier large ones. So each
 * message is sent, then the queue waits on the event loop (which lets the send run) for a time proportional
 * to the message's size before the next one. `console.log` goes through a separate stdout pipe with the same
 * race, so notebook text uses {@link print}. Every display carries `metadata.fer.seq` (1, 2, ...) and
 * {@link finishNotebook} ends a notebook with a marker naming the count, which the runner
 * (`lib/cli/notebooks.ts`) checks.
 *
 * @module
 */
import { svgToPng } from "./figure_file.ts";

/** A MIME bundle: MIME type to content (text, or base64 for binary types). */
export type MimeBundle = Record<string, string>;

/** The part of the `Deno.jupyter` API used here (`broadcast` may or may not return its promise). */
export interface JupyterApi {
  broadcast(
    msgType: string,
    content: Record<string, unknown>,
    extra?: { metadata?: Record<string, unknown> },
  ): Promise<void> | void;
}

/** `undefined`: detect; `null`: force "not in a kernel"; an object: use it (tests, custom frontends). */
let override: JupyterApi | null | undefined;

/**
 * Replaces the Jupyter API the helpers talk to: pass a stub to capture messages (tests), `null` to act as if
 * outside a kernel, or `undefined` to go back to detecting `Deno.jupyter`.
 */
export function setJupyter(api: JupyterApi | null | undefined): void {
  override = api;
}

/** The kernel's API, or undefined when not running under `deno jupyter`. */
export function jupyter(): JupyterApi | undefined {
  if (override !== undefined) return override ?? undefined;
  try {
    // Outside `deno jupyter` the `Deno.jupyter` getter throws ("only available in `deno jupyter`").
    const api = (Deno as unknown as { jupyter?: JupyterApi }).jupyter;
    return typeof api?.broadcast === "function" ? api : undefined;
  } catch {
    return undefined;
  }
}

/** True when running inside the Deno Jupyter kernel. */
export function inNotebook(): boolean {
  return jupyter() !== undefined;
}

/** Escapes text for HTML element content and attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(
    /[&<>"']/g,
    (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!,
  );
}

// ---------------------------------------------------------------------------------------------------------
// The output queue
// ---------------------------------------------------------------------------------------------------------

let outbox: Promise<void> = Promise.resolve();
let sequence = 0;

/**
 * How long the queue waits after a message of `bytes` before sending the next: enough for the frontend to
 * drain the kernel's socket (measured: 8 back-to-back 400 kB messages all arrive at 4 kB/ms; this allows half
 * that rate), at least a few ms so the event loop runs the pending send.
 */
export function paceMs(bytes: number): number {
  return Math.min(1000, 5 + bytes / 2000);
}

/**
 * Queues one IOPub message (`display_data`, `update_display_data`, `stream`) behind every earlier one and
 * resolves once it has been handed to the kernel and paced (see the module doc). `content` may be a function,
 * called when the message's turn comes (so a queued progress update can still take the newest text). Does
 * nothing outside a kernel.
 */
export function sendMessage(
  msgType: string,
  content: Record<string, unknown> | (() => Record<string, unknown>),
): Promise<void> {
  const api = jupyter();
  if (!api) return Promise.resolve();
  const next = outbox.then(async () => {
    const body = typeof content === "function" ? content() : content;
    const sent = api.broadcast(msgType, body);
    if (sent && typeof (sent as Promise<void>).then === "function") await sent;
    await new Promise((resolve) => setTimeout(resolve, paceMs(JSON.stringify(body).length)));
  });
  // One failed send must not block every later output; the caller still sees its own failure.
  outbox = next.catch(() => {});
  return next;
}

/** Resolves when every queued output has been sent. */
export function flushOutput(): Promise<void> {
  return outbox;
}

/** Number of displays sent so far in this kernel (each carries `metadata.fer.seq`). */
export function displayCount(): number {
  return sequence;
}

/** Options of {@link displayBundle}. */
export interface DisplayOptions {
  /** Per-MIME metadata, e.g. `{ "image/png": { width, height } }` (the display size of a 2x PNG). */
  metadata?: Record<string, unknown>;
  /** An updatable display: the id, and whether this message replaces the earlier display with that id. */
  displayId?: string;
  update?: boolean;
  /** The `fer.seq` number of the display an update replaces (kept so the stored output keeps it). */
  seq?: number;
}

/**
 * Queues a display synchronously (so it keeps its place among outputs even when the caller does not await):
 * its sequence number, and the promise of its send. Updates keep the sequence number of the display they
 * replace.
 */
export function queueDisplay(
  bundle: MimeBundle | (() => MimeBundle),
  opts: DisplayOptions = {},
): { seq: number; sent: Promise<void> } {
  if (!jupyter()) return { seq: 0, sent: Promise.resolve() };
  const seq = opts.update ? opts.seq ?? 0 : ++sequence;
  const sent = sendMessage(opts.update ? "update_display_data" : "display_data", () => ({
    data: typeof bundle === "function" ? bundle() : bundle,
    metadata: { ...opts.metadata, fer: { seq } },
    transient: opts.displayId ? { display_id: opts.displayId } : {},
  }));
  return { seq, sent };
}

/** Sends a MIME bundle to the notebook; returns its sequence number, or 0 (and does nothing) outside a kernel. */
export async function displayBundle(bundle: MimeBundle, opts: DisplayOptions = {}): Promise<number> {
  const { seq, sent } = queueDisplay(bundle, opts);
  await sent;
  return seq;
}

/** Prints text in the notebook as stdout, in order with the displays (console.log outside a kernel). */
export async function print(...lines: string[]): Promise<void> {
  const text = lines.join("\n");
  if (!jupyter()) {
    console.log(text);
    return;
  }
  await sendMessage("stream", { name: "stdout", text: text.endsWith("\n") ? text : `${text}\n` });
}

/** The first line the final marker of {@link finishNotebook} starts with (the runner looks for it). */
export const FINAL_MARKER = "notebook complete:";

/**
 * Ends a notebook: one last display, `notebook complete: N outputs ...`, carrying `metadata.fer.final = N`
 * (the number of displays before it), so that the runner can check that every output arrived.
 */
export async function finishNotebook(note = ""): Promise<void> {
  const n = sequence;
  const text = `${FINAL_MARKER} ${n} outputs${note ? `; ${note}` : ""}`;
  if (!jupyter()) {
    console.log(text);
    return;
  }
  await sendMessage("display_data", {
    data: { "text/plain": text },
    metadata: { fer: { final: n } },
    transient: {},
  });
  await flushOutput();
}

// ---------------------------------------------------------------------------------------------------------
// Figures, text, tables
// ---------------------------------------------------------------------------------------------------------

/** The alt line of a figure: `[chart] title — subtitle`, from the SVG's `<title>` and subtitle text. */
export function figureAlt(svg: string): string {
  const unescape = (s: string) =>
    s.replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&quot;/g, '"').replace(/&#39;/g, "'")
      .replace(/&amp;/g, "&");
  const title = /<title>([^<]*)<\/title>/.exec(svg)?.[1];
  const subtitle = /<text[^>]*class="fer-subtitle"[^>]*>(.*?)<\/text>/s.exec(svg)?.[1]?.replace(
    /<[^>]*>/g,
    "",
  );
  return `[chart] ${unescape(title ?? "figure")}${subtitle ? ` — ${unescape(subtitle)}` : ""}`;
}

/**
 * A figure as one MIME bundle: `image/png` (rasterised at 2x, shown at the SVG's size), `image/svg+xml` and a
 * `text/plain` alt line, with the PNG's display size as metadata. Untrusted notebooks (every fresh clone),
 * GitHub and nbconvert show the PNG; trusted frontends may prefer the SVG.
 */
export async function figureBundle(
  svg: string,
  opts: { alt?: string } = {},
): Promise<{ bundle: MimeBundle; metadata: Record<string, unknown> }> {
  const raster = await svgToPng(svg);
  const size = { width: Math.round(raster.width), height: Math.round(raster.height) };
  let b64 = "";
  const chunk = 0x8000;
  for (let i = 0; i < raster.png.length; i += chunk) {
    b64 += String.fromCharCode(...raster.png.subarray(i, i + chunk));
  }
  return {
    bundle: { "image/png": btoa(b64), "image/svg+xml": svg, "text/plain": opts.alt ?? figureAlt(svg) },
    metadata: { "image/png": size, "image/svg+xml": size },
  };
}

/**
 * Shows an SVG figure (from `lib/viz/plots.ts`) in the notebook as a PNG + SVG bundle ({@link figureBundle}).
 * Outside a kernel prints one short line, unless `quiet` is set.
 */
export async function show(svg: string, opts: { quiet?: boolean; alt?: string } = {}): Promise<void> {
  if (jupyter()) {
    const { bundle, metadata } = await figureBundle(svg, opts);
    await displayBundle(bundle, { metadata });
    return;
  }
  if (!opts.quiet) {
    const title = /<title>([^<]*)<\/title>/.exec(svg)?.[1];
    console.log(
      `[figure${title ? ` "${title}"` : ""}: ${(svg.length / 1024).toFixed(1)} KiB SVG; not in a notebook, ` +
        `use saveFigure() to write it]`,
    );
  }
}

/** Shows preformatted text (reports, tables from `formatReport`): a `<pre>` block; printed as-is outside. */
export async function showText(text: string): Promise<void> {
  if (await displayBundle({ "text/html": `<pre>${escapeHtml(text)}</pre>`, "text/plain": text })) return;
  console.log(text);
}

/** The text of an HTML fragment (tags dropped, entities decoded): the text/plain fallback of {@link showHTML}. */
export function htmlText(html: string): string {
  return html.replace(/<(br|\/p|\/div|\/li|\/tr|\/h\d)\b[^>]*>/gi, "\n").replace(/<[^>]*>/g, "")
    .replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&quot;/g, '"').replace(/&#39;/g, "'")
    .replace(/&amp;/g, "&").replace(/\n{3,}/g, "\n\n").trim();
}

/**
 * Shows an HTML fragment (with a `text/plain` version, and `text/markdown` when given); outside a kernel prints
 * the markdown, or a one-line note (HTML is not useful on a terminal).
 */
export async function showHTML(
  html: string,
  opts: { quiet?: boolean; markdown?: string } = {},
): Promise<void> {
  const bundle: MimeBundle = { "text/html": html, "text/plain": opts.markdown ?? htmlText(html) };
  if (opts.markdown) bundle["text/markdown"] = opts.markdown;
  if (await displayBundle(bundle)) return;
  if (opts.markdown) {
    console.log(opts.markdown);
    return;
  }
  if (!opts.quiet) console.log(`[html: ${html.length} chars; not in a notebook]`);
}

/** A table cell value. */
export type Cell = string | number | boolean | null | undefined;

function formatCell(v: Cell, digits: number): string {
  if (v === null || v === undefined) return "";
  if (typeof v === "number") return Number.isInteger(v) ? String(v) : v.toFixed(digits);
  return String(v);
}

/**
 * Renders rows as an HTML table (columns: union of keys in first-seen order unless `columns` is given;
 * numbers right-aligned, non-integers with `digits` decimals, default 4).
 */
export function tableHTML(
  rows: Record<string, Cell>[],
  opts: { columns?: string[]; digits?: number; caption?: string } = {},
): string {
  const digits = opts.digits ?? 4;
  const columns = opts.columns ?? [...new Set(rows.flatMap((r) => Object.keys(r)))];
  const th = columns.map((c) => `<th>${escapeHtml(c)}</th>`).join("");
  const body = rows.map((r) =>
    "<tr>" +
    columns.map((c) => {
      const v = r[c];
      const align = typeof v === "number" ? ' style="text-align:right"' : "";
      return `<td${align}>${escapeHtml(formatCell(v, digits))}</td>`;
    }).join("") +
    "</tr>"
  ).join("\n");
  const caption = opts.caption ? `<caption>${escapeHtml(opts.caption)}</caption>` : "";
  return `<table>${caption}<thead><tr>${th}</tr></thead>\n<tbody>\n${body}\n</tbody></table>`;
}

/** Renders rows as an aligned plain-text table (the text/plain fallback of {@link showTable}). */
export function tableText(
  rows: Record<string, Cell>[],
  opts: { columns?: string[]; digits?: number } = {},
): string {
  const digits = opts.digits ?? 4;
  const columns = opts.columns ?? [...new Set(rows.flatMap((r) => Object.keys(r)))];
  const cells = rows.map((r) => columns.map((c) => formatCell(r[c], digits)));
  const widths = columns.map((c, j) => Math.max(c.length, ...cells.map((row) => row[j].length)));
  const numeric = columns.map((c) => rows.some((r) => typeof r[c] === "number"));
  const line = (values: string[]) =>
    values.map((v, j) => numeric[j] ? v.padStart(widths[j]) : v.padEnd(widths[j])).join("  ").trimEnd();
  return [line(columns), line(widths.map((w) => "-".repeat(w))), ...cells.map(line)].join("\n");
}

/** Shows rows as an HTML table in the notebook; prints the plain-text table outside. */
export async function showTable(
  rows: Record<string, Cell>[],
  opts: { columns?: string[]; digits?: number; caption?: string } = {},
): Promise<void> {
  const table = tableText(rows, opts);
  const text = opts.caption ? `${opts.caption}\n${table}` : table;
  if (await displayBundle({ "text/html": tableHTML(rows, opts), "text/plain": text })) return;
  console.log(text);
}

/** An updatable one-line progress display. */
export interface NotebookProgress {
  /** Replaces the shown text (throttled; the latest text is always shown by `done`). */
  update(text: string): Promise<void>;
  /** Shows the final text (or the last update) and stops updating. */
  done(text?: string): Promise<void>;
}

let progressCounter = 0;

/**
 * An updatable progress line. In the kernel it displays once with a `display_id` and then sends
 * `update_display_data` messages for that id (Jupyter's updatable displays), at most every `intervalMs`
 * (default 250), through the ordered output queue (so un-awaited updates cannot overtake later outputs). Outside a kernel it rewrites one stderr line on a terminal, or prints at most every
 * `intervalMs` (default 5000 there) so logs stay short.
 */
export function notebookProgress(opts: { intervalMs?: number } = {}): NotebookProgress {
  const api = jupyter();
  const interval = opts.intervalMs ?? (api ? 250 : 5000);
  const id = `fer-progress-${Date.now().toString(36)}-${++progressCounter}`;
  const tty = !api && Deno.stderr.isTerminal();
  const encoder = new TextEncoder();
  let shown = false;
  let finished = false;
  let lastSent = -Infinity;
  let latest: string | undefined;
  let sentText: string | undefined;
  // Serialise sends so updates arrive in order even when callers do not await.
  let chain: Promise<void> = Promise.resolve();

  let seq = 0;
  let queued = false;
  let pendingText = "";

  const send = (text: string): Promise<void> => {
    sentText = text;
    lastSent = performance.now();
    if (api) {
      // An update still waiting in the queue just takes the newer text: a long synchronous stretch (a
      // training epoch) then leaves one pending update, not hundreds of stale ones.
      pendingText = text;
      if (queued) return chain;
      // Queued now, not when earlier sends finish, so that it cannot fall behind later outputs.
      queued = true;
      const q = queueDisplay(() => {
        queued = false;
        return { "text/html": `<pre>${escapeHtml(pendingText)}</pre>`, "text/plain": pendingText };
      }, { displayId: id, update: shown, seq });
      seq = q.seq;
      shown = true;
      chain = chain.then(() => q.sent);
      return chain;
    }
    chain = chain.then(async () => {
      if (tty) {
        await Deno.stderr.write(encoder.encode(`\r\x1b[2K${text}`));
        shown = true;
      } else {
        console.error(text);
      }
    });
    return chain;
  };

  return {
    update(text: string): Promise<void> {
      if (finished) return chain;
      latest = text;
      if (performance.now() - lastSent < interval) return chain;
      return send(text);
    },
    async done(text?: string): Promise<void> {
      if (finished) return chain;
      finished = true;
      const final = text ?? latest;
      if (final !== undefined && final !== sentText) await send(final);
      await chain;
      if (tty && shown) await Deno.stderr.write(encoder.encode("\n"));
    },
  };
}
