/**
 * The benchmark's nets: the two reference nets (a VGG-style net at 48×48×1 and a small ConvNeXt-style net at
 * 32×32×3) and the study's own models (EfficientNet-B3 and ConvNeXt-Tiny at 48 px, batch 32, and one 224 px
 * step each), each with the settings the PyTorch reference (`tests/bench/torch_ref.py`) uses for the same
 * architecture, so that `deno task bench` can report one ratio per model.
 *
 * @module
 */
import type * as tfl from "@tensorflow/tfjs-layers";
import { createModel } from "../models/registry.ts";
import { convnextNet, referenceNet } from "./nets.ts";

/** One benchmarked net: how to build it, its batch sizes and how long to time it. */
export type BenchNet = {
  /** Name used on the command line, in the JSON and by torch_ref.py. */
  name: string;
  /** What it is, for the table. */
  label: string;
  build: () => tfl.LayersModel;
  /** Training batch and inference batch. */
  batch: number;
  inferBatch: number;
  /** Warm-up steps and the minimum / maximum number of timed steps (time budget permitting). */
  warmup: number;
  minSteps: number;
  maxSteps: number;
  /** Share of the `--seconds` budget this net's training gets. */
  timeShare: number;
  /** Only engines with oneDNN/OpenBLAS (or a GPU) can run it in reasonable time. */
  fastEnginesOnly: boolean;
};

const study = (model: string, size: number): Pick<BenchNet, "build" | "label"> => ({
  build: () => createModel(model, { inputShape: [size, size, 3], numClasses: 7 }),
  label: `${model} @${size} (random init, 3 channels, 7 classes)`,
});

/** Every net the benchmark knows, in report order. */
export const BENCH_NETS: BenchNet[] = [
  {
    name: "ref",
    label: "reference VGG-style net @48×48×1",
    build: referenceNet,
    batch: 64,
    inferBatch: 256,
    warmup: 2,
    minSteps: 3,
    maxSteps: 1000,
    timeShare: 1,
    fastEnginesOnly: false,
  },
  {
    name: "convnext",
    label: "small ConvNeXt-style depthwise net @32×32×3",
    build: convnextNet,
    batch: 64,
    inferBatch: 256,
    warmup: 2,
    minSteps: 3,
    maxSteps: 1000,
    timeShare: 0.5,
    fastEnginesOnly: false,
  },
  {
    name: "efficientnet_b3@48",
    ...study("efficientnet_b3", 48),
    batch: 32,
    inferBatch: 256,
    warmup: 2,
    minSteps: 3,
    maxSteps: 1000,
    timeShare: 1,
    fastEnginesOnly: true,
  },
  {
    name: "convnext_tiny@48",
    ...study("convnext_tiny", 48),
    batch: 32,
    inferBatch: 256,
    warmup: 2,
    minSteps: 3,
    maxSteps: 1000,
    timeShare: 1,
    fastEnginesOnly: true,
  },
  {
    name: "efficientnet_b3@224",
    ...study("efficientnet_b3", 224),
    batch: 16,
    inferBatch: 16,
    warmup: 1,
    minSteps: 1,
    maxSteps: 2,
    timeShare: 0,
    fastEnginesOnly: true,
  },
  {
    name: "convnext_tiny@224",
    ...study("convnext_tiny", 224),
    batch: 16,
    inferBatch: 16,
    warmup: 1,
    minSteps: 1,
    maxSteps: 2,
    timeShare: 0,
    fastEnginesOnly: true,
  },
];

/** The net called `name`, or an error listing the known names. */
export function benchNet(name: string): BenchNet {
  const net = BENCH_NETS.find((n) => n.name === name);
  if (!net) {
    throw new Error(`unknown bench net "${name}"; known: ${BENCH_NETS.map((n) => n.name).join(", ")}`);
  }
  return net;
}
