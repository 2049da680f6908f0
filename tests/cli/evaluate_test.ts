import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { formatEvaluation, printReport, reportFromPredictions, reportJson } from "../../lib/cli/evaluate.ts";
import { readPredictionsCsv } from "../../lib/eval/predictions.ts";
import { CLASSES } from "../../lib/data/dataset.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const CLI = join(ROOT, "lib/cli/evaluate.ts");
const CSV_DIR = join(ROOT, "tests/fixtures/metrics/csv");
type Sk = { precision: number; recall: number; "f1-score": number; support: number };
type Case = { name: string; dict: Record<string, Sk | number>; text2: string; text4: string };
const cases = new Map(
  (JSON.parse(readFileSync(join(ROOT, "tests/fixtures/metrics/cases.json"), "utf8")).cases as Case[]).map((
    c,
  ) => [c.name, c]),
);

/** Runs the CLI as a subprocess. */
async function run(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CLI, ...args],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

function close(a: number, b: number, what: string): void {
  assert.ok(Math.abs(a - b) <= 1e-12, `${what}: ${a} != ${b}`);
}

/** Checks the --json object's exact shape and every number against sklearn's output_dict. */
function assertJsonMatches(json: Record<string, unknown>, c: Case): void {
  assert.deepEqual(Object.keys(json), ["accuracy", "per_class", "macro_avg", "weighted_avg"]);
  const per = json.per_class as Record<string, Record<string, number>>;
  assert.deepEqual(Object.keys(per), [...CLASSES]);
  for (const name of CLASSES) {
    const sk = c.dict[name] as Sk;
    assert.deepEqual(Object.keys(per[name]), ["precision", "recall", "f1", "support"]);
    close(per[name].precision, sk.precision, `${c.name}/${name}/precision`);
    close(per[name].recall, sk.recall, `${c.name}/${name}/recall`);
    close(per[name].f1, sk["f1-score"], `${c.name}/${name}/f1`);
    assert.equal(per[name].support, sk.support);
  }
  for (const [key, skKey] of [["macro_avg", "macro avg"], ["weighted_avg", "weighted avg"]]) {
    const avg = json[key] as Record<string, number>;
    const sk = c.dict[skKey] as Sk;
    assert.deepEqual(Object.keys(avg), ["precision", "recall", "f1"]);
    close(avg.precision, sk.precision, `${c.name}/${key}/precision`);
    close(avg.recall, sk.recall, `${c.name}/${key}/recall`);
    close(avg.f1, sk["f1-score"], `${c.name}/${key}/f1`);
  }
  const acc = "accuracy" in c.dict ? c.dict.accuracy as number : (c.dict["micro avg"] as Sk).precision;
  close(json.accuracy as number, acc, `${c.name}/accuracy`);
}

const csvFiles = readdirSync(CSV_DIR).filter((f) => f.endsWith(".csv")).sort();

Deno.test("fixture CSVs include degenerate files", () => {
  for (
    const n of [
      "perfect",
      "all_one_class",
      "never_predicted_disgust",
      "absent_from_both_disgust",
      "single_item_wrong",
    ]
  ) {
    assert.ok(csvFiles.includes(`${n}.csv`), n);
  }
});

for (const f of csvFiles) {
  const name = f.slice(0, -4);
  Deno.test(`evaluate --predictions ${f} --json equals sklearn`, async () => {
    const r = await run("--predictions", join(CSV_DIR, f), "--json");
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trimEnd().split("\n");
    assert.equal(lines.length, 1, "--json prints one JSON line and nothing else");
    assertJsonMatches(JSON.parse(lines[0]), cases.get(name)!);
  });
}

for (const name of ["fer2013_imbalanced", "absent_from_both_disgust", "single_item_wrong"]) {
  Deno.test(`evaluate --predictions ${name}.csv prints sklearn's text report, matrix and CIs`, async () => {
    const r = await run("--predictions", join(CSV_DIR, `${name}.csv`), "--resamples", "200");
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.stdout.includes(cases.get(name)!.text2), r.stdout);
    assert.match(
      r.stdout,
      /confusion matrix \(rows: true class, columns: predicted class\)\ntrue \\ pred +angry/,
    );
    assert.match(r.stdout, /bootstrap 95% confidence intervals \(200 resamples, seed 0, percentile\)/);
    assert.match(r.stdout, /\n {2}accuracy {2}\d\.\d{4} {2}\[\d\.\d{4}, \d\.\d{4}\]\n {2}macro F1 /);
    const d = await run("--predictions", join(CSV_DIR, `${name}.csv`), "--digits", "4", "--resamples", "10");
    assert.ok(d.stdout.includes(cases.get(name)!.text4));
  });
}

Deno.test("evaluate: awkward but valid CSV (quoted paths with commas, CRLF, reordered columns)", async () => {
  const dir = mkdtempSync(join(tmpdir(), "evaluate-"));
  try {
    const file = join(dir, "p.csv");
    writeFileSync(file, 'pred,label,path\r\nhappy,happy,"a, b.png"\r\nsad,happy,"say ""x"".png"\r\n');
    const r = await run("--predictions", file, "--json");
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    assert.equal(j.accuracy, 0.5);
    assert.deepEqual(j.per_class.happy, { precision: 1, recall: 0.5, f1: 2 / 3, support: 2 });
    assert.deepEqual(j.per_class.sad, { precision: 0, recall: 0, f1: 0, support: 0 });
  } finally {
    rmSync(dir, { recursive: true });
  }
});

Deno.test("evaluate: errors name the file and what is wrong, with exit status 1", async () => {
  const dir = mkdtempSync(join(tmpdir(), "evaluate-"));
  try {
    const write = (name: string, text: string) => {
      const p = join(dir, name);
      writeFileSync(p, text);
      return p;
    };
    const expectError = async (args: string[], re: RegExp) => {
      const r = await run(...args);
      assert.equal(r.code, 1, `${args.join(" ")}: ${r.stdout}`);
      assert.equal(r.stdout, "");
      assert.match(r.stderr, re);
    };
    const missing = join(dir, "missing.csv");
    await expectError(["--predictions", missing], new RegExp(`error: ${missing}: no such file`));
    const badHeader = write("bad_header.csv", "file,truth,guess\na.png,happy,sad\n");
    await expectError(
      ["--predictions", badHeader],
      /bad_header\.csv:1: missing column\(s\) path, label, pred/,
    );
    const unknown = write("unknown.csv", "path,label,pred\na.png,happy,sad\nb.png,happy,contempt\n");
    await expectError(["--predictions", unknown], /unknown\.csv:3: unknown class "contempt" in column pred/);
    const ragged = write("ragged.csv", "path,label,pred\na.png,happy\n");
    await expectError(["--predictions", ragged], /ragged\.csv:2: 2 fields, but the header has 3/);
    const empty = write("empty.csv", "");
    await expectError(["--predictions", empty], /empty\.csv: empty file/);
    const headerOnly = write("header_only.csv", "path,label,pred\n");
    await expectError(["--predictions", headerOnly], /header_only\.csv: no predictions/);
    await expectError(
      ["--predictions", headerOnly, "--resamples", "0"],
      /--resamples must be an integer >= 1/,
    );
    await expectError(["--predictions"], /option --predictions needs a value[\s\S]*usage/i);
    await expectError(["--bogus"], /unknown option --bogus[\s\S]*usage: deno task evaluate/);
    await expectError([], /usage: deno task evaluate --predictions FILE/);
    await expectError(
      ["my_run", "--split", "val"],
      /checkpoints\/my_run\/config\.json not found \(is "my_run" a run folder or a run under checkpoints\/\?\)/,
    );
    await expectError(["my_run", "--split", "train"], /--split must be test or val/);
    await expectError(["--predictions", headerOnly, "my_run"], /either --predictions FILE or a run name/);
    await expectError(
      ["my_run", "--tta", "3crop"],
      /--tta must be one of none, hflip, 5crop, 10crop, got "3crop"/,
    );
    await expectError(
      ["my_run", "--tta", "hflip", "--tta-average", "max"],
      /--tta-average must be prob or logit/,
    );
    await expectError(
      ["--ensemble", "run_a", "run_b", "--tta", "auto"],
      /checkpoints\/run_a\/config\.json not found/,
    );
    await expectError(["my_run", "--tta", "auto"], /checkpoints\/my_run\/config\.json not found/);
    await expectError(["--ensemble", "my_run"], /--ensemble needs at least two runs/);
    await expectError(["--ensemble", "run_a", "run_b"], /checkpoints\/run_a\/config\.json not found/);
    await expectError(["run_a", "--choose"], /--choose goes with --ensemble/);
    await expectError(["--ensemble", "run_a", "run_b", "--choose", "--split", "test"], /no --split/);
    await expectError(["--ensemble", "run_a", "--choose"], /--ensemble needs at least two runs/);
    await expectError(
      ["--ensemble", "run_a", "run_b", "--choose"],
      /checkpoints\/run_a\/config\.json not found/,
    );
  } finally {
    rmSync(dir, { recursive: true });
  }
});

Deno.test("reportFromPredictions / printReport helpers (for the <run> mode to reuse)", () => {
  const { rows } = readPredictionsCsv(join(CSV_DIR, "never_predicted_disgust.csv"));
  const ev = reportFromPredictions(rows, { bootstrap: { resamples: 50, seed: 3 } });
  assert.equal(ev.n, rows.length);
  assert.deepEqual(ev.classes, [...CLASSES]);
  assert.equal(ev.bootstrap!.resamples, 50);
  assert.equal(ev.confusion.flat().reduce((a, v) => a + v, 0), rows.length);
  assert.equal(ev.confusion.reduce((a, r) => a + r[1], 0), 0, "disgust never predicted");
  const lines: string[] = [];
  printReport(ev, { json: true, log: (s) => lines.push(s) });
  assert.equal(lines.length, 1);
  assertJsonMatches(JSON.parse(lines[0]), cases.get("never_predicted_disgust")!);
  assert.deepEqual(JSON.parse(lines[0]), JSON.parse(JSON.stringify(reportJson(ev.report))));
  printReport(ev, { log: (s) => lines.push(s) });
  assert.ok(lines[1].startsWith(cases.get("never_predicted_disgust")!.text2));
  assert.equal(reportFromPredictions(rows, { bootstrap: false }).bootstrap, undefined);
  assert.ok(!formatEvaluation(reportFromPredictions(rows, { bootstrap: false })).includes("bootstrap"));
  assert.throws(() => reportFromPredictions([]), /no predictions/);
});
