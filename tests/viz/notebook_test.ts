import assert from "node:assert/strict";
import { join } from "node:path";
import { displayPath, findRuns, relativizeText, weightsFallbackLine } from "../../lib/viz/notebook.ts";
import { PROJECT_ROOT } from "../../lib/data/dataset.ts";
import { WeightsNotFoundError } from "../../lib/models/weights/hub.ts";
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

Deno.test("displayPath / relativizeText: no absolute machine paths in notebook outputs", () => {
  const env = (v?: string) => ({ get: (k: string) => (k === "FER2013_DIR" ? v : undefined) });
  assert.equal(displayPath(join(PROJECT_ROOT, "checkpoints", "run-1"), env()), "checkpoints/run-1");
  assert.equal(displayPath(PROJECT_ROOT, env()), ".");
  assert.equal(displayPath("/srv/data/fer2013", env("/srv/data/fer2013")), "$FER2013_DIR");
  assert.equal(displayPath("/srv/data/fer2013/train", env("/srv/data/fer2013")), "$FER2013_DIR/train");
  assert.equal(displayPath("/home/someone/x/y/z.safetensors", env()), "…/y/z.safetensors");
  assert.equal(
    relativizeText(`run folder: ${PROJECT_ROOT}/checkpoints/a and ${PROJECT_ROOT}/checkpoints/b`),
    "run folder: checkpoints/a and checkpoints/b",
  );
});

Deno.test("weightsFallbackLine: offline is one fixed line without the raw network error", () => {
  const raw =
    "Could not download pretrained weights for timm/x from https://huggingface.co/...: fetch failed: " +
    "error sending request: client error (Connect): dns error: failed to lookup address. The network seems " +
    "unreachable (offline?). Download ... by hand";
  const line = weightsFallbackLine(
    "efficientnet_b3.ra2_in1k",
    new WeightsNotFoundError(raw, { offline: true }),
  );
  assert.equal(
    line,
    "ImageNet weights for efficientnet_b3.ra2_in1k not found locally and no network: starting from random " +
      "initialisation; see README › Pretrained weights",
  );
  const other = weightsFallbackLine(
    "t",
    new WeightsNotFoundError(
      "Could not download pretrained weights for timm/t from u: access denied (403). Download by hand",
    ),
  );
  assert.equal(
    other,
    "ImageNet weights for t could not be used (access denied (403)): starting from random initialisation; see README › Pretrained weights",
  );
  assert.ok(!other.includes("\n"));
});
