import assert from "node:assert/strict";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import { PROJECT_ROOT, SKIPPED_FILE } from "../../lib/data/dataset.ts";
import { trainTinyRun } from "../helpers/tiny_model.ts";

await tf.setBackend("cpu");

Deno.test("a run records the files the data loader skipped (skipped.json in the run folder)", async () => {
  const tmp = mkdtempSync(join(tmpdir(), "fer-skipped-"));
  try {
    const root = join(tmp, "data");
    cpSync(join(PROJECT_ROOT, "data", "sample"), root, { recursive: true });
    writeFileSync(join(root, "train", "happy", "broken.jpg"), "not a jpeg");
    writeFileSync(join(root, "test", "sad", "notes.txt"), "hello");
    const res = await trainTinyRun(join(tmp, "runs"), "r", {
      augment: false,
      maxTrainImages: 16,
      maxEvalImages: 8,
      dataRoot: root,
    });
    const j = JSON.parse(readFileSync(join(res.runDir, SKIPPED_FILE), "utf8"));
    assert.equal(j.root, root);
    assert.deepEqual(j.files.map((f: { path: string }) => f.path), [
      "train/happy/broken.jpg",
      "test/sad/notes.txt",
    ]);
    assert.match(j.files[0].reason, /cannot decode/);
    assert.deepEqual(j.links, []);
  } finally {
    rmSync(tmp, { recursive: true });
  }
});
