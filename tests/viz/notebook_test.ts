import assert from "node:assert/strict";
import { join } from "node:path";
import { findRuns } from "../../lib/viz/notebook.ts";
import { experimentConfig } from "../../lib/train/experiments.ts";

Deno.test("experimentConfig records the preset it came from", () => {
  assert.equal(experimentConfig("fer_cnn", "cpu").preset, "cpu");
  assert.equal(experimentConfig("convnext_tiny", "smoke").preset, "smoke");
});

Deno.test("findRuns: by experiment, completed runs only, oldest report first, smoke runs only when asked", async () => {
  const out = await Deno.makeTempDir({ prefix: "fer-runs-" });
  try {
    const make = (name: string, experiment: string, preset: string | null, reportAt: number | null) => {
      const dir = join(out, name);
      Deno.mkdirSync(dir);
      Deno.writeTextFileSync(join(dir, "config.json"), JSON.stringify({ experiment, preset }));
      if (reportAt !== null) {
        Deno.writeTextFileSync(join(dir, "test_report.json"), "{}");
        Deno.utimeSync(join(dir, "test_report.json"), reportAt, reportAt);
      }
    };
    make("b-cpu", "fer_cnn", "cpu", 2000);
    make("a-cpu-later", "fer_cnn", "cpu", 3000); // sorts first by name, finished last
    make("c-smoke", "fer_cnn", "smoke", 4000);
    make("d-unfinished", "fer_cnn", "cpu", null);
    make("e-other", "convnext_tiny", null, 1000);
    const names = (l: string[]) => l.map((d) => d.slice(out.length + 1));
    assert.deepEqual(names(findRuns("fer_cnn", out, false)), ["b-cpu", "a-cpu-later"]);
    assert.deepEqual(names(findRuns("fer_cnn", out, true)), ["b-cpu", "a-cpu-later", "c-smoke"]);
    assert.deepEqual(names(findRuns(undefined, out, false)), ["e-other", "b-cpu", "a-cpu-later"]);
    assert.deepEqual(findRuns("fer_cnn", join(out, "missing")), []);
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});
