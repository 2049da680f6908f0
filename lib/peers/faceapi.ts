/**
 * `@vladmandic/face-api`'s FaceExpressionNet (face-api.js' expression model, `model/face_expression_model*`),
 * run with face-api's own network code.
 *
 * Input it expects: a face crop from face-api's detectors (RGB), padded to a square and resized to 112×112
 * (face-api's NetInput), minus its per-channel mean (122.782, 117.001, 104.298), /255; output: softmax over
 * neutral, happy, sad, angry, fearful, disgusted, surprised (its order). Each 48×48 FER2013 image is the crop,
 * gray replicated to RGB.
 *
 * How it runs here: face-api's ESM build bundles its own copy of tfjs 4.22.0, and tfjs keeps its engine and
 * kernel registry on `globalThis`, so once this toolkit's engine is up the bundled copy joins it and runs on
 * the same backend (native here). While importing it, `IS_NODE` is switched off for a moment so the bundle does
 * not install its stubbed Node platform over the working one (its `require("util")` is empty in the bundle).
 * Its `toNetInput` needs a DOM or node-canvas environment, so we build its `NetInput` from tensors directly.
 */
import * as tf from "@tensorflow/tfjs-core";
import { join } from "node:path";
import { packageFile } from "../faces/files.ts";
import type { Peer } from "./peers.ts";

/** The model's class order (face-api's FACE_EXPRESSION_LABELS), mapped to FER2013's names. */
export const FACEAPI_LABELS = ["neutral", "happy", "sad", "angry", "fear", "disgust", "surprise"];

// deno-lint-ignore no-explicit-any
type FaceApi = any;

async function importFaceApi(): Promise<FaceApi> {
  const wasNode = tf.env().get("IS_NODE");
  tf.env().set("IS_NODE", false);
  // The bundle registers its kernels again in the shared registry; tfjs warns once per kernel (hundreds).
  const warn = console.warn;
  console.warn = (...a: unknown[]) => {
    if (!/^The kernel '.*' for backend '.*' is already registered/.test(String(a[0]))) warn(...a);
  };
  try {
    return await import("@vladmandic/face-api/dist/face-api.esm.js");
  } finally {
    console.warn = warn;
    tf.env().set("IS_NODE", wasNode);
  }
}

/** face-api's expression net as a {@link Peer}; call after the engine is set up (lib/engine/init.ts). */
export async function faceApiPeer(): Promise<Peer> {
  const faceapi = await importFaceApi();
  if (faceapi.tf.getBackend() !== tf.getBackend()) {
    throw new Error(
      `face-api's tfjs runs on ${faceapi.tf.getBackend()}, not on the engine's ${tf.getBackend()}`,
    );
  }
  const manifestPath = packageFile(
    "@vladmandic/face-api",
    "model",
    "face_expression_model-weights_manifest.json",
  );
  const manifest = JSON.parse(await Deno.readTextFile(manifestPath)) as tf.io.WeightsManifestConfig;
  const specs = manifest.flatMap((g) => g.weights);
  const parts = await Promise.all(
    manifest.flatMap((g) => g.paths).map((p) => Deno.readFile(join(manifestPath, "..", p))),
  );
  const all = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  parts.reduce((off, p) => (all.set(p, off), off + p.length), 0);
  const weights = tf.io.decodeWeights(all.buffer, specs);
  const net = new faceapi.FaceExpressionNet();
  net.loadFromWeightMap(weights);
  return {
    name: "faceapi_expression",
    title: "@vladmandic/face-api FaceExpressionNet",
    package: "@vladmandic/face-api@1.7.15, model/face_expression_model",
    input: "112×112 RGB face crop (padded square, bilinear), minus mean RGB (122.8, 117.0, 104.3), /255",
    labels: FACEAPI_LABELS,
    inputSize: 112,
    predict(gray: tf.Tensor4D): Promise<Float32Array> {
      const rgb = tf.tidy(() => tf.unstack(tf.tile(gray, [1, 1, 1, 3])) as tf.Tensor3D[]);
      const probs = net.forwardInput(new faceapi.NetInput(rgb, true)) as tf.Tensor2D;
      tf.dispose(rgb);
      return probs.data().then((d) => {
        probs.dispose();
        return d as Float32Array;
      });
    },
    dispose: () => net.dispose(),
  };
}
