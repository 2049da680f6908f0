import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import { join } from "node:path";
import {
  CheckpointError,
  loadCheckpoint,
  loadCheckpointWeights,
  saveCheckpoint,
} from "../../lib/models/checkpoint.ts";
import { convnext } from "../../lib/models/convnext.ts";
import { ferCnn } from "../../lib/models/fer_cnn.ts";

await tf.setBackend("cpu");

/** A small model with every custom piece (LayerScale, drop path, LayerNorm, depthwise conv). */
function small(seed: number, dims = [8, 16]) {
  return convnext({ depths: [1, 2], dims }, {
    inputShape: [16, 16, 3],
    dropPathRate: 0.2,
    seed,
    name: "small",
  });
}

function predict(model: { predict: (x: tf.Tensor) => tf.Tensor | tf.Tensor[] }): Float32Array {
  return tf.tidy(() => {
    const x = tf.randomUniform([2, 16, 16, 3], -1, 1, "float32", 42);
    return (model.predict(x) as tf.Tensor).dataSync() as Float32Array;
  });
}

async function withDir(fn: (dir: string) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "ckpt_test_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function files(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) out.push(e.name);
  return out.sort();
}

Deno.test("checkpoint: save/load round trip keeps topology, weights, custom layers and metadata", async () => {
  await withDir(async (root) => {
    const dir = join(root, "ck");
    const a = small(1);
    const r = await saveCheckpoint(a, dir, { metadata: { model: "small", epoch: 3 } });
    const names = await files(dir);
    assert.deepEqual(names, ["model.json", r.weights.slice(dir.length + 1)].sort());
    const { model: b, info } = await loadCheckpoint(dir);
    assert.deepEqual(info.metadata, { model: "small", epoch: 3 });
    assert.deepEqual([...predict(b)], [...predict(a)]);
    assert.ok(b.layers.some((l) => l.getClassName() === "LayerScale"));
    // loading into a freshly built model of the same architecture
    const c = small(2);
    assert.notDeepEqual([...predict(c)], [...predict(a)]);
    await loadCheckpointWeights(c, join(dir, "model.json"));
    assert.deepEqual([...predict(c)], [...predict(a)]);
    for (const m of [a, b, c]) m.dispose();
  });
});

Deno.test("checkpoint: overwrite replaces weights and removes the old file", async () => {
  await withDir(async (dir) => {
    const a = small(1), b = small(2);
    const r1 = await saveCheckpoint(a, dir);
    const r2 = await saveCheckpoint(b, dir);
    assert.notEqual(r1.weights, r2.weights);
    assert.deepEqual(await files(dir), ["model.json", r2.weights.slice(dir.length + 1)].sort());
    const { model } = await loadCheckpoint(dir);
    assert.deepEqual([...predict(model)], [...predict(b)]);
    for (const m of [a, b, model]) m.dispose();
  });
});

Deno.test("checkpoint: a save interrupted before the commit leaves the previous checkpoint loadable", async () => {
  await withDir(async (dir) => {
    const a = small(1), b = small(2);
    await saveCheckpoint(a, dir);
    await assert.rejects(
      saveCheckpoint(b, dir, {
        beforeCommit: () => {
          throw new Error("simulated crash");
        },
      }),
      /simulated crash/,
    );
    const { model } = await loadCheckpoint(dir);
    assert.deepEqual([...predict(model)], [...predict(a)]);
    // the next successful save cleans up the orphaned weights file
    await saveCheckpoint(b, dir);
    assert.equal((await files(dir)).length, 2);
    for (const m of [a, b, model]) m.dispose();
  });
});

Deno.test("checkpoint: truncated weights, flipped bytes and bad JSON are clear errors naming the file", async () => {
  await withDir(async (dir) => {
    const a = small(1);
    const r = await saveCheckpoint(a, dir);
    const good = await Deno.readFile(r.weights);
    await Deno.writeFile(r.weights, good.subarray(0, good.length - 10));
    await assert.rejects(loadCheckpoint(dir), (e: Error) => {
      assert.ok(e instanceof CheckpointError);
      assert.match(e.message, /truncated/);
      assert.ok(e.message.includes(r.weights), e.message);
      return true;
    });
    const flipped = good.slice();
    flipped[100] ^= 0xff;
    await Deno.writeFile(r.weights, flipped);
    await assert.rejects(loadCheckpoint(dir), /SHA-256 differs.*corrupt/);
    await Deno.writeFile(r.weights, good);
    const text = await Deno.readTextFile(r.modelJson);
    await Deno.writeTextFile(r.modelJson, text.slice(0, text.length / 2));
    await assert.rejects(loadCheckpoint(dir), (e: Error) => {
      assert.ok(e instanceof CheckpointError);
      assert.ok(e.message.startsWith(`${r.modelJson}: not valid JSON`), e.message);
      return true;
    });
    await assert.rejects(loadCheckpoint(join(dir, "nope")), /nope\/model\.json: no checkpoint/);
    a.dispose();
  });
});

Deno.test("checkpoint: a mismatched checkpoint is an error listing names and shapes, nothing assigned", async () => {
  await withDir(async (dir) => {
    const a = small(1);
    const r = await saveCheckpoint(a, dir);
    const wider = small(3, [8, 24]);
    const before = predict(wider);
    await assert.rejects(loadCheckpointWeights(wider, dir), (e: Error) => {
      assert.ok(e instanceof CheckpointError);
      assert.ok(e.message.startsWith(r.modelJson), e.message);
      assert.match(
        e.message,
        /shape mismatches \(23\):\n {2}stages\.1\.downsample\.1\/kernel is \[2,2,8,16\]/,
      );
      return true;
    });
    assert.deepEqual([...predict(wider)], [...before]);
    const other = ferCnn(undefined, { widthMultiplier: 0.125, inputShape: [16, 16, 3] });
    await assert.rejects(
      loadCheckpointWeights(other, dir),
      /missing in checkpoint \(\d+\):\n {2}conv1a\/kernel[\s\S]*not in the model \(\d+\):\n {2}stem\.0\/kernel/,
    );
    // topology and manifest disagreeing (a weight renamed in model.json)
    const json = JSON.parse(await Deno.readTextFile(r.modelJson));
    json.weightsManifest[0].weights[0].name = "renamed/kernel";
    await Deno.writeTextFile(r.modelJson, JSON.stringify(json));
    await assert.rejects(loadCheckpoint(dir), (e: Error) => {
      assert.ok(
        e instanceof CheckpointError && e.message.startsWith(`${r.modelJson}: cannot build the model`),
      );
      return true;
    });
    for (const m of [a, wider, other]) m.dispose();
  });
});
