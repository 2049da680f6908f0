/** Test helpers for lib/faces and the export: a small run folder made without training. */
import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import { join } from "node:path";
import { CLASSES } from "../../lib/data/dataset.ts";
import { saveCheckpoint } from "../../lib/models/checkpoint.ts";

/** Options of {@link makeTinyRun}. */
export interface TinyRun {
  inputSize?: number;
  channels?: 1 | 3;
  mean?: number[];
  std?: number[];
  seed?: number;
  /** A functional net with conv → batch norm (moving statistics set off their defaults) instead. */
  batchNorm?: boolean;
  /** A crop-trained run: faces resized to `cropFrom` and `inputSize` centre-cropped (TrainConfig `cropFrom`). */
  cropFrom?: number;
}

/**
 * Writes `<dir>/config.json` and `<dir>/best/` for a small seeded conv net (48×48 gray crops in, 7 classes out)
 * whose logits depend on the whole face, so a wrong crop or preprocessing changes its answer.
 */
export async function makeTinyRun(dir: string, o: TinyRun = {}): Promise<string> {
  const { inputSize = 48, channels = 1, mean = [0.5], std = [0.5], seed = 7 } = o;
  const init = (s: number) => tfl.initializers.glorotUniform({ seed: seed + s });
  const model = o.batchNorm ? tinyBatchNormNet(inputSize, channels, init) : tfl.sequential({
    name: "tiny",
    layers: [
      tfl.layers.conv2d({
        inputShape: [inputSize, inputSize, channels],
        filters: 6,
        kernelSize: 5,
        strides: 2,
        activation: "relu",
        kernelInitializer: init(1),
      }),
      tfl.layers.maxPooling2d({ poolSize: 2 }),
      tfl.layers.flatten(),
      tfl.layers.dense({ units: CLASSES.length, kernelInitializer: init(2) }),
    ],
  });
  await Deno.mkdir(dir, { recursive: true });
  const cfg = {
    experiment: "tiny",
    preset: null,
    model: "tiny",
    pretrained: false,
    inputSize,
    channels,
    mean,
    std,
    dataSize: 48,
    seed,
    ...(o.cropFrom ? { cropFrom: o.cropFrom } : {}),
  };
  await Deno.writeTextFile(join(dir, "config.json"), JSON.stringify(cfg, null, 2));
  await saveCheckpoint(model, join(dir, "best"), {
    metadata: { model: "tiny", epoch: 1, classes: [...CLASSES] },
  });
  model.dispose();
  return dir;
}

/** Random gray crops [n, 48, 48, 1] with values 0..255 (seeded). */
export function randomCrops(n: number, seed = 1): tf.Tensor4D {
  return tf.mul(tf.randomUniform([n, 48, 48, 1], 0, 1, "float32", seed), 255) as tf.Tensor4D;
}

/** input → conv → batch norm → ReLU → max pool → flatten → dense, with non-trivial batch-norm statistics. */
function tinyBatchNormNet(
  inputSize: number,
  channels: number,
  init: (s: number) => ReturnType<typeof tfl.initializers.glorotUniform>,
): tfl.LayersModel {
  const input = tfl.input({ shape: [inputSize, inputSize, channels] });
  let x = tfl.layers.conv2d({
    filters: 6,
    kernelSize: 5,
    strides: 2,
    useBias: false,
    kernelInitializer: init(1),
  })
    .apply(input) as tfl.SymbolicTensor;
  const bn = tfl.layers.batchNormalization();
  x = bn.apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.reLU().apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.maxPooling2d({ poolSize: 2 }).apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.flatten().apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.dense({ units: CLASSES.length, kernelInitializer: init(2) }).apply(x) as tfl.SymbolicTensor;
  const model = tfl.model({ inputs: input, outputs: x, name: "tiny_bn" });
  const stats = [
    [1.5, 0.5, 1, 2, 0.8, 1.2], // gamma
    [0.1, -0.2, 0.3, 0, 0.05, -0.1], // beta
    [20, -10, 5, 0, 30, -5], // moving mean
    [400, 100, 50, 900, 200, 25], // moving variance
  ].map((v) => tf.tensor1d(v));
  bn.setWeights(stats);
  tf.dispose(stats);
  return model;
}

/**
 * Writes an ensemble folder `dir` (config.json as `deno task evaluate --ensemble` writes it: `kind: "ensemble"`,
 * members with their folders relative to it and their TTA) over the run folders beside it, e.g. made with
 * {@link makeTinyRun}. `members`: [run name, TTA mode].
 */
export function makeEnsembleFolder(dir: string, members: [string, string][]): string {
  Deno.mkdirSync(dir, { recursive: true });
  Deno.writeTextFileSync(
    join(dir, "config.json"),
    JSON.stringify({
      kind: "ensemble",
      members: members.map(([run, mode]) => ({ run, dir: `../${run}`, tta: { mode, average: "prob" } })),
      tta: "auto",
    }),
  );
  return dir;
}
