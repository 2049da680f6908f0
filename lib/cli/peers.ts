/**
 * `deno task peers [--only NAME] [--limit N] [--out DIR]`: evaluates the JS expression models people use today
 * (@vladmandic/human's emotion model, @vladmandic/face-api's expression net; lib/peers/) on the FER2013 test split
 * with the project's classification report, writing `checkpoints/peers/<name>/` run folders. `--limit` takes a
 * seeded subset (for a quick look). Exit status: 0 done, 2 bad arguments or data.
 */
import { parseArgs } from "node:util";
import { join } from "node:path";
import { loadDataset } from "../data/dataset.ts";
import { loadPeer, PEER_NAMES, PEERS_DIR, predictPeer, writePeerRun } from "../peers/peers.ts";
import { cap, setupBackend } from "../train/loop.ts";

const USAGE = "usage: deno task peers [--only human_emotion|faceapi_expression] [--limit N] [--out DIR]";

function fail(msg: string): never {
  console.error(`error: ${msg}\n${USAGE}`);
  Deno.exit(2);
}

let values;
try {
  ({ values } = parseArgs({
    args: Deno.args,
    options: { only: { type: "string" }, limit: { type: "string" }, out: { type: "string" } },
  }));
} catch (e) {
  fail((e as Error).message);
}
const names = values.only ? [values.only] : [...PEER_NAMES];
for (const n of names) if (!(PEER_NAMES as readonly string[]).includes(n)) fail(`unknown peer "${n}"`);
const limit = values.limit === undefined ? null : Number(values.limit);
if (limit !== null && !(Number.isInteger(limit) && limit > 0)) fail(`--limit must be a positive integer`);
const out = values.out ?? PEERS_DIR;

const engine = await setupBackend();
const ds = await loadDataset({ size: 48, channels: 1, verbose: false });
if (ds.sample) console.warn("note: FER2013 not found; using the committed sample (a demo, not a result)");
const test = cap(ds.test, limit, 42);
console.log(
  `engine ${engine.name} (${engine.threads} threads); ${test.labels.length} test images from ${ds.root}`,
);
for (const name of names) {
  const peer = await loadPeer(name);
  const t0 = performance.now();
  const rows = await predictPeer(peer, test, ds.root, {
    onBatch: (done, total) => {
      if (done % 1024 < 64 || done === total) console.log(`  ${name}: ${done}/${total}`);
    },
  });
  const seconds = (performance.now() - t0) / 1000;
  peer.dispose();
  const text = writePeerRun(join(out, name), peer, rows, {
    dataRoot: ds.root,
    images: rows.length,
    limit,
    seconds: Math.round(seconds),
    engine: engine.name,
  });
  console.log(`\n${text}\n${name}: ${seconds.toFixed(0)} s; written to ${join(out, name)}\n`);
}
