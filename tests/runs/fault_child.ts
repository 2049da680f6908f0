/**
 * Child process of fault_test.ts: trains (or resumes) the tiny run `<outDir>/<run>` on `<dataRoot>` with the cpu
 * backend. With `<killAt>` > 0 it SIGKILLs itself at its killAt-th file rename, i.e. with a write's temporary
 * file complete but not yet renamed into place (the moment an atomic write is most exposed). It saves its resume
 * state after every batch, so kills also land inside epochs.
 */
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { train } from "../../lib/train/loop.ts";
import { tinyConfig, tinyModel } from "./helpers.ts";

const [outDir, run, dataRoot, killAtArg] = Deno.args;
const killAt = Number(killAtArg);
let renames = 0;
const count = () => {
  if (++renames === killAt) Deno.kill(Deno.pid, "SIGKILL");
};
const rename = Deno.rename;
const renameSync = Deno.renameSync;
Deno.rename = (from, to) => (count(), rename(from, to));
Deno.renameSync = (from, to) => (count(), renameSync(from, to));

await tf.setBackend("cpu");
const resume = existsSync(join(outDir, run, "config.json"));
console.log("training"); // the parent's clock for kills at a random time starts here
await train(tinyConfig(outDir, run, { dataRoot, epochs: 6, tMax: 6 }), {
  createModel: tinyModel,
  resume,
  saveEverySeconds: 0, // a resume state after every batch too: kills land inside epochs and their saves
  progress: "lines",
  log: () => {},
});
