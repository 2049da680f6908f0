/** lib/runs/files.ts: setting aside the history of a run whose weights were lost. */
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type HistoryRow, readHistory, setAsideLostHistory, writeHistory } from "../../lib/runs/files.ts";
import { runPaths } from "../../lib/runs/paths.ts";

const row = (epoch: number): HistoryRow => ({
  epoch,
  train_loss: 1,
  train_acc: 0.5,
  val_loss: 1,
  val_acc: 0.4 + epoch / 100,
  lr: 1e-3,
  seconds: 10,
  img_s: 100,
});

Deno.test("setAsideLostHistory: renames history.json/.csv without overwriting an earlier lost history", () => {
  const dir = mkdtempSync(join(tmpdir(), "fer-files-"));
  try {
    const paths = runPaths(dir);
    assert.deepEqual(setAsideLostHistory(paths), { epochs: 0, file: null }); // no history: nothing to do

    writeHistory(paths, [row(1), row(2)]);
    assert.deepEqual(setAsideLostHistory(paths), { epochs: 2, file: join(dir, "history.lost.json") });
    assert.ok(!existsSync(paths.historyJson) && !existsSync(paths.historyCsv));
    assert.ok(existsSync(join(dir, "history.lost.csv")));

    // lost a second time: the first lost history stays, the second gets the next name
    writeHistory(paths, [row(1)]);
    assert.deepEqual(setAsideLostHistory(paths), { epochs: 1, file: join(dir, "history.lost-1.json") });
    assert.equal(readHistory({ ...paths, historyJson: join(dir, "history.lost.json") }).length, 2);
    assert.equal(readHistory({ ...paths, historyJson: join(dir, "history.lost-1.json") }).length, 1);
    assert.ok(existsSync(join(dir, "history.lost-1.csv")));
  } finally {
    rmSync(dir, { recursive: true });
  }
});
