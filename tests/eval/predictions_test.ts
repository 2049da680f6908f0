import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  csvField,
  formatPredictionsCsv,
  parseCsv,
  parsePredictionsCsv,
  type PredictionRow,
  PredictionsError,
  readPredictionsCsv,
  rowsAccuracy,
  writePredictionsCsv,
} from "../../lib/eval/predictions.ts";
import { CLASSES } from "../../lib/data/dataset.ts";

const CSV_DIR = new URL("../fixtures/metrics/csv/", import.meta.url).pathname;

Deno.test("parseCsv: quotes, doubled quotes, embedded commas and newlines, CRLF, BOM, blank lines", () => {
  const text = '\ufeffa,b,c\r\n"x, y","say ""hi""",3\r\n\r\n"multi\nline",,""\nlast,row,end';
  assert.deepEqual(parseCsv(text), [
    { line: 1, fields: ["a", "b", "c"] },
    { line: 2, fields: ["x, y", 'say "hi"', "3"] },
    { line: 4, fields: ["multi\nline", "", ""] },
    { line: 6, fields: ["last", "row", "end"] },
  ]);
  assert.deepEqual(parseCsv("a,b\n"), [{ line: 1, fields: ["a", "b"] }]);
  assert.deepEqual(parseCsv('""\n'), [{ line: 1, fields: [""] }]);
  assert.throws(() => parseCsv('a\n"open,\nb', "f.csv"), /f\.csv:2: unterminated quoted field/);
  assert.throws(() => parseCsv('a\n"x"y,1', "f.csv"), /f\.csv:2: unexpected text after a closing quote/);
});

Deno.test("csvField quotes only when needed", () => {
  assert.equal(csvField("plain/path.png"), "plain/path.png");
  assert.equal(csvField("a,b"), '"a,b"');
  assert.equal(csvField('say "x"'), '"say ""x"""');
  assert.equal(csvField("line\nbreak"), '"line\nbreak"');
  assert.equal(csvField(" padded"), '" padded"');
});

Deno.test("parsePredictionsCsv reads class names, any column order, optional probabilities", () => {
  const p = parsePredictionsCsv('pred,path,label\nhappy,"dir/a,b.png",sad\nsurprise,c.png,surprise\n');
  assert.equal(p.hasProbs, false);
  assert.deepEqual(p.rows, [
    { path: "dir/a,b.png", label: 5, pred: 3 },
    { path: "c.png", label: 6, pred: 6 },
  ]);
  const probs = CLASSES.map((c) => `p_${c}`).join(",");
  const q = parsePredictionsCsv(`path,label,pred,${probs}\nx.png,angry,fear,0.1,0,0.5,0.1,0.1,0.1,0.1\n`);
  assert.equal(q.hasProbs, true);
  assert.deepEqual(q.rows[0].probs, [0.1, 0, 0.5, 0.1, 0.1, 0.1, 0.1]);
  assert.equal(q.rows[0].label, 0);
  assert.equal(q.rows[0].pred, 2);
});

Deno.test("parsePredictionsCsv errors name the file and line", () => {
  const bad = (text: string, re: RegExp) =>
    assert.throws(() => parsePredictionsCsv(text, { file: "preds.csv" }), (e: Error) => {
      assert.ok(e instanceof PredictionsError, String(e));
      assert.match(e.message, re);
      return true;
    });
  bad("", /preds\.csv: empty file/);
  bad("path,label\na.png,happy\n", /preds\.csv:1: missing column\(s\) pred/);
  bad("file,truth,guess\n", /preds\.csv:1: missing column\(s\) path, label, pred/);
  bad("path,label,pred,pred\n", /preds\.csv:1: duplicate column "pred"/);
  bad(
    "path,label,pred\na.png,happy,sad\nb.png,happyy,sad\n",
    /preds\.csv:3: unknown class "happyy" in column label/,
  );
  bad(
    "path,label,pred\na.png,happy,Sad\n",
    /preds\.csv:2: unknown class "Sad" in column pred.*angry, disgust/,
  );
  bad("path,label,pred\na.png,happy,sad,extra\n", /preds\.csv:2: 4 fields, but the header has 3/);
  bad('path,label,pred\n"multi\nline.png",happy,sad\nb.png,sad\n', /preds\.csv:4: 2 fields/);
  bad("path,label,pred,p_happy\n", /preds\.csv:1: probability columns are partial, missing p_angry/);
  bad("path,label,pred,p_joy\n", /preds\.csv:1: column "p_joy" names no class/);
  const probs = CLASSES.map((c) => `p_${c}`).join(",");
  bad(
    `path,label,pred,${probs}\na,sad,sad,0,0,0,x,0,0,0\n`,
    /preds\.csv:2: column p_happy is not a number: "x"/,
  );
  bad(`path,label,pred,${probs}\na,sad,sad,0,0,0,,0,0,0\n`, /preds\.csv:2: column p_happy is not a number/);
});

Deno.test("write then read round-trips rows, awkward paths and probabilities exactly", () => {
  const dir = mkdtempSync(join(tmpdir(), "preds-"));
  try {
    const rows: PredictionRow[] = [
      { path: 'odd, "name".png', label: 0, pred: 6, probs: [0.1, 0.2, 0.3, 1 / 3, 1e-9, 0, 0.0666] },
      { path: "line\nbreak.png", label: 3, pred: 3, probs: [0, 0, 0, 1, 0, 0, 0] },
      { path: " spaced ", label: 1, pred: 2, probs: [1 / 7, 1 / 7, 1 / 7, 1 / 7, 1 / 7, 1 / 7, 1 / 7] },
    ];
    const file = join(dir, "p.csv");
    writePredictionsCsv(file, rows);
    const back = readPredictionsCsv(file);
    assert.equal(back.hasProbs, true);
    assert.deepEqual(back.rows, rows);
    // Without probabilities on every row, no probability columns are written.
    const text = formatPredictionsCsv([{ path: "a", label: 1, pred: 2 }, rows[0]]);
    assert.equal(text.split("\n")[0], "path,label,pred");
    assert.deepEqual(parsePredictionsCsv(text).rows.map((r) => r.pred), [2, 6]);
    assert.throws(() => formatPredictionsCsv([{ path: "a", label: 7, pred: 0 }]), /label 7/);
    assert.throws(
      () => formatPredictionsCsv([{ path: "a", label: 0, pred: 0, probs: [1] }]),
      /1 probabilities/,
    );
  } finally {
    rmSync(dir, { recursive: true });
  }
});

Deno.test("readPredictionsCsv: missing file named; committed fixture CSVs parse", () => {
  assert.throws(
    () => readPredictionsCsv("/nonexistent/preds.csv"),
    /\/nonexistent\/preds\.csv: no such file/,
  );
  const p = readPredictionsCsv(`${CSV_DIR}random_uniform.csv`);
  assert.equal(p.rows.length, 300);
  assert.equal(p.hasProbs, true);
  for (const r of p.rows) assert.ok(Math.abs(r.probs!.reduce((a, v) => a + v, 0) - 1) < 1e-5);
  assert.equal(readPredictionsCsv(`${CSV_DIR}fer2013_imbalanced.csv`).rows.length, 7178);
});

Deno.test("rowsAccuracy: the fraction of rows predicted as labelled", () => {
  const row = (label: number, pred: number): PredictionRow => ({ path: "p.jpg", label, pred });
  assert.equal(rowsAccuracy([row(0, 0), row(1, 2), row(3, 3), row(4, 4)]), 0.75);
  assert.equal(rowsAccuracy([row(1, 2)]), 0);
  assert.ok(Number.isNaN(rowsAccuracy([])));
});
