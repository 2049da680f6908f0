import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { initEngine } from "../../lib/engine/init.ts";
import { blazeFaceAnchors, type FaceDetector } from "../../lib/faces/detect.ts";
import { loadFaceDetector, photoTensor, readPhoto } from "../../lib/faces/files.ts";

await initEngine(); // the native engine when present (BlazeFace is slow on the plain cpu backend)
const FIX = new URL("../fixtures/faces/", import.meta.url).pathname;

let detector: FaceDetector | null = null;
async function detectFile(name: string) {
  detector ??= await loadFaceDetector();
  const image = photoTensor(await readPhoto(FIX + name));
  try {
    return await detector.detect(image);
  } finally {
    image.dispose();
  }
}

Deno.test("anchors: 16×16×2 at stride 16 then 8×8×6 at stride 32, centred in their cells", () => {
  const a = blazeFaceAnchors(256);
  assert.equal(a.length, 896 * 2);
  assert.deepEqual([...a.subarray(0, 4)], [8, 8, 8, 8]);
  assert.deepEqual([...a.subarray(2 * 512, 2 * 512 + 2)], [16, 16]);
  assert.deepEqual([...a.subarray(-2)], [240, 240]);
});

Deno.test("detection on the committed fixtures: 3 faces where they were pasted, 1 face, no face", async () => {
  detector ??= await loadFaceDetector();
  const before = tf.memory().numTensors;
  const three = await detectFile("three_faces.jpg");
  assert.equal(three.length, 3);
  // Pasted squares (make_fixtures.ts): left/top/side; every face centre lies in exactly one of them.
  const pasted = [[40, 90, 150], [250, 60, 160], [450, 130, 140]];
  const hits = three.map((f) => {
    const cx = f.box.x + f.box.width / 2, cy = f.box.y + f.box.height / 2;
    return pasted.findIndex(([l, t, s]) => cx > l && cx < l + s && cy > t && cy < t + s);
  });
  assert.deepEqual([...hits].sort(), [0, 1, 2]);
  for (const f of three) {
    assert.ok(f.score >= 0.5 && f.score <= 1);
    // eyes inside the box, the subject's right eye on the image's left
    const { rightEye: r, leftEye: l } = f.landmarks;
    assert.ok(r[0] < l[0], "right eye left of left eye");
    for (const [x, y] of [r, l]) {
      assert.ok(x > f.box.x && x < f.box.x + f.box.width && y > f.box.y && y < f.box.y + f.box.height);
    }
  }
  assert.equal((await detectFile("one_face.jpg")).length, 1);
  assert.equal((await detectFile("no_face.jpg")).length, 0);
  assert.equal(tf.memory().numTensors, before, "detect leaks no tensor");
});

Deno.test("detection: a gray image is a clear error", async () => {
  detector ??= await loadFaceDetector();
  const gray = tf.zeros([32, 32, 1]) as tf.Tensor3D;
  await assert.rejects(() => detector!.detect(gray), /needs an RGB image \[h,w,3\], got shape \[32,32,1\]/);
  gray.dispose();
});

Deno.test("cleanup", () => detector?.dispose());
