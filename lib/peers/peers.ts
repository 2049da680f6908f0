/**
 * The JavaScript expression models people use today, evaluated on the same FER2013 test split as our runs:
 * `@vladmandic/human`'s emotion model (lib/peers/human.ts) and `@vladmandic/face-api`'s expression net
 * (lib/peers/faceapi.ts). Each peer's probabilities are mapped to FER2013's class order and written as a run
 * folder (`checkpoints/peers/<name>/`: config.json, predictions.csv with paths relative to the data root,
 * test_report.txt/json), so lib/eval/compare.ts and notebook 05 read them like our runs
 * ({@link loadPeerRuns}).
 */
import * as tf from "@tensorflow/tfjs-core";
import { existsSync, readdirSync } from "node:fs";
import { join, relative } from "node:path";
import { CLASSES, type Split } from "../data/dataset.ts";
import { classificationReport, confusionMatrix, formatReport } from "../eval/metrics.ts";
import { formatPredictionsCsv, type PredictionRow } from "../eval/predictions.ts";
import { loadRunSummary, type RunSummary } from "../eval/compare.ts";
import { DEFAULT_CONFIG, writeAtomic } from "../train/loop.ts";

/** A peer model: gray 48×48 faces in, probabilities in its own label order out. */
export interface Peer {
  /** Folder name under checkpoints/peers/ and the name in comparisons. */
  name: string;
  title: string;
  /** npm package, version and model file. */
  package: string;
  /** What input the model expects, in words. */
  input: string;
  /** Its class order, in FER2013's names. */
  labels: string[];
  inputSize: number;
  /** Probabilities for a batch of gray faces [n, 48, 48, 1] (0..255), row-major [n × labels]. */
  predict(gray: tf.Tensor4D): Promise<Float32Array>;
  dispose(): void;
}

/** Names of the peers `deno task peers` evaluates. */
export const PEER_NAMES = ["human_emotion", "faceapi_expression"] as const;

/** Where peer runs are written. */
export const PEERS_DIR = join(DEFAULT_CONFIG.outDir, "peers");

/** Loads a peer by name (the engine must be set up first). */
export async function loadPeer(name: string): Promise<Peer> {
  if (name === "human_emotion") return (await import("./human.ts")).humanEmotionPeer();
  if (name === "faceapi_expression") return (await import("./faceapi.ts")).faceApiPeer();
  throw new Error(`unknown peer "${name}"; known: ${PEER_NAMES.join(", ")}`);
}

/** Index map from a peer's label order to FER2013's (throws on a label FER2013 does not have). */
export function labelMap(labels: string[], classes: readonly string[] = CLASSES): number[] {
  return labels.map((l) => {
    const i = classes.indexOf(l);
    if (i < 0) throw new Error(`peer label "${l}" is not a FER2013 class`);
    return i;
  });
}

/** Predicts every image of `split` with `peer`: one row per image, probabilities in FER2013's class order. */
export async function predictPeer(
  peer: Peer,
  split: Split,
  root: string,
  { batchSize = 64, onBatch }: { batchSize?: number; onBatch?: (done: number, total: number) => void } = {},
): Promise<PredictionRow[]> {
  if (split.channels !== 1) {
    throw new Error(`peers take gray images; the split has ${split.channels} channels`);
  }
  const map = labelMap(peer.labels);
  const k = peer.labels.length, n = split.labels.length, px = split.height * split.width;
  const rows: PredictionRow[] = [];
  for (let start = 0; start < n; start += batchSize) {
    const b = Math.min(batchSize, n - start);
    const x = tf.tensor4d(
      Float32Array.from(split.images.subarray(start * px, (start + b) * px)),
      [b, split.height, split.width, 1],
    );
    const p = await peer.predict(x);
    x.dispose();
    for (let i = 0; i < b; i++) {
      const probs = new Array(CLASSES.length).fill(0);
      for (let j = 0; j < k; j++) probs[map[j]] = p[i * k + j];
      const pred = probs.indexOf(Math.max(...probs));
      rows.push({
        path: relative(root, split.paths[start + i]),
        label: split.labels[start + i],
        pred,
        probs,
      });
    }
    onBatch?.(start + b, n);
  }
  return rows;
}

/** Writes a peer's run folder (config.json, predictions.csv, test_report.json/txt); returns the report text. */
export function writePeerRun(
  dir: string,
  peer: Peer,
  rows: PredictionRow[],
  extra: Record<string, unknown> = {},
) {
  Deno.mkdirSync(dir, { recursive: true });
  const y = rows.map((r) => r.label), p = rows.map((r) => r.pred);
  const report = classificationReport(y, p, [...CLASSES]);
  const config = {
    experiment: peer.name,
    preset: null,
    model: `peer:${peer.name}`,
    title: peer.title,
    package: peer.package,
    input: peer.input,
    inputSize: peer.inputSize,
    maxTrainImages: null,
    ...extra,
  };
  writeAtomic(join(dir, "config.json"), JSON.stringify(config, null, 2) + "\n");
  writeAtomic(join(dir, "predictions.csv"), formatPredictionsCsv(rows));
  const summary = {
    run: peer.name,
    experiment: peer.name,
    model: config.model,
    test_accuracy: report.accuracy,
    report,
    confusion_matrix: confusionMatrix(y, p, CLASSES.length),
  };
  writeAtomic(join(dir, "test_report.json"), JSON.stringify(summary, null, 2) + "\n");
  const text =
    `${peer.title} (${peer.package}), test split, ${rows.length} images\ninput: ${peer.input}\n\n` +
    formatReport(report, { digits: 4 });
  writeAtomic(join(dir, "test_report.txt"), text + "\n");
  return text;
}

/**
 * The peers' runs under `dir` (default checkpoints/peers/) in the shape of our runs (lib/eval/compare.ts
 * `RunSummary`), for the comparison notebook; peers not evaluated yet are left out.
 */
export function loadPeerRuns(dir = PEERS_DIR): RunSummary[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).sort()
    .filter((name) =>
      existsSync(join(dir, name, "predictions.csv")) && existsSync(join(dir, name, "config.json"))
    )
    .map((name) => loadRunSummary(join(dir, name), name));
}
