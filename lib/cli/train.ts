/**
 * `deno task train <experiment> [--preset cpu|paper|smoke] [--epochs N] [--data DIR] [--run NAME]`
 * `deno task train --resume RUN [--epochs N]`
 *
 * Trains an experiment from lib/train/experiments.ts (preset: --preset, else `smoke` when FER_SMOKE=1, else `cpu`)
 * into checkpoints/<run>/ and prints the test report of the best checkpoint. `--resume RUN` continues a killed
 * run from its last complete epoch with the settings saved in its config.json. Exit status: 0 done, 1 error,
 * 2 bad arguments, 3 training diverged (the best checkpoint is kept and evaluated).
 */
import { parseArgs } from "node:util";
import {
  defaultPreset,
  experimentConfig,
  listExperiments,
  type Preset,
  PRESETS,
} from "../train/experiments.ts";
import { saveRunFigures } from "../runs/runs.ts";
import { engineSummary } from "../engine/init.ts";
import { setupBackend, train, type TrainConfig } from "../train/loop.ts";

const USAGE =
  `usage: deno task train <experiment> [--preset ${PRESETS.join("|")}] [--epochs N] [--data DIR] ` +
  `[--run NAME]\n       deno task train --resume RUN [--epochs N]\nexperiments:\n` +
  listExperiments().map((e) => `  ${e.name.padEnd(34)}${e.description}`).join("\n");

function fail(msg: string): never {
  console.error(`error: ${msg}\n${USAGE}`);
  Deno.exit(2);
}

let parsed;
try {
  parsed = parseArgs({
    args: Deno.args,
    allowPositionals: true,
    options: {
      preset: { type: "string" },
      epochs: { type: "string" },
      data: { type: "string" },
      resume: { type: "string" },
      run: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
} catch (e) {
  fail((e as Error).message);
}
const { values, positionals } = parsed;
if (values.help) {
  console.log(USAGE);
  Deno.exit(0);
}
if (positionals.length > 1) fail(`one experiment expected, got ${positionals.join(" ")}`);
const preset = (values.preset ?? defaultPreset()) as Preset;
if (!PRESETS.includes(preset)) fail(`--preset must be one of ${PRESETS.join(", ")}, got ${values.preset}`);
let epochs: number | undefined;
if (values.epochs !== undefined) {
  epochs = Number(values.epochs);
  if (!Number.isInteger(epochs) || epochs < 1) {
    fail(`--epochs must be a positive integer, got ${values.epochs}`);
  }
}

let cfg: Partial<TrainConfig>;
if (values.resume) {
  if (values.run && values.run !== values.resume) fail("--run and --resume name different runs");
  cfg = { run: values.resume, ...(epochs ? { epochs } : {}) };
} else {
  const name = positionals[0];
  if (!name) fail("no experiment named");
  try {
    cfg = experimentConfig(name, preset);
  } catch (e) {
    fail((e as Error).message);
  }
  if (epochs) cfg.epochs = epochs;
  if (values.data) cfg.dataRoot = values.data;
  if (values.run) cfg.run = values.run;
  if (preset !== "paper") console.log(`preset: ${preset} (use --preset paper for the study's settings)`);
}

try {
  await setupBackend();
  console.log(`backend: ${engineSummary()}`);
  const res = await train(cfg, { resume: Boolean(values.resume) });
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
