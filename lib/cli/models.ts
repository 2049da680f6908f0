/**
 * `deno task models`: lists the registered models (trainable parameters with 7 classes, default input).
 *
 *   deno task models                 table
 *   deno task models --json          {"models":[{"name","params","input":[h,w,c]}]}
 *   deno task models --step [NAME]   times forward and forward+backward+SGD update at 224x224x3, batch 2, on the
 *                                    best engine (lib/engine/init.ts initEngine when present, else cpu); default
 *                                    NAME is every seed model. Options: --batch N, --size S, --channels C,
 *                                    --steps K (timed steps after one warm-up), --json.
 */

import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import { createModel, defaultConfig, listModels, modelNames } from "../models/registry.ts";
import { initEngine } from "../engine/init.ts";
import { ArgsError, type CommandSpec, helpText, parseArgv } from "./args.ts";

const SPEC: CommandSpec = {
  name: "models",
  usage: ["[--json]", "--step [NAME...] [--batch 2] [--size 224] [--channels 3] [--steps 3] [--json]"],
  summary:
    "Lists the registered models (trainable parameters with 7 classes, default input); --step times a " +
    "forward pass and a\nforward+backward+update on the best engine (default: every seed model).",
  options: {
    json: { type: "boolean", help: "print JSON" },
    step: { type: "boolean", help: "time the named models (or the seed models)" },
    batch: { type: "string", value: "N", help: "batch size for --step", default: "2" },
    size: { type: "string", value: "S", help: "input size for --step", default: "224" },
    channels: { type: "string", value: "C", help: "input channels for --step", default: "3" },
    steps: { type: "string", value: "K", help: "timed steps after one warm-up", default: "3" },
  },
  positionals: { max: Infinity },
};

/** Seed models timed by `--step` without a name. */
export const SEED_MODELS = ["efficientnet_b3", "convnext_tiny"];

/** Picks the best engine: lib/engine/init.ts `initEngine()` when that module exists, else the cpu backend. */
export async function pickEngine(): Promise<{ name: string; threads: number }> {
  const url = new URL("../engine/init.ts", import.meta.url);
  try {
    await Deno.stat(url);
  } catch {
    await tf.setBackend("cpu");
    return { name: "cpu", threads: 1 };
  }
  // Computed specifier: lib/engine/init.ts is another module's file and may not exist in every checkout.
  const mod = await import(url.href) as {
    initEngine: (name?: string) => Promise<{ name: string; threads: number }>;
  };
  return await mod.initEngine();
}

/** Result of {@link timeStep}. */
export interface StepTiming {
  model: string;
  engine: string;
  threads: number;
  batch: number;
  input: [number, number, number];
  params: number;
  /** Median forward (inference mode) time, ms. */
  forwardMs: number;
  /** Median forward + backward + SGD update (training mode), ms. */
  stepMs: number;
  steps: number;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** Times one forward and one training step of a registered model on the current backend. */
export function timeStep(
  name: string,
  {
    batch = 2,
    input = [224, 224, 3] as [number, number, number],
    steps = 3,
    engine = { name: tf.getBackend(), threads: 1 },
  } = {},
): StepTiming {
  const model = createModel(name, { inputShape: input, seed: 0 });
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const params = vars.reduce((a, v) => a + v.size, 0);
  const opt = tf.train.sgd(1e-4);
  const x = tf.randomNormal([batch, ...input], 0, 1, "float32", 1);
  const labels = tf.oneHot(tf.tensor1d(Array.from({ length: batch }, (_, i) => i % 7), "int32"), 7);
  const fwd = () => tf.tidy(() => (model.apply(x, { training: false }) as tf.Tensor).dataSync());
  const step = () =>
    tf.tidy(() => {
      const { value, grads } = tf.variableGrads(
        () =>
          tf.losses.softmaxCrossEntropy(labels, model.apply(x, { training: true }) as tf.Tensor) as tf.Scalar,
        vars,
      );
      opt.applyGradients(grads);
      return value.dataSync()[0];
    });
  const timeIt = (f: () => unknown) => {
    f(); // warm-up
    const ts: number[] = [];
    for (let i = 0; i < steps; i++) {
      const t = performance.now();
      f();
      ts.push(performance.now() - t);
    }
    return median(ts);
  };
  try {
    const forwardMs = timeIt(fwd);
    const stepMs = timeIt(() => {
      const loss = step();
      if (!Number.isFinite(loss)) throw new Error(`${name}: non-finite loss ${loss}`);
    });
    return {
      model: name,
      engine: engine.name,
      threads: engine.threads,
      batch,
      input,
      params,
      forwardMs,
      stepMs,
      steps,
    };
  } finally {
    tf.dispose([x, labels]);
    opt.dispose();
    model.dispose();
  }
}

function fmtInt(n: number): string {
  return n.toLocaleString("en-US");
}

async function main(argv: string[]): Promise<number> {
  const a = parseArgv(SPEC, argv);
  if (a === "help") {
    console.log(helpText(SPEC));
    return 0;
  }
  const positionals = a.positionals;
  const values = { json: a.flag("json"), step: a.flag("step") };
  if (positionals.length && !values.step) {
    throw new ArgsError(`model names are for --step; got ${positionals.join(" ")} without it`);
  }
  for (const n of positionals) {
    if (!modelNames().includes(n)) {
      throw new ArgsError(`unknown model "${n}"; registered: ${modelNames().join(", ")}`);
    }
  }
  if (!values.step) {
    await initEngine("cpu"); // the engine module keeps tfjs's "running in Node.js" banner off
    const models = listModels();
    if (values.json) {
      console.log(JSON.stringify({ models }));
      return 0;
    }
    const rows = models.map((
      m,
    ) => [m.name, fmtInt(m.params), m.input.join("x"), defaultConfig(m.name).description]);
    const w = [0, 1, 2].map((i) =>
      Math.max(...rows.map((r) => r[i].length), ["model", "params", "input"][i].length)
    );
    console.log(`${"model".padEnd(w[0])}  ${"params".padStart(w[1])}  ${"input".padEnd(w[2])}  description`);
    for (const r of rows) {
      console.log(`${r[0].padEnd(w[0])}  ${r[1].padStart(w[1])}  ${r[2].padEnd(w[2])}  ${r[3]}`);
    }
    console.log("params: trainable parameters with 7 classes (BN running statistics excluded)");
    return 0;
  }
  const size = a.int("size", { fallback: 224, max: 2048 });
  const input: [number, number, number] = [size, size, a.int("channels", { fallback: 3, max: 4 })];
  const batch = a.int("batch", { fallback: 2, max: 4096 }),
    steps = a.int("steps", { fallback: 3, max: 10000 });
  // activations of the large nets take on the order of 100x the input: refuse what cannot fit before allocating
  const need = 100 * 4 * batch * size * size * input[2], avail = Deno.systemMemoryInfo().available;
  if (need > avail) {
    throw new ArgsError(
      `--batch ${batch} at --size ${size} needs about ${(need / 2 ** 30).toFixed(1)} GiB, ` +
        `${(avail / 2 ** 30).toFixed(1)} GiB is available: use a smaller --size or --batch`,
    );
  }
  const engine = await pickEngine();
  const names = positionals.length ? positionals : SEED_MODELS;
  const results: StepTiming[] = [];
  for (const name of names) {
    if (!values.json) {
      console.error(`timing ${name} at ${input.join("x")}, batch ${batch} on ${engine.name}...`);
    }
    const r = timeStep(name, {
      batch,
      input,
      steps,
      engine,
    });
    results.push(r);
    if (!values.json) {
      console.log(
        `${r.model}: forward ${r.forwardMs.toFixed(0)} ms, forward+backward+update ${
          r.stepMs.toFixed(0)
        } ms ` +
          `(batch ${r.batch}, ${
            r.input.join("x")
          }, ${r.engine}, ${r.threads} thread(s), median of ${r.steps})`,
      );
    }
  }
  if (values.json) console.log(JSON.stringify({ steps: results }));
  return 0;
}

if (import.meta.main) {
  try {
    Deno.exit(await main(Deno.args));
  } catch (e) {
    console.error(`error: ${(e as Error).message}`);
    if (e instanceof ArgsError) console.error(helpText(SPEC).split("\n\n")[0]);
    Deno.exit(e instanceof ArgsError ? 2 : 1);
  }
}
