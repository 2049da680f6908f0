/**
 * `deno task peers [--only NAME] [--limit N] [--out DIR]`: evaluates the JS expression models people use today
 * (@vladmandic/human's emotion model, @vladmandic/face-api's expression net; lib/peers/) on the FER2013 test split
 * with the project's classification report, writing `checkpoints/peers/<name>/` run folders. `--limit` takes a
 * seeded subset (for a quick look). Exit status: 0 done, 2 bad arguments or data.
 */
import { join } from "node:path";
import { loadDataset } from "../data/dataset.ts";
import { loadPeer, PEER_NAMES, PEERS_DIR, predictPeer, writePeerRun } from "../peers/peers.ts";
import { cap, setupBackend } from "../train/loop.ts";
import { type CommandSpec, parseCli } from "./args.ts";

const SPEC: CommandSpec = {
  name: "peers",
  usage: ["[--only NAME] [--limit N] [--out DIR]"],
  summary: "Evaluates @vladmandic/human's emotion model and @vladmandic/face-api's expression net on the " +
    "FER2013 test split\nwith the project's report, writing run folders (predictions.csv, test_report.*) " +
    "under checkpoints/peers/.",
  options: {
    only: { type: "string", value: "NAME", help: `one peer: ${PEER_NAMES.join(" or ")}` },
    limit: { type: "string", value: "N", help: "a seeded subset of N test images (a quick look)" },
    out: { type: "string", value: "DIR", help: "where the run folders go", default: "checkpoints/peers" },
  },
};

const { names, limit, out } = parseCli(SPEC, (a) => {
  const only = a.choice("only", PEER_NAMES);
  return {
    names: only ? [only] : [...PEER_NAMES],
    limit: a.int("limit", { min: 1 }) ?? null,
    out: a.path("out") ?? PEERS_DIR,
  };
});

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
