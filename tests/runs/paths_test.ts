import assert from "node:assert/strict";
import {
  checkRunName,
  newRunName,
  predictionsPath,
  runDirFor,
  RunError,
  runPaths,
} from "../../lib/runs/runs.ts";
import { join } from "node:path";
import { PROJECT_ROOT } from "../../lib/util/project.ts";

Deno.test("run names: one folder name under the runs folder", () => {
  for (const bad of ["../../x", "..", ".", "a/b", ".hidden", "", "a\\b", "x\ny"]) {
    assert.throws(() => checkRunName(bad), RunError, JSON.stringify(bad));
    assert.throws(() => runDirFor("/r", bad), RunError, JSON.stringify(bad));
  }
  assert.equal(runDirFor("/r", "ok-1_2.3"), "/r/ok-1_2.3");
  assert.equal(newRunName("fer_cnn", new Date("2026-11-30T11:17:09.123Z")), "fer_cnn-2026-11-30T11-17-09");
  assert.equal(runPaths("/r/x").last, "/r/x/last.safetensors");
  assert.equal(runPaths("/r/x").valReportJson, "/r/x/val_report.json");
});

Deno.test("predictionsPath: one file per split and test-time augmentation", () => {
  const p = runPaths("/r/x");
  assert.equal(predictionsPath(p, "test"), "/r/x/predictions.csv");
  assert.equal(predictionsPath(p, "val", "none"), "/r/x/predictions_val.csv");
  assert.equal(predictionsPath(p, "test", "hflip"), "/r/x/predictions_tta-hflip.csv");
  assert.equal(predictionsPath(p, "val", "10crop"), "/r/x/predictions_val_tta-10crop.csv");
  assert.equal(predictionsPath(p, "val", "10crop", "logit"), "/r/x/predictions_val_tta-10crop-logit.csv");
  assert.equal(predictionsPath(p, "test", "none", "logit"), "/r/x/predictions.csv");
});

Deno.test("RUNS_DIR: checkpoints/ in the project, or FER_RUNS_DIR when set (resolved)", async () => {
  const url = new URL("../../lib/runs/paths.ts", import.meta.url).href;
  const code = `const { RUNS_DIR } = await import(${JSON.stringify(url)}); console.log(RUNS_DIR);`;
  const runsDir = async (env: Record<string, string>) => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["eval", code],
      env,
      cwd: "/tmp",
      stdout: "piped",
      stderr: "inherit",
    }).output();
    return new TextDecoder().decode(out.stdout).trim();
  };
  assert.equal(await runsDir({ FER_RUNS_DIR: "" }), join(PROJECT_ROOT, "checkpoints"));
  assert.equal(await runsDir({ FER_RUNS_DIR: "smoke/runs" }), "/tmp/smoke/runs");
});
