import assert from "node:assert/strict";
import { checkRunName, newRunName, runDirFor, RunError, runPaths } from "../../lib/runs/runs.ts";

Deno.test("run names: one folder name under the runs folder", () => {
  for (const bad of ["../../x", "..", ".", "a/b", ".hidden", "", "a\\b", "x\ny"]) {
    assert.throws(() => checkRunName(bad), RunError, JSON.stringify(bad));
    assert.throws(() => runDirFor("/r", bad), RunError, JSON.stringify(bad));
  }
  assert.equal(runDirFor("/r", "ok-1_2.3"), "/r/ok-1_2.3");
  assert.equal(newRunName("fer_cnn", new Date("2026-11-30T11:17:09.123Z")), "fer_cnn-2026-11-30T11-17-09");
  assert.equal(runPaths("/r/x").last, "/r/x/last.safetensors");
});
