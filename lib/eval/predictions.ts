/**
 * Predictions CSV files: `path,label,pred,p_angry,...,p_surprise` (one row per image; `label` and `pred` are
 * class names; the probability columns are optional on read and written when every row has them).
 *
 * The CSV reader is hand-written (RFC 4180: quoted fields, doubled quotes, commas and newlines inside quotes,
 * CRLF) because every error must name the file and the physical line of the record, which the CSV parsers
 * at hand (d3-dsv's csvParseRows) do not report; it is a small state machine.
 */
import { existsSync, readFileSync } from "node:fs";
import { writeAtomicSync } from "../util/fs.ts";
import { CLASSES } from "../data/classes.ts";

/** One prediction: source path, true class index, predicted class index and optional class probabilities. */
export type PredictionRow = { path: string; label: number; pred: number; probs?: number[] };

/** Fraction of rows whose prediction is the label (NaN for no rows). */
export function rowsAccuracy(rows: readonly PredictionRow[]): number {
  return rows.filter((r) => r.pred === r.label).length / rows.length;
}

/**
 * Accuracy of a predictions CSV ({@link rowsAccuracy}) whose class names are `classes` (default FER2013's), or
 * null when the file is absent or has no rows.
 */
export function fileAccuracy(file: string, classes: readonly string[] = CLASSES): number | null {
  if (!existsSync(file)) return null;
  const { rows } = readPredictionsCsv(file, { classes });
  return rows.length ? rowsAccuracy(rows) : null;
}

/** A bad predictions file; the message names the file and (where there is one) the line. */
export class PredictionsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PredictionsError";
  }
}

/** One CSV record with the 1-based line it starts on. */
export type CsvRecord = { line: number; fields: string[] };

/**
 * Splits CSV text into records (RFC 4180). Blank lines are skipped; a leading UTF-8 BOM is dropped.
 * Throws PredictionsError for an unterminated quote or text after a closing quote.
 */
export function parseCsv(text: string, file = "<csv>"): CsvRecord[] {
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const records: CsvRecord[] = [];
  let line = 1;
  let i = 0;
  const n = text.length;
  while (i < n) {
    const start = line;
    const fields: string[] = [];
    let field = "";
    let quotedField = false;
    for (;;) {
      if (i >= n) {
        fields.push(field);
        break;
      }
      const ch = text[i];
      if (ch === '"' && field === "" && !quotedField) {
        // A quoted field: read to the closing quote ("" is a literal quote).
        quotedField = true;
        i++;
        for (;;) {
          if (i >= n) throw new PredictionsError(`${file}:${start}: unterminated quoted field`);
          const c = text[i];
          if (c === '"') {
            if (text[i + 1] === '"') {
              field += '"';
              i += 2;
              continue;
            }
            i++;
            break;
          }
          if (c === "\n") line++;
          field += c;
          i++;
        }
        const next = text[i];
        if (i < n && next !== "," && next !== "\n" && next !== "\r") {
          throw new PredictionsError(`${file}:${line}: unexpected text after a closing quote`);
        }
        continue;
      }
      if (ch === ",") {
        fields.push(field);
        field = "";
        quotedField = false;
        i++;
        continue;
      }
      if (ch === "\n" || ch === "\r") {
        fields.push(field);
        i += ch === "\r" && text[i + 1] === "\n" ? 2 : 1;
        line++;
        break;
      }
      field += ch;
      i++;
    }
    if (!(fields.length === 1 && fields[0] === "" && !quotedField)) records.push({ line: start, fields });
  }
  return records;
}

/** Quotes a CSV field when it holds a comma, quote, line break or surrounding spaces. */
export function csvField(s: string): string {
  return /[",\r\n]|^\s|\s$/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

/** Parsed predictions: the rows and whether the file had probability columns. */
export type Predictions = { rows: PredictionRow[]; hasProbs: boolean; classes: string[] };

/**
 * Parses predictions CSV text. Columns may come in any order; `path`, `label` and `pred` are required, and
 * the probability columns `p_<class>` are either all present or all absent. `file` names the source in
 * error messages.
 */
export function parsePredictionsCsv(
  text: string,
  { file = "<csv>", classes = CLASSES }: { file?: string; classes?: readonly string[] } = {},
): Predictions {
  const records = parseCsv(text, file);
  if (records.length === 0) {
    throw new PredictionsError(`${file}: empty file (expected a header path,label,pred)`);
  }
  const header = records[0].fields.map((h) => h.trim());
  const where = (line: number) => `${file}:${line}`;
  const seen = new Set<string>();
  for (const h of header) {
    if (seen.has(h)) throw new PredictionsError(`${where(records[0].line)}: duplicate column "${h}"`);
    seen.add(h);
  }
  const missing = ["path", "label", "pred"].filter((c) => !seen.has(c));
  if (missing.length) {
    throw new PredictionsError(
      `${where(records[0].line)}: missing column(s) ${missing.join(", ")} (header is "${
        header.join(",")
      }"; ` +
        `expected path,label,pred[,${classes.map((c) => `p_${c}`).join(",")}])`,
    );
  }
  const probCols = header.filter((h) => h.startsWith("p_"));
  for (const h of probCols) {
    if (!classes.includes(h.slice(2))) {
      throw new PredictionsError(
        `${where(records[0].line)}: column "${h}" names no class (classes: ${classes.join(", ")})`,
      );
    }
  }
  const hasProbs = probCols.length > 0;
  if (hasProbs && probCols.length !== classes.length) {
    const absent = classes.filter((c) => !seen.has(`p_${c}`)).map((c) => `p_${c}`);
    throw new PredictionsError(
      `${where(records[0].line)}: probability columns are partial, missing ${absent.join(", ")}`,
    );
  }
  const idx = (c: string) => header.indexOf(c);
  const [iPath, iLabel, iPred] = [idx("path"), idx("label"), idx("pred")];
  const iProbs = classes.map((c) => idx(`p_${c}`));
  const classIndex = new Map(classes.map((c, k) => [c, k]));
  const toClass = (v: string, col: string, line: number) => {
    const k = classIndex.get(v.trim());
    if (k === undefined) {
      throw new PredictionsError(
        `${where(line)}: unknown class "${v}" in column ${col} (classes: ${classes.join(", ")})`,
      );
    }
    return k;
  };
  const rows: PredictionRow[] = [];
  for (const { line, fields } of records.slice(1)) {
    if (fields.length !== header.length) {
      throw new PredictionsError(
        `${where(line)}: ${fields.length} fields, but the header has ${header.length}`,
      );
    }
    const row: PredictionRow = {
      path: fields[iPath],
      label: toClass(fields[iLabel], "label", line),
      pred: toClass(fields[iPred], "pred", line),
    };
    if (hasProbs) {
      row.probs = iProbs.map((i) => {
        const s = fields[i].trim();
        const v = Number(s);
        if (s === "" || !Number.isFinite(v)) {
          throw new PredictionsError(`${where(line)}: column ${header[i]} is not a number: "${fields[i]}"`);
        }
        return v;
      });
    }
    rows.push(row);
  }
  return { rows, hasProbs, classes: [...classes] };
}

/** Reads a predictions CSV file (see parsePredictionsCsv); a missing file is a PredictionsError naming it. */
export function readPredictionsCsv(file: string, opts: { classes?: readonly string[] } = {}): Predictions {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    const code = (e as { code?: string }).code;
    throw new PredictionsError(
      code === "ENOENT" ? `${file}: no such file` : `${file}: cannot read (${(e as Error).message})`,
    );
  }
  return parsePredictionsCsv(text, { file, classes: opts.classes });
}

/**
 * Formats rows as predictions CSV text (header plus one line per row, "\n" line ends). Probability columns
 * are written when every row has `probs` (numbers in shortest round-trip form).
 */
export function formatPredictionsCsv(rows: PredictionRow[], classes: readonly string[] = CLASSES): string {
  const withProbs = rows.length > 0 && rows.every((r) => r.probs !== undefined);
  const header = ["path", "label", "pred", ...(withProbs ? classes.map((c) => `p_${c}`) : [])];
  const lines = [header.map(csvField).join(",")];
  rows.forEach((r, i) => {
    for (const [k, v] of [["label", r.label], ["pred", r.pred]] as const) {
      if (!Number.isInteger(v) || v < 0 || v >= classes.length) {
        throw new RangeError(`row ${i}: ${k} ${v} is not a class index in 0..${classes.length - 1}`);
      }
    }
    const f = [r.path, classes[r.label], classes[r.pred]];
    if (withProbs) {
      if (r.probs!.length !== classes.length) {
        throw new RangeError(`row ${i}: ${r.probs!.length} probabilities for ${classes.length} classes`);
      }
      f.push(...r.probs!.map(String));
    }
    lines.push(f.map(csvField).join(","));
  });
  return lines.join("\n") + "\n";
}

/** Writes rows to a predictions CSV file (see formatPredictionsCsv), atomically (lib/util/fs.ts). */
export function writePredictionsCsv(
  file: string,
  rows: PredictionRow[],
  classes: readonly string[] = CLASSES,
) {
  writeAtomicSync(file, formatPredictionsCsv(rows, classes));
}
