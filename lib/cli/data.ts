/**
 * `deno task data [--json] [--data DIR] [--size N] [--channels 1|3] [--no-cache]`: per-split per-class
 * counts, image size, skipped files and cache status of the resolved dataset.
 */
import { classCounts, DatasetError, DecodeSizeError, loadDataset } from "../data/dataset.ts";
import { type CommandSpec, parseCli } from "./args.ts";

// The command line of `deno task data`.
const DATA_SPEC: CommandSpec = {
  name: "data",
  usage: ["[--json] [--data DIR] [--size N] [--channels 1|3] [--no-cache]"],
  summary: "Loads the dataset (FER2013_DIR, data/fer2013, else the committed sample) and prints per-split, " +
    "per-class counts,\nimage size, skipped files and links, and whether the pixel cache was used.",
  options: {
    json: { type: "boolean", help: "print the summary as JSON" },
    data: { type: "string", value: "DIR", help: "dataset root (train/<class>/*.jpg, test/<class>/*.jpg)" },
    size: {
      type: "string",
      value: "N",
      help: "square decode size in pixels, at most what the memory allows for this dataset",
      default: "48",
    },
    channels: { type: "string", value: "1|3", help: "grayscale or RGB", default: "1" },
    "no-cache": { type: "boolean", help: "decode every image, neither reading nor writing the pixel cache" },
  },
};

const args = parseCli(DATA_SPEC, (a) => ({
  json: a.flag("json"),
  data: a.path("data"),
  size: a.int("size", { min: 1, fallback: 48 }),
  channels: Number(a.choice("channels", ["1", "3"], "1")) as 1 | 3,
  noCache: a.flag("no-cache"),
}));

try {
  const t0 = performance.now();
  const ds = await loadDataset({
    root: args.data,
    size: args.size,
    channels: args.channels,
    cacheDir: args.noCache ? false : undefined,
    verbose: !args.json,
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
    links: ds.links,
    cache: ds.cache,
    seconds: Number(seconds.toFixed(3)),
  };
  if (args.json) {
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
    console.log(`skipped symbolic links: ${ds.links.length}`);
    console.log(`cache: train ${ds.cache.train}, test ${ds.cache.test} (loaded in ${seconds.toFixed(2)} s)`);
  }
} catch (e) {
  if (e instanceof DecodeSizeError) {
    console.error(`error: --${e.message}`);
    Deno.exit(2);
  }
  if (e instanceof DatasetError) {
    console.error(`error: ${e.message}`);
    Deno.exit(1);
  }
  throw e;
}
