/**
 * Checks an executed notebook (nbformat 4 JSON) for complete, truthful outputs — what `deno task notebooks`
 * verifies after each run:
 *
 * - no error outputs;
 * - the last code cell ends with the final marker of `finishNotebook` (`metadata.fer.final = N`), and the
 *   displays numbered 1..N (`metadata.fer.seq`, see lib/viz/display.ts) are all stored: an output lost between
 *   the kernel and the frontend shows up as a missing number, named with the cell it belonged near;
 * - every chart (`image/svg+xml`) carries its `image/png` fallback, so it shows in untrusted notebooks;
 * - no absolute machine path (the project folder, `$HOME`, `$FER2013_DIR`) appears in any output.
 */

/** The parts of an nbformat 4 notebook read here. */
export interface NotebookJson {
  cells: {
    cell_type: string;
    source: string | string[];
    outputs?: {
      output_type: string;
      name?: string;
      text?: string | string[];
      data?: Record<string, unknown>;
      metadata?: { fer?: { seq?: number; final?: number } } & Record<string, unknown>;
      ename?: string;
      evalue?: string;
    }[];
  }[];
}

type Output = NonNullable<NotebookJson["cells"][number]["outputs"]>[number];

const text = (v: unknown): string => Array.isArray(v) ? v.join("") : typeof v === "string" ? v : "";

/** Where a code cell is, for messages: `cell 5 ("await showRun(...")`. */
function where(index: number, source: string | string[]): string {
  const first = text(source).split("\n")[0].slice(0, 50);
  return `cell ${index} (${JSON.stringify(first)})`;
}

/** Every text an output shows (stream text, text/* and SVG data), for the path check. */
function outputText(o: Output): string {
  const parts = [text(o.text), o.evalue ?? ""];
  for (const [mime, v] of Object.entries(o.data ?? {})) {
    if (mime.startsWith("text/") || mime === "image/svg+xml") parts.push(text(v));
  }
  return parts.join("\n");
}

/**
 * The problems of an executed notebook, one message each (empty: complete). `forbidden` lists absolute
 * paths that must not appear in outputs (default: none; the runner passes the project folder, HOME and
 * FER2013_DIR).
 */
export function checkNotebook(nb: NotebookJson, opts: { forbidden?: string[] } = {}): string[] {
  const problems: string[] = [];
  const code = nb.cells.map((c, i) => ({ c, i })).filter(({ c }) => c.cell_type === "code");
  const seen = new Map<number, number>(); // seq -> cell index
  let final: number | undefined;
  const forbidden = (opts.forbidden ?? []).filter((p) => p.length > 1 && p !== "/");
  for (const { c, i } of code) {
    for (const o of c.outputs ?? []) {
      if (o.output_type === "error") {
        problems.push(`${where(i, c.source)}: error output ${o.ename ?? ""}: ${o.evalue ?? ""}`.trim());
      }
      const fer = o.metadata?.fer;
      if (typeof fer?.seq === "number" && fer.seq > 0) seen.set(fer.seq, i);
      if (typeof fer?.final === "number") final = fer.final;
      const data = o.data ?? {};
      if ("image/svg+xml" in data && !("image/png" in data)) {
        problems.push(
          `${where(i, c.source)}: a chart without its image/png fallback (invisible when untrusted)`,
        );
      }
      const shown = outputText(o);
      for (const p of forbidden) {
        if (shown.includes(p)) problems.push(`${where(i, c.source)}: output shows the absolute path ${p}`);
      }
    }
  }
  if (code.length === 0) return problems;
  const last = code[code.length - 1];
  const lastOut = last.c.outputs?.[last.c.outputs.length - 1];
  if (typeof lastOut?.metadata?.fer?.final !== "number") {
    problems.push(
      `${where(last.i, last.c.source)}: the last output is not the final "notebook complete" marker ` +
        "(outputs at the end of the notebook were lost, or it does not call finishNotebook())",
    );
  }
  if (final !== undefined) {
    const missing: string[] = [];
    for (let k = 1; k <= final; k++) {
      if (seen.has(k)) continue;
      const before = [...seen.entries()].filter(([s]) => s < k).sort((a, b) => b[0] - a[0])[0];
      const cell = before ? nb.cells[before[1]] : undefined;
      missing.push(`#${k}${cell ? ` (after ${where(before[1], cell.source)})` : ""}`);
    }
    if (missing.length) {
      problems.push(`${missing.length} of ${final} displays missing: ${missing.join(", ")}`);
    }
  }
  return problems;
}

/** How many charts a notebook stores (outputs with an image/png), for tests that count rendered images. */
export function storedCharts(nb: NotebookJson): number {
  return nb.cells.flatMap((c) => c.outputs ?? []).filter((o) => o.data && "image/png" in o.data).length;
}
