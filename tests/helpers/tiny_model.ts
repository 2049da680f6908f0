/** A tiny model for training-pipeline tests (pool, flatten, dense): fast on the cpu backend. */
import * as tfl from "@tensorflow/tfjs-layers";
import type { TrainConfig } from "../../lib/train/config.ts";

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
