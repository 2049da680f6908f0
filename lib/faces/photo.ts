/**
 * The face mode of `deno task predict`: read a photo, find and classify every face, print one line per face and
 * optionally write the annotated photo (lib/faces/annotate.ts).
 */
import type { DetectOptions, FaceDetector } from "./detect.ts";
import { type Photo, photoTensor, readPhoto } from "./files.ts";
import { type Classifier, type FacePrediction, predictFaces, topClasses } from "./pipeline.ts";

/** Faces found in one photo file, with the decoded photo (for annotation). */
export async function predictPhotoFile(
  path: string,
  detector: FaceDetector,
  classifier: Classifier | Classifier[],
  opts: DetectOptions = {},
): Promise<{ photo: Photo; faces: FacePrediction[] }> {
  const photo = await readPhoto(path);
  const image = photoTensor(photo);
  try {
    return { photo, faces: await predictFaces(detector, classifier, image, opts) };
  } finally {
    image.dispose();
  }
}

/** The lines `deno task predict` prints for one photo: a header, then each face's box and top classes. */
export function formatFaces(path: string, faces: FacePrediction[], classes: string[], top = 3): string[] {
  if (faces.length === 0) return [`${path}: no face found (for a pre-cropped face image use --no-detect)`];
  return [
    `${path}: ${faces.length} face${faces.length > 1 ? "s" : ""}`,
    ...faces.map((f, i) => {
      const b = f.box;
      const box = `x=${b.x.toFixed(0)} y=${b.y.toFixed(0)} ${b.width.toFixed(0)}×${b.height.toFixed(0)}`;
      const ranked = topClasses(f.probs, classes, top).map((r) => `${r.name} ${(100 * r.p).toFixed(1)}%`);
      return `  face ${i + 1} at ${box} (detection ${f.score.toFixed(2)}): ${ranked.join(", ")}`;
    }),
  ];
}
