/**
 * Notebook display helpers for the Deno Jupyter kernel (`deno jupyter`).
 *
 * Inside the kernel they send MIME bundles with `Deno.jupyter.display(bundle, { raw: true })`; anywhere else
 * (scripts, tests) `Deno.jupyter` is unavailable (reading it throws), so they fall back to short console
 * output and never fail.
 *
 * @module
 */

/** A MIME bundle as accepted by `Deno.jupyter.display` with `raw: true`. */
export type MimeBundle = Record<string, string>;

/** The part of the `Deno.jupyter` API used here. */
export interface JupyterDisplay {
  display(
    obj: unknown,
    options?: { raw?: boolean; update?: boolean; display_id?: string },
  ): Promise<void>;
}

/** `undefined`: detect; `null`: force "not in a kernel"; an object: use it (tests, custom frontends). */
let override: JupyterDisplay | null | undefined;

/**
 * Replaces the Jupyter API the helpers talk to: pass a stub to capture messages (tests), `null` to act as if
 * outside a kernel, or `undefined` to go back to detecting `Deno.jupyter`.
 */
export function setJupyter(api: JupyterDisplay | null | undefined): void {
  override = api;
}

/** The kernel's display API, or undefined when not running under `deno jupyter`. */
export function jupyter(): JupyterDisplay | undefined {
  if (override !== undefined) return override ?? undefined;
  try {
    // Outside `deno jupyter` the `Deno.jupyter` getter throws ("only available in `deno jupyter`").
    const api = (Deno as unknown as { jupyter?: JupyterDisplay }).jupyter;
    return typeof api?.display === "function" ? api : undefined;
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

/** Sends a raw MIME bundle to the notebook; returns false (and does nothing) outside a kernel. */
export async function displayBundle(bundle: MimeBundle): Promise<boolean> {
  const api = jupyter();
  if (!api) return false;
  await api.display(bundle, { raw: true });
  return true;
}

/**
 * Shows an SVG figure (e.g. from `lib/viz/plots.ts`) in the notebook. Outside a kernel prints one short line,
 * unless `quiet` is set.
 */
export async function show(svg: string, opts: { quiet?: boolean } = {}): Promise<void> {
  if (await displayBundle({ "image/svg+xml": svg })) return;
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

/** Shows an HTML fragment; outside a kernel prints a one-line note (HTML is not useful on a terminal). */
export async function showHTML(html: string, opts: { quiet?: boolean } = {}): Promise<void> {
  if (await displayBundle({ "text/html": html })) return;
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
  const text = tableText(rows, opts);
  if (await displayBundle({ "text/html": tableHTML(rows, opts), "text/plain": text })) return;
  console.log(opts.caption ? `${opts.caption}\n${text}` : text);
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
 * (default 250). Outside a kernel it rewrites one stderr line on a terminal, or prints at most every
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

  const send = (text: string): Promise<void> => {
    sentText = text;
    lastSent = performance.now();
    chain = chain.then(async () => {
      if (api) {
        const bundle = { "text/html": `<pre>${escapeHtml(text)}</pre>`, "text/plain": text };
        await api.display(bundle, { raw: true, display_id: id, update: shown });
        shown = true;
      } else if (tty) {
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
