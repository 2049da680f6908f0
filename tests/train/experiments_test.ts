import assert from "node:assert/strict";
import {
  defaultPreset,
  experimentConfig,
  EXPERIMENTS,
  listExperiments,
  PRESETS,
  retrainCommand,
  withEpochs,
  withSeed,
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
      if (!EXPERIMENTS[name].presets[p]) continue;
      const c = experimentConfig(name, p);
      for (const k of Object.keys(DEFAULT_CONFIG)) {
        assert.ok((c as Record<string, unknown>)[k] !== undefined, `${name}/${p}: ${k}`);
      }
      assert.equal(c.experiment, name);
      assert.ok(c.tMax <= c.epochs || p === "smoke", `${name}/${p}: the cosine should anneal within the run`);
    }
    const [paper, cpu, smoke] = (["paper", "cpu", "smoke"] as const).map((p) => experimentConfig(name, p));
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
      if (!EXPERIMENTS[name].presets[p]) continue;
      const c = experimentConfig(name, p);
      const m = defaultConfig(c.model);
      assert.equal(m.input[2], c.channels, `${name}/${p}`);
      assert.deepEqual([m.normalization.mean, m.normalization.std], [c.mean, c.std], `${name}/${p}`);
    }
  }
});

const STUDY_ARCHS = ["efficientnet_b3", "efficientnet_b3_label_smoothing", "convnext_tiny"];

Deno.test("scratch presets: the study's architectures from random init on the full data, a schedule that completes", () => {
  for (const name of STUDY_ARCHS) {
    const c = experimentConfig(name, "scratch");
    const paper = experimentConfig(name, "paper");
    assert.equal(c.model, paper.model, `${name}: the study's architecture`);
    assert.equal(c.pretrained, false, name);
    assert.equal(c.maxTrainImages, null, `${name}: full training set`);
    assert.equal(c.maxEvalImages, null, name);
    assert.deepEqual(c.augment, {}, `${name}: the study's augmentation`);
    assert.equal(c.schedule, "warmup_cosine", name);
    assert.ok(c.warmupEpochs! >= 1, `${name}: warm-up from scratch`);
    assert.equal(c.tMax, c.epochs, `${name}: the cosine reaches its end at the last epoch`);
    assert.ok(c.patience < c.epochs / 2, `${name}: early stopping can act within the run`);
    assert.ok(c.lr > paper.lr, `${name}: a from-scratch learning rate, above the fine-tuning one`);
  }
  // the rerun's one difference from the baseline, as in the paper preset
  const b = experimentConfig("efficientnet_b3", "scratch");
  const ls = experimentConfig("efficientnet_b3_label_smoothing", "scratch");
  const pb = experimentConfig("efficientnet_b3", "paper");
  const pls = experimentConfig("efficientnet_b3_label_smoothing", "paper");
  const diff = (x: Record<string, unknown>, y: Record<string, unknown>) =>
    Object.keys(x).filter((k) => JSON.stringify(x[k]) !== JSON.stringify(y[k]) && k !== "experiment").sort();
  assert.deepEqual(diff(b, ls), diff(pb, pls));
  assert.deepEqual(diff(b, ls), ["labelSmoothing", "loss", "lr", "model", "patience"]);
  assert.ok(Math.abs(ls.lr / b.lr - pls.lr / pb.lr) < 1e-12, "same learning-rate ratio as the paper");
  assert.ok(ls.patience > b.patience);
  // from-scratch regularisation (stochastic depth, EfficientNet-B3's own training value) in both, so the
  // rerun's difference stays the study's
  assert.deepEqual(b.modelOptions, { headInit: "zeros", dropPathRate: 0.2 });
  assert.deepEqual(ls.modelOptions, b.modelOptions);
  // ConvNeXt-Tiny at 80 px (at 48 px its last stage is a 1×1 map; the 64 px run over-fitted) with stochastic
  // depth 0.4, and EfficientNet-B3's epoch budget, its cosine ending at the last epoch
  const cx = experimentConfig("convnext_tiny", "scratch");
  assert.deepEqual([cx.inputSize, cx.modelOptions], [80, { dropPathRate: 0.4 }]);
  assert.deepEqual([cx.epochs, cx.tMax], [b.epochs, b.epochs]);
  assert.throws(
    () => experimentConfig("fer_cnn", "scratch"),
    /has no scratch preset \(it has paper, cpu, smoke\)/,
  );
});

Deno.test("crop recipes: 44 px crops of 48, erasing, SGD Nesterov, per-step warm-up + cosine over the run", () => {
  for (const name of ["vgg_fer", "vgg_fer_half", "resnet_fer"]) {
    const c = experimentConfig(name, "cpu");
    assert.deepEqual([c.inputSize, c.cropFrom, c.channels], [44, 48, 1], name);
    assert.deepEqual([c.optimizer, c.momentum, c.nesterov], ["sgd", 0.9, true], name);
    assert.equal(c.schedule, "warmup_cosine");
    assert.equal(c.tMax, c.epochs);
    assert.ok(c.erasing && c.erasing.p === 0.5);
    assert.equal(c.pretrained, false);
  }
  // fer_cnn (deno task start) keeps the study-style pipeline and AdamW
  const f = experimentConfig("fer_cnn", "cpu");
  assert.deepEqual([f.optimizer, f.schedule, f.cropFrom, f.erasing, f.mixupAlpha], [
    undefined,
    undefined,
    undefined,
    undefined,
    undefined,
  ]);
});

Deno.test("retrainCommand: the preset's recipe, plus the seed, epochs and T_max where the run changed them", () => {
  const cpu = experimentConfig("vgg_fer", "cpu");
  assert.equal(retrainCommand(cpu, "a"), "deno task train vgg_fer --preset cpu --run a");
  const longer = withEpochs(withSeed(cpu, 1), 60).cfg;
  assert.equal(
    retrainCommand(longer, "b"),
    "deno task train vgg_fer --preset cpu --seed 1 --epochs 60 --run b",
  );
  assert.equal(
    retrainCommand({ ...cpu, tMax: 7 }, "c"),
    "deno task train vgg_fer --preset cpu --t-max 7 --run c",
  );
  // an experiment this version no longer knows: every setting spelled out
  assert.equal(
    retrainCommand({ ...cpu, experiment: "gone", epochs: 5, tMax: 5, seed: 3 }, "d"),
    "deno task train gone --preset cpu --seed 3 --epochs 5 --t-max 5 --run d",
  );
  assert.equal(
    retrainCommand({ ...cpu, precision: "bfloat16" }, "e"),
    "deno task train vgg_fer --preset cpu --precision bfloat16 --run e",
  );
  assert.equal(
    retrainCommand({ ...cpu, precision: "float32" }, "f"),
    "deno task train vgg_fer --preset cpu --run f",
  );
});
