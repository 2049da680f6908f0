import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import "@tensorflow/tfjs-backend-cpu";
import * as tf from "@tensorflow/tfjs-core";
import sharp from "sharp";
import { makeEnsembleFolder, makeTinyRun } from "../faces/helpers.ts";

await tf.setBackend("cpu");
const CLI = new URL("../../lib/cli/predict.ts", import.meta.url).pathname;
const FIX = new URL("../fixtures/faces/", import.meta.url).pathname;
const SAMPLE = new URL("../../data/sample/test/happy/", import.meta.url).pathname;

async function predict(...args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CLI, ...args],
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  return {
    code: out.code,
    stdout: new TextDecoder().decode(out.stdout),
    stderr: new TextDecoder().decode(out.stderr),
  };
}

Deno.test("predict finds every face, prints box + top classes, says when there is none, annotates", async () => {
  const tmp = mkdtempSync(join(tmpdir(), "fer-predict-"));
  try {
    const run = await makeTinyRun(join(tmp, "run"));
    const r = await predict(
      run,
      FIX + "three_faces.jpg",
      FIX + "no_face.jpg",
      "--top",
      "2",
      "--annotate",
      join(tmp, "ann"),
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /three_faces\.jpg: 3 faces\n/);
    const faces = r.stdout.split("\n").filter((l) => l.startsWith("  face "));
    assert.equal(faces.length, 3);
    for (const l of faces) {
      assert.match(
        l,
        /^ {2}face \d at x=\d+ y=\d+ \d+×\d+ \(detection 0\.\d\d\): \w+ \d+\.\d%, \w+ \d+\.\d%$/,
      );
    }
    assert.match(r.stdout, /no_face\.jpg: no face found \(for a pre-cropped face image use --no-detect\)/);
    assert.deepEqual(readdirSync(join(tmp, "ann")).sort(), ["no_face.png", "three_faces.png"]);
    const meta = await sharp(join(tmp, "ann", "three_faces.png")).metadata();
    assert.deepEqual([meta.width, meta.height], [640, 360]);
    // The annotation changed the pixels on a face box's edge (yellow frame) and nowhere far from the faces.
    const ann = await sharp(join(tmp, "ann", "three_faces.png")).removeAlpha().raw().toBuffer();
    const orig = await sharp(FIX + "three_faces.jpg").raw().toBuffer();
    const [, x, y] = faces[0].match(/x=(\d+) y=(\d+)/)!.map(Number);
    const at = (b: Uint8Array, px: number, py: number) =>
      Array.from(b.subarray((py * 640 + px) * 3, (py * 640 + px) * 3 + 3));
    const yellow = (b: Uint8Array) =>
      Math.max(...[y - 1, y, y + 1].map((py) => at(b, x + 10, py)).map(([r, g, bl]) => r + g - 2 * bl));
    assert.ok(yellow(ann) - yellow(orig) > 150, `no yellow frame at y=${y}`);
    assert.deepEqual(at(ann, 630, 5), at(orig, 630, 5));
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});

Deno.test("predict --no-detect keeps the whole-image mode for pre-cropped 48×48 faces; a missing file fails", async () => {
  const tmp = mkdtempSync(join(tmpdir(), "fer-predict-"));
  try {
    const run = await makeTinyRun(join(tmp, "run"));
    const face = SAMPLE + readdirSync(SAMPLE).sort()[0];
    const r = await predict(run, face, "--no-detect");
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^\S+\.jpg: \w+ \d+\.\d%, \w+ \d+\.\d%, \w+ \d+\.\d%\n$/);
    const bad = await predict(run, join(tmp, "missing.jpg"));
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /missing\.jpg: cannot read image: file not found/);
    const score = await predict(run, face, "--min-score", "2");
    assert.equal(score.code, 2);
    assert.match(score.stderr, /--min-score must be in 0\.\.1, got "2"/);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});

Deno.test("predict --tta on photos: every aligned face averaged over the views; a crop-trained run's 10crop", async () => {
  const tmp = mkdtempSync(join(tmpdir(), "fer-predict-tta-"));
  try {
    const run = await makeTinyRun(join(tmp, "run"), { inputSize: 44, cropFrom: 48 });
    const faces = async (...extra: string[]) => {
      const r = await predict(run, FIX + "three_faces.jpg", "--top", "7", ...extra);
      assert.equal(r.code, 0, r.stderr);
      return r.stdout.split("\n").filter((l) => l.startsWith("  face ")).map((l) => l.split("): ")[1]);
    };
    const plain = await faces();
    const tta = await faces("--tta", "10crop");
    assert.equal(plain.length, 3);
    assert.equal(tta.length, 3);
    assert.notDeepEqual(tta, plain);
    for (const line of tta) {
      const total = [...line.matchAll(/(\d+\.\d)%/g)].reduce((s, m) => s + Number(m[1]), 0);
      assert.ok(Math.abs(total - 100) < 0.5, line); // all seven classes, a distribution
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});

Deno.test("predict with an ensemble folder: each member with its recorded TTA, probabilities averaged", async () => {
  const tmp = mkdtempSync(join(tmpdir(), "fer-predict-ens-"));
  try {
    const a = await makeTinyRun(join(tmp, "a"), { seed: 3 });
    const b = await makeTinyRun(join(tmp, "b"), { seed: 11, inputSize: 44, cropFrom: 48 });
    const ens = makeEnsembleFolder(join(tmp, "ensemble-ab"), [["a", "none"], ["b", "5crop"]]);
    /** class -> percent, for each face (photo) or image (--no-detect) line. */
    const probs = async (...args: string[]) => {
      const r = await predict(...args, "--top", "7");
      assert.equal(r.code, 0, r.stderr);
      return {
        stderr: r.stderr,
        rows: r.stdout.split("\n").filter((l) => / \d+\.\d%/.test(l)).map((l) =>
          Object.fromEntries([...l.matchAll(/(\w+) (\d+\.\d)%/g)].map((m) => [m[1], Number(m[2])]))
        ),
      };
    };
    const face = SAMPLE + readdirSync(SAMPLE).sort()[0];
    for (const input of [[FIX + "three_faces.jpg"], [face, "--no-detect"]]) {
      const e = await probs(ens, ...input);
      assert.match(
        e.stderr,
        /ensemble of 2 members, probabilities averaged:\n {2}a: TTA none\n {2}b: TTA 5crop/,
      );
      const pa = (await probs(a, ...input, "--tta", "none")).rows;
      const pb = (await probs(b, ...input, "--tta", "5crop")).rows;
      assert.equal(e.rows.length, input.length === 1 ? 3 : 1);
      assert.notDeepEqual(pa, pb); // two different members
      e.rows.forEach((row, i) => {
        for (const [c, p] of Object.entries(row)) {
          assert.ok(Math.abs(p - (pa[i][c] + pb[i][c]) / 2) <= 0.1, `${c}: ${p} vs ${pa[i][c]}, ${pb[i][c]}`);
        }
      });
    }
    // a member's folder gone: a clear error naming it
    Deno.renameSync(b, join(tmp, "moved"));
    const r = await predict(ens, face, "--no-detect");
    assert.equal(r.code, 2);
    assert.match(r.stderr, /error: member b of .*ensemble-ab\/config\.json not found \(looked in /);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});
