import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs-core";
import { initEngine } from "../../lib/engine/init.ts";
import { CLASSES, loadDataset, PROJECT_ROOT } from "../../lib/data/dataset.ts";
import { labelMap, loadPeer, loadPeerRuns, predictPeer, writePeerRun } from "../../lib/peers/peers.ts";

await initEngine();

Deno.test("labelMap: a peer's class order to FER2013's; unknown labels are an error", () => {
  assert.deepEqual(labelMap(["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]), [
    0,
    1,
    2,
    3,
    5,
    6,
    4,
  ]);
  assert.throws(() => labelMap(["contempt"]), /peer label "contempt" is not a FER2013 class/);
});

Deno.test({
  name:
    "both peers on the committed sample: probabilities in FER2013 order, better than chance, a run folder",
  sanitizeResources: false,
  fn: async () => {
    const root = join(PROJECT_ROOT, "data", "sample");
    const ds = await loadDataset({
      root,
      size: 48,
      channels: 1,
      verbose: false,
      cacheDir: mkdtempSync(join(tmpdir(), "fer-c-")),
    });
    const out = mkdtempSync(join(tmpdir(), "fer-peers-"));
    try {
      for (const name of ["human_emotion", "faceapi_expression"]) {
        const peer = await loadPeer(name);
        const before = tf.memory().numTensors;
        const rows = await predictPeer(peer, ds.test, root, { batchSize: 16 });
        assert.equal(tf.memory().numTensors, before, `${name} leaks no tensor`);
        peer.dispose();
        assert.equal(rows.length, ds.test.labels.length);
        for (const r of rows) {
          assert.ok(!r.path.startsWith("/") && r.path.startsWith("test/"), r.path);
          assert.ok(Math.abs(r.probs!.reduce((a, b) => a + b) - 1) < 1e-4);
          assert.equal(r.pred, r.probs!.indexOf(Math.max(...r.probs!)));
        }
        const acc = rows.filter((r) => r.label === r.pred).length / rows.length;
        assert.ok(acc > 0.35, `${name}: accuracy ${acc} on ${rows.length} sample faces`); // chance is ~0.25
        writePeerRun(join(out, name), peer, rows);
      }
      const runs = loadPeerRuns(out);
      assert.deepEqual(runs.map((r) => r.name), ["faceapi_expression", "human_emotion"]);
      for (const r of runs) {
        assert.equal(r.rows.length, ds.test.labels.length);
        assert.equal(r.confusion.length, CLASSES.length);
        assert.ok(r.report.accuracy > 0.35);
      }
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  },
});
