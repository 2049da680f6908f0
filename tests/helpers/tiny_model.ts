/** A tiny model for training-pipeline tests (pool, flatten, dense), fast on the cpu backend, and a run of it. */
import { join } from "node:path";
import * as tfl from "@tensorflow/tfjs-layers";
import { PROJECT_ROOT } from "../../lib/data/dataset.ts";
import type { TrainConfig } from "../../lib/train/config.ts";
import { train, type TrainResult } from "../../lib/train/loop.ts";

/** `deps.createModel` for `train()`: average-pool 4, flatten, dense `numClasses`. */
export function tinyModel(cfg: TrainConfig, numClasses: number): tfl.LayersModel {
  return tfl.sequential({
    layers: [
      tfl.layers.averagePooling2d({ inputShape: [cfg.inputSize, cfg.inputSize, cfg.channels], poolSize: 4 }),
      tfl.layers.flatten(),
      tfl.layers.dense({ units: numClasses }),
    ],
  });
}

/**
 * Trains {@link tinyModel} for one epoch on the bundled sample data (data/sample: 16 px gray, batch 16, 32
 * training and 20 evaluation images, the default augmentation) into `outDir/run`; `over` changes any setting.
 */
export function trainTinyRun(
  outDir: string,
  run: string,
  over: Partial<TrainConfig> = {},
): Promise<TrainResult> {
  return train({
    experiment: "t",
    model: "tiny",
    pretrained: false,
    inputSize: 16,
    channels: 1,
    mean: [0.5],
    std: [0.5],
    batchSize: 16,
    epochs: 1,
    maxTrainImages: 32,
    maxEvalImages: 20,
    dataRoot: join(PROJECT_ROOT, "data", "sample"),
    outDir,
    run,
    ...over,
  }, { createModel: tinyModel, progress: "lines", log: () => {} });
}
