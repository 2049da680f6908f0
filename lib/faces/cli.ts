/**
 * The face mode of `deno task predict` (lib/cli/predict.ts): detect, align and classify every face in each
 * photo, print the faces, and write annotated copies with `--annotate`.
 */
import { existsSync, mkdirSync, statSync } from "node:fs";
import { basename, extname, join } from "node:path";
import { annotatePhoto } from "./annotate.ts";
import { loadFaceDetector } from "./files.ts";
import { formatFaces, predictPhotoFile } from "./photo.ts";
import type { Classifier } from "./pipeline.ts";
import { preprocessingOf } from "./preprocess.ts";
import type { Predictor } from "../eval/predictors.ts";

/** The face classifiers of loaded models (lib/eval/predictors.ts `loadPredictors`), each with its preprocessing and TTA. */
export function faceClassifiers(predictors: Predictor[]): Classifier[] {
  return predictors.map((p) => ({
    model: p.model,
    classes: p.classes,
    preprocessing: preprocessingOf(p.cfg),
    tta: p.tta,
  }));
}

/** What the face mode needs from the CLI. */
export interface FaceCliOptions {
  /** The run's model, or an ensemble's members (probabilities averaged); disposed at the end. */
  classifiers: Classifier[];
  classes: string[];
  top: number;
  minScore: number;
  /** One image: the output file; several: a folder that receives `<name>.png` per image. */
  annotate?: string;
}

/** An image argument: as typed (for messages) and resolved (to read). */
export type ImageArg = { shown: string; file: string };

/** Runs the face mode over `images`; returns the exit status (0 all read, 1 some image could not be read). */
export async function predictFaceImages(images: ImageArg[], o: FaceCliOptions): Promise<number> {
  const detector = await loadFaceDetector();
  const classifier = o.classifiers.length === 1 ? o.classifiers[0] : o.classifiers;
  const toFolder = o.annotate !== undefined &&
    (images.length > 1 || (existsSync(o.annotate) && statSync(o.annotate).isDirectory()));
  if (toFolder) mkdirSync(o.annotate!, { recursive: true });
  let failed = 0;
  try {
    for (const { shown: path, file } of images) {
      let result;
      try {
        result = await predictPhotoFile(file, detector, classifier, { minScore: o.minScore });
      } catch (e) {
        const msg = (e as Error).message;
        console.error(
          `${path}: cannot read image: ${msg === "file not found" ? `file not found (${file})` : msg}`,
        );
        failed++;
        continue;
      }
      for (const line of formatFaces(path, result.faces, o.classes, o.top)) console.log(line);
      if (o.annotate !== undefined) {
        const out = toFolder ? join(o.annotate, `${basename(path, extname(path))}.png`) : o.annotate;
        await annotatePhoto(result.photo, result.faces, o.classes, out);
        console.log(`  annotated: ${out}`);
      }
    }
  } finally {
    detector.dispose();
    for (const c of o.classifiers) c.model.dispose();
  }
  return failed ? 1 : 0;
}
