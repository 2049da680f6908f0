/**
 * `deno task train <experiment> [--preset cpu|paper|smoke] [--epochs N] [--seed N] [--precision P] [--data DIR]
 *   [--run NAME]`
 * `deno task train --resume RUN [--epochs N] [--data DIR] [--save-minutes M]`
 *
 * Trains an experiment from lib/train/experiments.ts (preset: --preset, else `smoke` when FER_SMOKE=1, else `cpu`)
 * into checkpoints/<run>/ and prints the test report of the best checkpoint. `--seed N` reseeds the weights, batch
 * order and augmentation and keeps the preset's validation split (lib/train/config.ts `splitSeed`). `--precision
 * bfloat16` trains with bfloat16 convolutions and dense layers where the CPU has them (lib/engine/init.ts `setPrecision`). The resume
 * state is saved after every epoch and every `--save-minutes` (default 10) inside one. `--resume RUN` continues a killed run from its
 * last saved state (mid-epoch too) with the settings saved in its config.json, on the dataset it recorded (or
 * `--data DIR`, which must hold the same data). Exit status: 0 done, 1 error,
 * 2 bad arguments, 3 training diverged (the best checkpoint is kept and evaluated).
 */
import {
  defaultPreset,
  experimentConfig,
  listExperiments,
  type Preset,
  PRESETS,
  withEpochs,
  withSeed,
} from "../train/experiments.ts";
import { saveRunFigures } from "../runs/runs.ts";
import { engineSummary, initEngine, PRECISIONS } from "../engine/init.ts";
import type { Precision } from "../engine/init.ts";
import type { TrainConfig } from "../train/config.ts";
import { train } from "../train/loop.ts";
import { ArgsError, type CommandSpec, parseCli } from "./args.ts";

const SPEC: CommandSpec = {
  name: "train",
  usage: [
    `<experiment> [--preset ${PRESETS.join("|")}] [--epochs N] [--t-max N] [--seed N] ` +
    `[--precision ${PRECISIONS.join("|")}] [--data DIR] [--run NAME] [--save-minutes M]`,
    "--resume RUN [--epochs N] [--data DIR] [--save-minutes M]",
  ],
  summary:
    "Trains an experiment into checkpoints/<run>/ and prints the test report of its best checkpoint; " +
    "--resume continues\na killed run from its last saved state (every epoch, and every --save-minutes inside " +
    "one) with the settings in its config.json. " +
    "Exit status: 0 done, 1 error,\n2 bad arguments, 3 training diverged.",
  options: {
    preset: {
      type: "string",
      value: "NAME",
      help: `${PRESETS.join(", ")}`,
      default: "cpu (smoke with FER_SMOKE=1)",
    },
    epochs: {
      type: "string",
      value: "N",
      help: "number of epochs (T_max follows when the preset's equals its epochs)",
    },
    "t-max": {
      type: "string",
      value: "N",
      help: "cosine schedule length in epochs (0: constant learning rate)",
    },
    seed: {
      type: "string",
      value: "N",
      help: "seed of the weights, batch order and augmentation; the validation split stays the preset's",
      default: "the preset's (42)",
    },
    precision: {
      type: "string",
      value: "P",
      help:
        "convolutions and dense layers of the training steps in bfloat16 where the CPU has AMX or AVX-512 " +
        "BF16; validation and test stay float32",
      default: "float32",
    },
    data: {
      type: "string",
      value: "DIR",
      help: "dataset root (default FER2013_DIR, data/fer2013, the sample)",
    },
    run: {
      type: "string",
      value: "NAME",
      help: "run folder name under checkpoints/ (default <experiment>-<time>)",
    },
    resume: { type: "string", value: "RUN", help: "continue this run" },
    "save-minutes": {
      type: "string",
      value: "M",
      help: "minutes between the resume states saved inside an epoch (0: after every batch)",
      default: "10",
    },
  },
  positionals: { max: 1 },
  epilog: "experiments:\n" +
    listExperiments().map((e) => `  ${e.name.padEnd(34)}${e.description}`).join("\n"),
};

const { cfg, resume, note, saveMinutes } = parseCli(SPEC, (a) => {
  const saveMinutes = a.int("save-minutes", { min: 0, fallback: 10 });
  const preset = a.choice("preset", PRESETS, defaultPreset()) as Preset;
  const epochs = a.int("epochs", { min: 1 });
  const tMax = a.int("t-max", { min: 0 });
  const seed = a.int("seed", { min: 0, max: 2 ** 31 - 1 });
  const precision: Precision | undefined = a.choice("precision", PRECISIONS);
  const resume = a.string("resume");
  const run = a.string("run");
  const data = a.path("data");
  if (resume !== undefined) {
    if (a.positionals.length) {
      throw new ArgsError(`--resume continues a run: no experiment name (got "${a.positionals[0]}")`);
    }
    if (run !== undefined && run !== resume) throw new ArgsError("--run and --resume name different runs");
    if (tMax !== undefined) throw new ArgsError("--t-max cannot change a run being resumed");
    if (seed !== undefined) throw new ArgsError("--seed cannot change a run being resumed");
    if (precision !== undefined) throw new ArgsError("--precision cannot change a run being resumed");
    return {
      cfg: { run: resume, ...(epochs ? { epochs } : {}), ...(data ? { dataRoot: data } : {}) } as Partial<
        TrainConfig
      >,
      resume: true,
      note: "",
      saveMinutes,
    };
  }
  const name = a.positionals[0];
  if (!name) throw new ArgsError("no experiment named");
  let base: TrainConfig;
  try {
    base = experimentConfig(name, preset);
  } catch (e) {
    throw new ArgsError((e as Error).message);
  }
  const { cfg, note } = withEpochs(seed === undefined ? base : withSeed(base, seed), epochs, tMax);
  if (data) cfg.dataRoot = data;
  if (run !== undefined) cfg.run = run;
  if (precision && precision !== "float32") cfg.precision = precision;
  return { cfg: cfg as Partial<TrainConfig>, resume: false, note, saveMinutes };
});
if (!resume && cfg.preset !== "paper") {
  console.log(`preset: ${cfg.preset} (use --preset paper for the study's settings)`);
}
if (note) console.log(note);

try {
  await initEngine();
  console.log(`backend: ${engineSummary()}`);
  const res = await train(cfg, { resume, saveEverySeconds: 60 * saveMinutes });
  if (res.stopped === "diverged") {
    console.error(`training diverged: ${res.message}`);
    Deno.exit(3);
  }
  await saveRunFigures(res.runDir);
  console.log(`done (${res.stopped}); best epoch ${res.bestEpoch}, results and figures in ${res.runDir}`);
} catch (e) {
  const err = e as Error;
  console.error(`error: ${err.message}`);
  if (Deno.env.get("FER_DEBUG")) console.error(err.stack);
  Deno.exit(1);
}
