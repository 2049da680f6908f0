/**
 * Deno side of face handling: where the npm packages keep their model files, loading a TF.js graph model from
 * disk, and decoding a photo to an RGB tensor. (lib/faces/detect.ts and align.ts stay platform-neutral.)
 */
import * as tf from "@tensorflow/tfjs-core";
import { loadGraphModel } from "@tensorflow/tfjs-converter";
import type { GraphModel } from "@tensorflow/tfjs-converter";
import sharp from "sharp";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { FaceDetector } from "./detect.ts";

/** The project's node_modules folder (Deno's `nodeModulesDir: "auto"` installs the import map there). */
export const NODE_MODULES = fileURLToPath(new URL("../../node_modules/", import.meta.url));

/** A file inside an installed npm package; a clear error when the package is not installed. */
export function packageFile(pkg: string, ...path: string[]): string {
  const file = join(NODE_MODULES, pkg, ...path);
  if (!existsSync(file)) {
    throw new Error(`${file} not found: is ${pkg} installed? (it is in deno.json; run \`deno install\`)`);
  }
  return file;
}

/** A model file shipped by `@vladmandic/human` (e.g. `blazeface.json`, `emotion.json`). */
export function humanModel(name: string): string {
  return packageFile("@vladmandic/human", "models", name);
}

/** Reads a TF.js graph model (model.json + the weight files its manifest names) from disk. */
export async function loadGraphModelFile(jsonPath: string): Promise<GraphModel> {
  let json;
  try {
    json = JSON.parse(await Deno.readTextFile(jsonPath));
  } catch (e) {
    throw new Error(`${jsonPath}: cannot read the graph model: ${(e as Error).message}`);
  }
  const specs: tf.io.WeightsManifestEntry[] = [];
  const parts: Uint8Array[] = [];
  for (const group of json.weightsManifest ?? []) {
    specs.push(...group.weights);
    for (const p of group.paths) parts.push(await Deno.readFile(join(dirname(jsonPath), p)));
  }
  const all = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let off = 0;
  for (const p of parts) all.set(p, (off += p.length) - p.length);
  return await loadGraphModel(tf.io.fromMemory({
    modelTopology: json.modelTopology,
    weightSpecs: specs,
    weightData: all.buffer,
    format: json.format,
    userDefinedMetadata: json.userDefinedMetadata,
  }));
}

/** BlazeFace from `@vladmandic/human`'s package files (see lib/faces/detect.ts). */
export async function loadFaceDetector(): Promise<FaceDetector> {
  return new FaceDetector(await loadGraphModelFile(humanModel("blazeface.json")));
}

/** A decoded photo: RGB pixels (EXIF orientation applied) and its size. */
export interface Photo {
  data: Uint8Array;
  width: number;
  height: number;
}

/** Decodes an image file (any format sharp reads) to RGB, rotated upright by its EXIF orientation. */
export async function readPhoto(path: string): Promise<Photo> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    throw new Error(e instanceof Deno.errors.NotFound ? "file not found" : (e as Error).message);
  }
  const { data, info } = await sharp(bytes, { failOn: "error" }).rotate().removeAlpha().toColourspace("srgb")
    .raw().toBuffer({ resolveWithObject: true });
  if (info.channels !== 3) throw new Error(`decoded to ${info.channels} channels, expected 3`);
  return {
    data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
    width: info.width,
    height: info.height,
  };
}

/** The photo as an int32 [h, w, 3] tensor (caller disposes). */
export function photoTensor(p: Photo): tf.Tensor3D {
  return tf.tensor3d(Int32Array.from(p.data), [p.height, p.width, 3], "int32");
}
