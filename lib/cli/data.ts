/**
 * `deno task data [--json] [--data DIR] [--size N] [--channels 1|3] [--no-cache]`: per-split per-class
 * counts, image size, skipped files and cache status of the resolved dataset.
 */
import { parseArgs } from "node:util";
import { classCounts, DatasetError, loadDataset } from "../data/dataset.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    json: { type: "boolean", default: false },
    data: { type: "string" },
    size: { type: "string", default: "48" },
    channels: { type: "string", default: "1" },
    "no-cache": { type: "boolean", default: false },
  },
});

try {
  const channels = Number(values.channels);
  if (channels !== 1 && channels !== 3) {
    throw new DatasetError(`--channels must be 1 or 3, got ${values.channels}`);
  }
  const t0 = performance.now();
  const ds = await loadDataset({
    root: values.data,
    size: Number(values.size),
    channels,
    cacheDir: values["no-cache"] ? false : undefined,
    verbose: !values.json,
  });
  const seconds = (performance.now() - t0) / 1000;
  const splits = { train: classCounts(ds.train), test: classCounts(ds.test) };
  const summary = {
    root: ds.root,
    sample: ds.sample,
    classes: ds.classes,
    splits,
    totals: { train: ds.train.labels.length, test: ds.test.labels.length },
    image: [ds.train.height, ds.train.width, ds.train.channels],
    skipped: ds.skipped,
    cache: ds.cache,
    seconds: Number(seconds.toFixed(3)),
  };
  if (values.json) {
    console.log(JSON.stringify(summary, null, 2));
  } else {
    console.log(`dataset: ${ds.root}${ds.sample ? " (committed demo sample)" : ""}`);
    console.log(`image size: ${summary.image.join("×")} (h×w×c)`);
    const w = Math.max(...ds.classes.map((c) => c.length), 5);
    console.log(`${"class".padEnd(w)}  ${"train".padStart(7)}  ${"test".padStart(7)}`);
    for (const c of ds.classes) {
      console.log(
        `${c.padEnd(w)}  ${String(splits.train[c]).padStart(7)}  ${String(splits.test[c]).padStart(7)}`,
      );
    }
    console.log(
      `${"total".padEnd(w)}  ${String(summary.totals.train).padStart(7)}  ${
        String(summary.totals.test).padStart(7)
      }`,
    );
    console.log(`skipped files: ${ds.skipped.length}`);
    console.log(`cache: train ${ds.cache.train}, test ${ds.cache.test} (loaded in ${seconds.toFixed(2)} s)`);
  }
} catch (e) {
  if (e instanceof DatasetError) {
    console.error(`error: ${e.message}`);
    Deno.exit(1);
  }
  throw e;
}
