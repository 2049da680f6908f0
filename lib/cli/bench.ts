/**
 * `deno task bench [--json] [--quick] [--engines native,native-openblas,wasm,cpu] [--seconds 15] [--no-torch]
 *  [--no-convnext]` (`native-openblas` = the native engine with `FER_DNNL=0`)
 *
 * Trains and runs inference on the reference net (VGG-style, 48x48x1, batch 64, AdamW lr 1e-3) and a small
 * ConvNeXt-style depthwise net (32x32x3) on each engine, and the same nets in PyTorch
 * (tests/bench/torch_ref.py, /usr/bin/python3, same thread count), then prints engine x train img/s x
 * infer img/s (batch 256) x peak RSS. Each engine runs in its own subprocess so peak memory is per engine
 * and backends do not share a process. The `cpu` engine is ~0.01 img/s at training: it gets one timed step
 * of a reduced batch (marked) and inference on a reduced batch.
 */
import * as tf from "@tensorflow/tfjs-core";
import { describeEngine, initEngine } from "../engine/init.ts";
import { convnextNet, referenceNet, syntheticTraining } from "../bench/nets.ts";
import { ArgsError, type CommandSpec, parseCli } from "./args.ts";

type NetResult = {
  train_img_s: number;
  infer_img_s: number;
  train_steps: number;
  train_batch: number;
  infer_batch: number;
};
type EngineResult = {
  name: string;
  threads: number;
  library: string;
  train_img_s: number;
  infer_img_s: number;
  peak_rss_mb: number;
  note: string;
  convnext?: NetResult;
  error?: string;
};

const SPEC: CommandSpec = {
  name: "bench",
  usage: [
    "[--json] [--quick] [--engines native,native-openblas,wasm,cpu] [--seconds 15] [--no-torch] [--no-convnext]",
  ],
  summary: "Training and inference img/s of the reference nets on each engine (each in its own process) " +
    "beside PyTorch.",
  options: {
    json: { type: "boolean", help: "print JSON" },
    quick: { type: "boolean", help: "shorter timings" },
    engines: {
      type: "string",
      value: "LIST",
      help: "comma-separated engines",
      default: "native,native-openblas,wasm,cpu",
    },
    seconds: { type: "string", value: "S", help: "timed seconds per engine", default: "15 (5 with --quick)" },
    "no-torch": { type: "boolean", help: "skip the PyTorch reference" },
    "no-convnext": { type: "boolean", help: "skip the ConvNeXt-style net" },
    "no-malloc-env": { type: "boolean", help: "run the engines without the glibc malloc settings" },
    child: { type: "string", value: "ENGINE", help: "(internal) benchmark one engine in this process" },
  },
};

const ARGS = parseCli(SPEC, (a) => {
  const seconds = a.string("seconds");
  if (seconds !== undefined && !(Number(seconds) > 0 && Number(seconds) <= 3600)) {
    throw new ArgsError(`--seconds must be a number of seconds in (0, 3600], got "${seconds}"`);
  }
  return a;
});
const arg = (name: string) => ARGS.string(name);
const flag = (name: string) => ARGS.flag(name);

let peakRss = 0;
const sampleRss = () => (peakRss = Math.max(peakRss, Deno.memoryUsage().rss));

/** Train `seconds` (after `warmup` steps, at least `minSteps`) and time inference on `inferBatch` images. */
function measure(
  model: ReturnType<typeof referenceNet>,
  batch: number,
  inferBatch: number,
  seconds: number,
  warmup: number,
  minSteps: number,
  maxSteps: number,
): NetResult {
  const shape = model.inputs[0].shape.slice(1) as number[];
  const { step, dispose } = syntheticTraining(model, batch, sampleRss);
  for (let i = 0; i < warmup; i++) step();
  let steps = 0;
  const t0 = performance.now();
  while (steps < maxSteps && (steps < minSteps || performance.now() - t0 < seconds * 1000)) {
    step();
    steps++;
  }
  const train = steps ? (batch * steps) / ((performance.now() - t0) / 1000) : NaN;
  dispose();
  const xi = tf.randomNormal([inferBatch, ...shape]);
  const infer = () => {
    tf.tidy(() => (model.predict(xi) as tf.Tensor).dataSync());
    sampleRss();
  };
  infer();
  let reps = 0;
  const t1 = performance.now();
  while (reps < 1 || (reps < 5 && performance.now() - t1 < (seconds * 1000) / 3)) {
    infer();
    reps++;
  }
  const inf = (inferBatch * reps) / ((performance.now() - t1) / 1000);
  xi.dispose();
  return {
    train_img_s: train,
    infer_img_s: inf,
    train_steps: steps,
    train_batch: batch,
    infer_batch: inferBatch,
  };
}

/** Child mode: benchmark one engine and print its JSON on the last line. */
async function child(variant: string, quick: boolean, seconds: number, convnext: boolean): Promise<void> {
  const engine = variant === OPENBLAS_VARIANT ? "native" : variant;
  const info = await initEngine(engine);
  if (info.name !== engine) throw new Error(`engine ${engine} unavailable (got ${info.name})`);
  // cpu trains at ~0.01 img/s and wasm's JS gradient kernels at ~0.5 img/s: they get reduced runs, marked.
  const mode = engine === "cpu" ? "cpu" : engine === "wasm" ? "wasm" : "full";
  const ref = referenceNet();
  const plan = (m: ReturnType<typeof referenceNet>, secs: number) =>
    mode === "cpu"
      ? measure(m, 2, 2, 0, 0, 0, 0)
      : mode === "wasm"
      ? measure(m, 16, 64, 0, 0, 1, 1)
      : measure(m, 64, 256, secs, quick ? 1 : 2, quick ? 2 : 3, 1000);
  const r = plan(ref, seconds);
  ref.dispose();
  const d = describeEngine();
  const out: EngineResult = {
    name: variant === OPENBLAS_VARIANT ? OPENBLAS_VARIANT : d.name,
    threads: d.threads,
    library: d.library,
    train_img_s: r.train_img_s,
    infer_img_s: r.infer_img_s,
    peak_rss_mb: 0,
    note: mode === "cpu"
      ? "reduced: inference only, batch 2"
      : mode === "wasm"
      ? "reduced: 1 step batch 16, infer batch 64, no warm-up"
      : `${r.train_steps} timed steps`,
  };
  if (convnext) {
    const cn = convnextNet();
    out.convnext = plan(cn, seconds / 2);
    cn.dispose();
  }
  out.peak_rss_mb = Math.round(peakRss / 2 ** 20);
  console.log(JSON.stringify(out));
}

/**
 * glibc serves allocations above its mmap threshold (at most 32 MiB) with fresh mmaps, so every large
 * activation tensor costs page faults on first touch and an munmap on free; raising the threshold lets
 * freed blocks be reused (measured: element-wise kernels ~35% faster). Applied to the engine subprocesses
 * and, for a fair comparison, to the PyTorch one; the same variables help `deno task train`.
 */
export const MALLOC_ENV = { MALLOC_MMAP_THRESHOLD_: "2147483647", MALLOC_TRIM_THRESHOLD_: "8589934592" };

/**
 * The native engine with oneDNN switched off (`FER_DNNL=0`): convolutions lowered to OpenBLAS GEMMs and JS
 * batch norm / activations. Benchmarked beside `native` because that is the measurement behind using oneDNN.
 */
const OPENBLAS_VARIANT = "native-openblas";

async function runChild(engine: string, extra: string[], timeoutS: number): Promise<EngineResult> {
  const env: Record<string, string> = flag("no-malloc-env") ? {} : { ...MALLOC_ENV };
  if (engine === OPENBLAS_VARIANT) env.FER_DNNL = "0";
  const cmd = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL(import.meta.url).pathname, "--child", engine, ...extra],
    env,
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(timeoutS * 1000),
  });
  const fail = (error: string): EngineResult => ({
    name: engine,
    threads: 0,
    library: "",
    train_img_s: NaN,
    infer_img_s: NaN,
    peak_rss_mb: 0,
    note: "",
    error,
  });
  try {
    const o = await cmd.output();
    const lines = new TextDecoder().decode(o.stdout).trim().split("\n");
    if (!o.success) {
      const err = new TextDecoder().decode(o.stderr).trim().split("\n").filter((l) => l.trim()).slice(-1)[0];
      return fail(err ?? `exit ${o.code}`);
    }
    return JSON.parse(lines[lines.length - 1]);
  } catch (e) {
    return fail(
      (e as Error).name === "TimeoutError" ? `timed out after ${timeoutS} s` : (e as Error).message,
    );
  }
}

async function runTorch(
  threads: number,
  quick: boolean,
  convnext: boolean,
): Promise<Record<string, unknown> | null> {
  const py = Deno.env.get("FER_PYTHON") ?? "/usr/bin/python3";
  const script = new URL("../../tests/bench/torch_ref.py", import.meta.url).pathname;
  try {
    const probe = await new Deno.Command(py, { args: ["-c", "import torch"], stdout: "null", stderr: "null" })
      .output();
    if (!probe.success) {
      console.error(`torch reference skipped: ${py} cannot import torch`);
      return null;
    }
  } catch {
    console.error(`torch reference skipped: ${py} not found`);
    return null;
  }
  const args = [
    script,
    "--threads",
    String(threads),
    "--steps",
    quick ? "3" : "10",
    "--warmup",
    quick ? "1" : "2",
  ];
  if (!convnext) args.push("--skip-convnext");
  const env = flag("no-malloc-env") ? {} : MALLOC_ENV;
  const o = await new Deno.Command(py, { args, env, stdout: "piped", stderr: "piped" }).output();
  if (!o.success) {
    console.error(
      `torch reference failed: ${new TextDecoder().decode(o.stderr).trim().split("\n").slice(-1)[0]}`,
    );
    return null;
  }
  const lines = new TextDecoder().decode(o.stdout).trim().split("\n");
  return JSON.parse(lines[lines.length - 1]);
}

const fmt = (
  v: number | undefined,
) => (v === undefined || !Number.isFinite(v) ? "-" : v.toFixed(v < 1 ? 3 : 1));

async function main(): Promise<void> {
  const quick = flag("quick");
  const seconds = Number(arg("seconds") ?? (quick ? 5 : 15));
  const convnext = !flag("no-convnext");
  const childEngine = arg("child");
  if (childEngine) {
    await child(childEngine, quick, seconds, convnext);
    return;
  }
  const engines = (arg("engines") ?? `native,${OPENBLAS_VARIANT},wasm,cpu`).split(",").map((s) => s.trim())
    .filter(Boolean);
  const extra = [
    ...(quick ? ["--quick"] : []),
    "--seconds",
    String(seconds),
    ...(convnext ? [] : ["--no-convnext"]),
  ];
  const results: EngineResult[] = [];
  for (const e of engines) {
    if (!flag("json")) console.error(`benchmarking ${e}...`);
    results.push(await runChild(e, extra, e === "cpu" ? 400 : 600));
  }
  const threads = Math.max(1, ...results.map((r) => r.threads || 0));
  if (!flag("json")) console.error(`benchmarking torch (${threads} threads)...`);
  const torch = flag("no-torch") ? null : await runTorch(threads, quick, convnext);
  const tRef = torch?.torch as NetResult | undefined;
  const tCn = torch?.torch_convnext as NetResult | undefined;
  const ok = results.filter((r) => !r.error && r.name !== "cpu");
  const best = (f: (r: EngineResult) => number | undefined) => {
    const v = ok.map(f).filter((x): x is number => x !== undefined && Number.isFinite(x));
    return v.length ? Math.max(...v) : NaN;
  };
  const bestTrain = best((r) => r.train_img_s);
  const bestInfer = best((r) => r.infer_img_s);
  const bestCnTrain = best((r) => r.convnext?.train_img_s);
  const bestCnInfer = best((r) => r.convnext?.infer_img_s);
  const ratio = (a: number, b: number | undefined) => (b && Number.isFinite(a) ? a / b : null);
  const load = Deno.loadavg();
  const summary = {
    engines: results,
    torch: tRef
      ? { train_img_s: tRef.train_img_s, infer_img_s: tRef.infer_img_s, threads: torch?.threads }
      : null,
    torch_convnext: tCn ? { train_img_s: tCn.train_img_s, infer_img_s: tCn.infer_img_s } : null,
    ratio_train: ratio(bestTrain, tRef?.train_img_s),
    ratio_infer: ratio(bestInfer, tRef?.infer_img_s),
    ratio_train_convnext: ratio(bestCnTrain, tCn?.train_img_s),
    ratio_infer_convnext: ratio(bestCnInfer, tCn?.infer_img_s),
    loadavg: load,
    cores: navigator.hardwareConcurrency,
  };
  if (flag("json")) {
    console.log(JSON.stringify(summary));
    return;
  }
  const rows: string[][] = [[
    "engine",
    "threads",
    "ref train img/s",
    "ref infer img/s",
    "convnext train",
    "convnext infer",
    "peak RSS MB",
    "note",
  ]];
  for (const r of results) {
    rows.push([
      r.name,
      String(r.threads || "-"),
      fmt(r.train_img_s),
      fmt(r.infer_img_s),
      fmt(r.convnext?.train_img_s),
      fmt(r.convnext?.infer_img_s),
      r.peak_rss_mb ? String(r.peak_rss_mb) : "-",
      r.error ? `error: ${r.error}` : r.note,
    ]);
  }
  if (torch) {
    rows.push([
      `torch ${torch.version}`,
      String(torch.threads),
      fmt(tRef?.train_img_s),
      fmt(tRef?.infer_img_s),
      fmt(tCn?.train_img_s),
      fmt(tCn?.infer_img_s),
      "-",
      "tests/bench/torch_ref.py",
    ]);
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  for (const r of rows) console.log(r.map((c, i) => c.padEnd(widths[i])).join("  ").trimEnd());
  const f2 = (v: number | null) => (v === null ? "n/a" : v.toFixed(2));
  console.log(
    `best engine / torch, reference net: train ${f2(summary.ratio_train)}x, infer ${
      f2(summary.ratio_infer)
    }x; ` +
      `convnext: train ${f2(summary.ratio_train_convnext)}x, infer ${f2(summary.ratio_infer_convnext)}x ` +
      `(load average ${load.map((l) => l.toFixed(2)).join(" ")} on ${navigator.hardwareConcurrency} cores)`,
  );
}

if (import.meta.main) await main();
