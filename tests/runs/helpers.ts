/** Shared by the run-folder tests: a tiny generated image folder, a tiny model, a config, and a CLI runner. */
import * as tfl from "@tensorflow/tfjs-layers";
import sharp from "sharp";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import type { TrainConfig } from "../../lib/train/config.ts";
import { mulberry32 } from "../../lib/util/rng.ts";

/** The project root. */
export const ROOT = new URL("../../", import.meta.url).pathname;

/** Image side of the generated datasets (tiny: the cpu backend is slow for convolutions). */
export const S = 8;

/**
 * Writes an ImageFolder dataset `root/{train,test}/<class>/<i>.png` of S×S gray images whose brightness shows the
 * class (so a model learns a little). Deterministic for a given `seed`.
 */
export async function makeImageFolder(
  root: string,
  { classes = ["a", "b", "c"], train = 12, test = 4, seed = 1 } = {},
): Promise<void> {
  const r = mulberry32(seed);
  for (const [split, n] of [["train", train], ["test", test]] as const) {
    for (const [k, c] of classes.entries()) {
      mkdirSync(join(root, split, c), { recursive: true });
      for (let i = 0; i < n; i++) {
        const px = Uint8Array.from({ length: S * S }, () => Math.min(255, k * 60 + Math.floor(r() * 80)));
        await sharp(px, { raw: { width: S, height: S, channels: 1 } }).png()
          .toFile(join(root, split, c, `${i}.png`));
      }
    }
  }
}

/**
 * conv -> BN -> relu -> dropout -> GAP -> dense: every stateful / random layer type the loop must handle, with
 * named layers (checkpoints match weights by name). `modelOptions: { bn: false }` leaves out the BN layer.
 */
export function tinyModel(cfg: TrainConfig, numClasses: number): tfl.LayersModel {
  return tfl.sequential({
    name: "tiny",
    layers: [
      tfl.layers.conv2d({
        inputShape: [cfg.inputSize, cfg.inputSize, cfg.channels],
        filters: 4,
        kernelSize: 3,
        name: "conv",
      }),
      ...(cfg.modelOptions?.bn === false ? [] : [tfl.layers.batchNormalization({ name: "bn" })]),
      tfl.layers.activation({ activation: "relu", name: "relu" }),
      tfl.layers.dropout({ rate: 0.3, name: "drop" }),
      tfl.layers.globalAveragePooling2d({ name: "pool" }),
      tfl.layers.dense({ units: numClasses, name: "fc" }),
    ],
  });
}

/** A small config for the generated data (no dataRoot: the caller or the environment says where). */
export function tinyConfig(
  outDir: string,
  run: string,
  over: Partial<TrainConfig> = {},
): Partial<TrainConfig> {
  return {
    experiment: "test",
    model: "tiny",
    pretrained: false,
    inputSize: S,
    channels: 1,
    mean: [0.5],
    std: [0.5],
    dataSize: S,
    batchSize: 8,
    epochs: 3,
    lr: 1e-2,
    tMax: 2,
    patience: 10,
    valFraction: 0.25,
    seed: 7,
    outDir,
    run,
    ...over,
  };
}

/** Runs `deno run -A <script> ...args` with `env` (a value of null removes the variable). */
export async function runDeno(
  script: string,
  args: string[],
  env: Record<string, string | null> = {},
): Promise<{ code: number; signal: Deno.Signal | null; stdout: string; stderr: string }> {
  const full = Deno.env.toObject();
  for (const [k, v] of Object.entries(env)) {
    if (v === null) delete full[k];
    else full[k] = v;
  }
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", script, ...args],
    cwd: ROOT,
    env: full,
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return {
    code: out.code,
    signal: out.signal,
    stdout: dec.decode(out.stdout),
    stderr: dec.decode(out.stderr),
  };
}

/** Every file under `dir` (relative paths), recursively. */
export function listFiles(dir: string, prefix = ""): string[] {
  const out: string[] = [];
  for (const e of Deno.readDirSync(dir)) {
    const rel = prefix ? `${prefix}/${e.name}` : e.name;
    if (e.isDirectory) out.push(...listFiles(join(dir, e.name), rel));
    else out.push(rel);
  }
  return out.sort();
}
