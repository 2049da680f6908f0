import assert from "node:assert/strict";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs-core";
import { initEngine } from "../../lib/engine/init.ts";
import sharp from "sharp";
import { alignFaces, cropToImage, cropTransform, FER_FRAMING } from "../../lib/faces/align.ts";
import type { Face, Point } from "../../lib/faces/detect.ts";
import { loadFaceDetector } from "../../lib/faces/files.ts";

await initEngine(); // the native engine when present (BlazeFace is slow on the plain cpu backend)

const FER = Deno.env.get("FER2013_DIR") ?? "data/fer2013";
const HAVE_FER = existsSync(join(FER, "test"));
const SAMPLE = new URL("../../data/sample/test/", import.meta.url).pathname;

function faceWithEyes(r: Point, l: Point): Face {
  const z: Point = [0, 0];
  return {
    box: { x: 0, y: 0, width: 1, height: 1 },
    score: 1,
    landmarks: { rightEye: r, leftEye: l, nose: z, mouth: z, rightEar: z, leftEar: z },
  };
}

/** A 48×48 gray face from the committed sample, as float pixels. */
async function sampleFace(): Promise<Float32Array> {
  const dir = join(SAMPLE, "happy");
  const file = join(dir, readdirSync(dir).sort()[0]);
  return Float32Array.from(await sharp(file).greyscale().raw().toBuffer());
}

const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];

Deno.test("cropTransform puts the eyes where the framing says, level, at the framing's distance", () => {
  const face = faceWithEyes([100, 120], [160, 150]); // tilted by atan(30/60)
  const m = cropTransform(face, 48);
  const d = FER_FRAMING.eyeDistance * 48;
  const cx = FER_FRAMING.eyeX * 48 - 0.5, cy = FER_FRAMING.eyeY * 48 - 0.5; // pixel-index coordinates
  const r = cropToImage(m, [cx - d / 2, cy]), l = cropToImage(m, [cx + d / 2, cy]);
  assert.ok(Math.hypot(r[0] - 100, r[1] - 120) < 1e-9 && Math.hypot(l[0] - 160, l[1] - 150) < 1e-9);
  assert.throws(() => cropTransform(faceWithEyes([5, 5], [5, 5]), 48), /eye landmarks coincide/);
});

Deno.test("alignFaces undoes a known rotation and scale: the crop equals the face that was placed", async () => {
  const face = await sampleFace();
  // Place the 48×48 face into a 300×260 photo, scaled ×4 and rotated by 20°, with tfjs' own warp.
  const angle = (20 * Math.PI) / 180, s = 4;
  const eyes48: Point[] = [[24 - 0.37 * 24, 0.39 * 48], [24 + 0.37 * 24, 0.39 * 48]];
  const [ox, oy] = [150, 130]; // where the face centre goes
  const toPhoto = ([x, y]: Point): Point => {
    const u = (x - 24) * s, v = (y - 24) * s;
    return [ox + u * Math.cos(angle) - v * Math.sin(angle), oy + u * Math.sin(angle) + v * Math.cos(angle)];
  };
  const photo = tf.tidy(() => {
    // photo pixel (x, y) -> face pixel: the inverse of toPhoto, in pixel-index coordinates
    const c = Math.cos(angle) / s, sn = Math.sin(angle) / s;
    const a2 = 24 - 0.5 - c * (ox - 0.5) - sn * (oy - 0.5), b2 = 24 - 0.5 + sn * (ox - 0.5) - c * (oy - 0.5);
    const t = tf.tensor2d([[c, sn, a2, -sn, c, b2, 0, 0]]);
    const g = tf.image.transform(tf.tensor4d(face, [1, 48, 48, 1]), t, "bilinear", "constant", 0, [260, 300]);
    return tf.tile(tf.squeeze(g, [0]), [1, 1, 3]) as tf.Tensor3D;
  });
  const before = tf.memory().numTensors;
  const crop = alignFaces(photo, [faceWithEyes(toPhoto(eyes48[0]), toPhoto(eyes48[1]))], 48, {
    eyeX: 0.5,
    eyeY: 0.39,
    eyeDistance: 0.37,
  });
  assert.deepEqual(crop.shape, [1, 48, 48, 1]);
  const got = crop.dataSync();
  let err = 0;
  for (let y = 4; y < 44; y++) {
    for (let x = 4; x < 44; x++) err += Math.abs(got[y * 48 + x] - face[y * 48 + x]);
  }
  err /= 40 * 40;
  assert.ok(err < 6, `mean abs difference ${err.toFixed(2)} grey levels`); // bilinear up then area down
  tf.dispose([crop, photo]);
  assert.equal(tf.memory().numTensors, before - 1, "only the photo was freed");
  const none = alignFaces(tf.zeros([10, 10, 3]) as tf.Tensor3D, [], 48);
  assert.deepEqual(none.shape, [0, 48, 48, 1]);
  none.dispose();
});

Deno.test({
  name: "FER_FRAMING is FER2013's framing: median eye position and distance of detected FER2013 test faces",
  ignore: !HAVE_FER,
  fn: async () => {
    const detector = await loadFaceDetector();
    const ex: number[] = [], ey: number[] = [], ed: number[] = [];
    let tried = 0;
    for (const cls of readdirSync(join(FER, "test")).sort()) {
      const dir = join(FER, "test", cls);
      for (const f of readdirSync(dir).sort().slice(0, 5)) {
        tried++;
        // pasted at 160 px onto a mid-gray 400×300 canvas at (120, 70)
        const px = await sharp(join(dir, f)).resize(160, 160, { kernel: "linear" }).greyscale().raw()
          .toBuffer();
        const rgb = new Int32Array(400 * 300 * 3).fill(128);
        for (let y = 0; y < 160; y++) {
          for (let x = 0; x < 160; x++) {
            rgb.fill(px[y * 160 + x], ((y + 70) * 400 + x + 120) * 3, ((y + 70) * 400 + x + 121) * 3);
          }
        }
        const img = tf.tensor3d(rgb, [300, 400, 3], "int32");
        const faces = await detector.detect(img);
        img.dispose();
        if (faces.length !== 1) continue;
        const { rightEye: r, leftEye: l } = faces[0].landmarks;
        ex.push(((r[0] + l[0]) / 2 - 120) / 160);
        ey.push(((r[1] + l[1]) / 2 - 70) / 160);
        ed.push(Math.hypot(l[0] - r[0], l[1] - r[1]) / 160);
      }
    }
    detector.dispose();
    assert.ok(ex.length >= 0.9 * tried, `found one face in ${ex.length} of ${tried}`);
    const got = { eyeX: median(ex), eyeY: median(ey), eyeDistance: median(ed) };
    for (const k of ["eyeX", "eyeY", "eyeDistance"] as const) {
      assert.ok(
        Math.abs(got[k] - FER_FRAMING[k]) < 0.02,
        `${k}: measured ${got[k].toFixed(3)}, constant ${FER_FRAMING[k]}`,
      );
    }
  },
});
