import assert from "node:assert/strict";
import {
  defaultPreset,
  experimentConfig,
  EXPERIMENTS,
  listExperiments,
  PRESETS,
} from "../../lib/train/experiments.ts";
import { IMAGENET_MEAN, IMAGENET_STD } from "../../lib/data/augment.ts";
import { DEFAULT_CONFIG } from "../../lib/train/config.ts";
import { defaultConfig } from "../../lib/models/registry.ts";

const env = (vars: Record<string, string>) => ({ get: (k: string) => vars[k] });

Deno.test("paper presets reproduce the study's settings", () => {
  for (const name of ["efficientnet_b3", "efficientnet_b3_label_smoothing", "convnext_tiny"]) {
    const c = experimentConfig(name, "paper");
    assert.equal(c.inputSize, 224, name);
    assert.equal(c.channels, 3, name);
    assert.deepEqual([c.mean, c.std], [IMAGENET_MEAN, IMAGENET_STD], name);
    assert.equal(c.batchSize, 64, name);
    assert.equal(c.epochs, 20, name);
    assert.equal(c.tMax, 10, name);
    assert.equal(c.weightDecay, 0.01, name);
    assert.deepEqual(c.augment, {}, name); // the study's Albumentations defaults
    assert.equal(c.maxTrainImages, null);
    assert.equal(c.valFraction, 0.1);
    assert.equal(c.pretrained, true, `${name}: the study fine-tuned ImageNet weights`);
  }
  const b = experimentConfig("efficientnet_b3", "paper");
  assert.deepEqual([b.model, b.loss, b.lr, b.patience], ["efficientnet_b3", "ce", 3e-4, 2]);
  const ls = experimentConfig("efficientnet_b3_label_smoothing", "paper");
  assert.deepEqual(
    [ls.model, ls.loss, ls.labelSmoothing, ls.lr, ls.patience, ls.pretrained],
    ["efficientnet_b3_dropout_head", "label_smoothing", 0.1, 1e-4, 3, true],
  );
  const cx = experimentConfig("convnext_tiny", "paper");
  assert.deepEqual([cx.model, cx.loss, cx.lr, cx.patience], ["convnext_tiny", "ce", 3e-4, 3]);
});

Deno.test("every experiment has complete configs in every preset; cpu and smoke are cheaper", () => {
  for (const name of Object.keys(EXPERIMENTS)) {
    for (const p of PRESETS) {
      const c = experimentConfig(name, p);
      for (const k of Object.keys(DEFAULT_CONFIG)) {
        assert.ok((c as Record<string, unknown>)[k] !== undefined, `${name}/${p}: ${k}`);
      }
      assert.equal(c.experiment, name);
      assert.ok(c.tMax <= c.epochs || p === "smoke", `${name}/${p}: the cosine should anneal within the run`);
    }
    const [paper, cpu, smoke] = PRESETS.map((p) => experimentConfig(name, p));
    assert.ok(cpu.inputSize ** 2 * cpu.epochs < paper.inputSize ** 2 * paper.epochs, name);
    assert.equal(smoke.epochs, 1);
    assert.ok(smoke.maxTrainImages! <= 256 && smoke.maxEvalImages! <= 256);
    assert.equal(smoke.pretrained, false);
  }
  const f = experimentConfig("fer_cnn", "cpu");
  assert.deepEqual([f.model, f.inputSize, f.channels, f.pretrained], ["fer_cnn_small", 48, 1, false]);
});

Deno.test("FER_SMOKE=1 selects the smoke preset; unknown names are clear errors", () => {
  assert.equal(defaultPreset(env({ FER_SMOKE: "1" })), "smoke");
  assert.equal(defaultPreset(env({})), "cpu");
  assert.throws(
    () => experimentConfig("resnet", "cpu"),
    /unknown experiment "resnet"; known: efficientnet_b3/,
  );
  // deno-lint-ignore no-explicit-any
  assert.throws(() => experimentConfig("fer_cnn", "gpu" as any), /unknown preset "gpu"/);
  assert.equal(listExperiments().length, Object.keys(EXPERIMENTS).length);
});

Deno.test("every experiment names a registered model whose normalization matches", () => {
  for (const name of Object.keys(EXPERIMENTS)) {
    for (const p of PRESETS) {
      const c = experimentConfig(name, p);
      const m = defaultConfig(c.model);
      assert.equal(m.input[2], c.channels, `${name}/${p}`);
      assert.deepEqual([m.normalization.mean, m.normalization.std], [c.mean, c.std], `${name}/${p}`);
    }
  }
});
