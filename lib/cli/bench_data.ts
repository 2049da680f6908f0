/**
 * `deno task bench:data [--json] [--data DIR]`: cold decode time of the whole dataset (no cache) and the
 * time to load it from the pixel cache.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadDataset } from "../data/dataset.ts";
import { type CommandSpec, parseCli } from "./args.ts";

const SPEC: CommandSpec = {
  name: "bench:data",
  usage: ["[--json] [--data DIR]"],
  summary: "Cold decode time of the whole dataset (no cache) and the time to load it from the pixel cache.",
  options: {
    json: { type: "boolean", help: "print JSON" },
    data: {
      type: "string",
      value: "DIR",
      help: "dataset root (default FER2013_DIR, data/fer2013, the sample)",
    },
  },
};
const values = parseCli(SPEC, (a) => ({ json: a.flag("json"), data: a.path("data") }));

const cacheDir = mkdtempSync(join(tmpdir(), "fer-bench-cache-"));
try {
  let t = performance.now();
  const cold = await loadDataset({ root: values.data, cacheDir: false, verbose: false });
  const coldS = (performance.now() - t) / 1000;
  await loadDataset({ root: values.data, cacheDir, verbose: false }); // fills the cache
  t = performance.now();
  const warm = await loadDataset({ root: values.data, cacheDir, verbose: false });
  const warmS = (performance.now() - t) / 1000;
  if (warm.cache.train !== "hit" || warm.cache.test !== "hit") throw new Error("cache was not used");
  const images = cold.train.labels.length + cold.test.labels.length;
  const result = {
    root: cold.root,
    images,
    cores: navigator.hardwareConcurrency,
    cold_decode_s: Number(coldS.toFixed(2)),
    cold_img_s: Math.round(images / coldS),
    cached_load_s: Number(warmS.toFixed(3)),
  };
  if (values.json) console.log(JSON.stringify(result));
  else {
    console.log(`dataset: ${result.root} (${images} images, ${result.cores} cores)`);
    console.log(`cold decode (sharp, no cache): ${result.cold_decode_s} s (${result.cold_img_s} img/s)`);
    console.log(`cached load:                   ${result.cached_load_s} s`);
  }
} finally {
  rmSync(cacheDir, { recursive: true, force: true });
}
