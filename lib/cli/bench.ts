/**
 * `deno task bench [--json] [--quick] [--engines native,native-openblas,wasm,cpu] [--nets ref,convnext,...]
 *  [--seconds 15] [--no-torch]` (`native-openblas` = the native engine with `FER_DNNL=0`)
 *
 * Times training (AdamW steps on a fixed random batch) and inference of each net of lib/bench/suite.ts — the
 * VGG-style reference net, a small ConvNeXt-style net, and the study's EfficientNet-B3 and ConvNeXt-Tiny at
 * 48 px (batch 32) and 224 px (batch 16, one timed step) — on each engine, and the same architecture in
 * PyTorch (tests/bench/torch_ref.py, /usr/bin/python3, same thread count, same batch and time budget), then
 * prints img/s, peak RSS and one ratio per net (best engine / PyTorch) for training and inference.
 *
 * Every (engine, net) pair runs in its own subprocess, so peak RSS is per model and backends never share a
 * process. The study nets run only on the fast engines (native, native-openblas, webgpu, tensorflow); `cpu`
 * trains at ~0.01 img/s and wasm's JS gradient kernels at ~0.5 img/s, so they get reduced, marked runs of the
 * two reference nets.
 */
import * as tf from "@tensorflow/tfjs-core";
import { describeEngine, initEngine } from "../engine/init.ts";
import { syntheticTraining } from "../bench/nets.ts";
import { BENCH_NETS, type BenchNet, benchNet } from "../bench/suite.ts";
import { forInference } from "../models/fold.ts";
import { ArgsError, type CommandSpec, parseCli } from "./args.ts";

/** Training and inference speed of one net on one engine (or in PyTorch). */
export type NetResult = {
  train_img_s: number;
  infer_img_s: number;
  train_steps: number;
  train_batch: number;
  infer_batch: number;
  peak_rss_mb: number;
  note?: string;
  error?: string;
};

/** One engine's subprocess result for one net. */
type ChildResult = NetResult & { net: string; engine: string; threads: number; library: string };

const SPEC: CommandSpec = {
  name: "bench",
  usage: [
    "[--json] [--quick] [--engines native,native-openblas,wasm,cpu,webgpu] [--nets ref,convnext,...] " +
    "[--seconds 15] [--no-torch]",
  ],
  summary: "Training and inference img/s of the reference nets and the study's models on each engine (each " +
    "(engine, net) in its own process) beside the same architecture in PyTorch.",
  options: {
    json: { type: "boolean", help: "print JSON" },
    quick: { type: "boolean", help: "shorter timings" },
    engines: {
      type: "string",
      value: "LIST",
      help: "comma-separated engines (webgpu: add it; on a software adapter it gets a reduced run)",
      default: "native,native-openblas,wasm,cpu",
    },
    nets: {
      type: "string",
      value: "LIST",
      help: `comma-separated nets: ${BENCH_NETS.map((n) => n.name).join(", ")}`,
      default: "all",
    },
    seconds: { type: "string", value: "S", help: "timed seconds per net", default: "15 (5 with --quick)" },
    "no-torch": { type: "boolean", help: "skip the PyTorch reference" },
    "no-malloc-env": { type: "boolean", help: "run the engines without the glibc malloc settings" },
    child: {
      type: "string",
      value: "ENGINE",
      help: "(internal) benchmark one net on one engine in this process",
    },
    net: { type: "string", value: "NET", help: "(internal) the net a --child process benchmarks" },
  },
};

const ARGS = parseCli(SPEC, (a) => {
  const seconds = a.string("seconds");
  if (seconds !== undefined && !(Number(seconds) > 0 && Number(seconds) <= 3600)) {
    throw new ArgsError(`--seconds must be a number of seconds in (0, 3600], got "${seconds}"`);
  }
  for (const n of (a.string("nets") ?? "").split(",").map((s) => s.trim()).filter(Boolean)) {
    if (!BENCH_NETS.some((b) => b.name === n)) {
      throw new ArgsError(`--nets: unknown net "${n}"; known: ${BENCH_NETS.map((b) => b.name).join(", ")}`);
    }
  }
  return a;
});
const arg = (name: string) => ARGS.string(name);
const flag = (name: string) => ARGS.flag(name);

let peakRss = 0;
const sampleRss = () => (peakRss = Math.max(peakRss, Deno.memoryUsage().rss));

/** Engines that run the study nets (the others are 20–1000× slower). */
const FAST_ENGINES = new Set(["native", "native-openblas", "webgpu", "tensorflow"]);

/**
 * The native engine with oneDNN switched off (`FER_DNNL=0`): convolutions lowered to OpenBLAS GEMMs and JS
 * batch norm / activations. Benchmarked beside `native` because that is the measurement behind using oneDNN.
 */
const OPENBLAS_VARIANT = "native-openblas";

/** Train `seconds` (after the warm-up, within the net's step bounds) and time inference. */
async function measure(
  model: ReturnType<BenchNet["build"]>,
  plan: { batch: number; inferBatch: number; warmup: number; minSteps: number; maxSteps: number },
  seconds: number,
): Promise<NetResult> {
  const shape = model.inputs[0].shape.slice(1) as number[];
  const { step, dispose } = syntheticTraining(model, plan.batch, sampleRss);
  for (let i = 0; i < plan.warmup; i++) await step();
  let steps = 0;
  const t0 = performance.now();
  while (steps < plan.maxSteps && (steps < plan.minSteps || performance.now() - t0 < seconds * 1000)) {
    await step();
    steps++;
  }
  const train = steps ? (plan.batch * steps) / ((performance.now() - t0) / 1000) : NaN;
  dispose();
  const xi = tf.randomNormal([plan.inferBatch, ...shape]);
  // inference as evaluate / predict run it: batch norms folded into their convolutions on CPU backends
  const inf = forInference(model);
  const infer = async () => {
    // the whole inference batch in one pass, as PyTorch runs it (tfjs-layers' predict splits into 32s by default)
    const y = inf.model.predict(xi, { batchSize: plan.inferBatch }) as tf.Tensor;
    await y.data();
    y.dispose();
    sampleRss();
  };
  // Two warm-up passes (the first after training still pays one-time costs: oneDNN JIT for the inference
  // primitives, arrays the pool does not hold yet), then at least three timed ones; torch_ref.py does the same.
  await infer();
  await infer();
  let reps = 0;
  const t1 = performance.now();
  const verbose = Deno.env.get("FER_BENCH_VERBOSE") === "1";
  const pool = (tf.backend() as { pool?: { stats: Record<string, number> } }).pool;
  while (reps < 3 || (reps < 5 && performance.now() - t1 < (seconds * 1000) / 3)) {
    const tr = performance.now();
    await infer();
    reps++;
    if (verbose) {
      console.error(
        `infer rep ${reps}: ${(performance.now() - tr).toFixed(0)} ms, pool ${JSON.stringify(pool?.stats)}`,
      );
    }
  }
  const inferRate = (plan.inferBatch * reps) / ((performance.now() - t1) / 1000);
  xi.dispose();
  inf.release();
  return {
    train_img_s: train,
    infer_img_s: inferRate,
    train_steps: steps,
    train_batch: plan.batch,
    infer_batch: plan.inferBatch,
    peak_rss_mb: Math.round(peakRss / 2 ** 20),
  };
}

/** Child mode: benchmark one net on one engine and print its JSON on the last line. */
async function child(variant: string, netName: string, quick: boolean, seconds: number): Promise<void> {
  const engine = variant === OPENBLAS_VARIANT ? "native" : variant;
  const info = await initEngine(engine);
  if (info.name !== engine) throw new Error(`engine ${engine} unavailable (got ${info.name})`);
  const net = benchNet(netName);
  const model = net.build();
  sampleRss();
  // cpu trains at ~0.01 img/s and wasm's JS gradient kernels at ~0.5 img/s, webgpu on a software adapter
  // (llvmpipe) compiles every shader on the first step and then runs them on the CPU: reduced runs, marked.
  const softGpu = engine === "webgpu" && describeEngine().detail === "software";
  const mode = engine === "cpu" ? "cpu" : engine === "wasm" ? "wasm" : softGpu ? "soft-gpu" : "full";
  const r = mode === "cpu"
    ? await measure(model, { ...net, batch: 2, inferBatch: 2, warmup: 0, minSteps: 0, maxSteps: 0 }, 0)
    : mode === "wasm"
    ? await measure(model, { ...net, batch: 16, inferBatch: 64, warmup: 0, minSteps: 1, maxSteps: 1 }, 0)
    : mode === "soft-gpu"
    ? await measure(model, { ...net, batch: 2, inferBatch: 2, warmup: 1, minSteps: 1, maxSteps: 1 }, 0)
    : await measure(
      model,
      { ...net, warmup: quick ? Math.min(1, net.warmup) : net.warmup, minSteps: quick ? 1 : net.minSteps },
      seconds * net.timeShare,
    );
  model.dispose();
  const d = describeEngine();
  const out: ChildResult = {
    ...r,
    net: netName,
    engine: variant === OPENBLAS_VARIANT ? OPENBLAS_VARIANT : d.name,
    threads: d.threads,
    library: d.library,
    note: mode === "cpu"
      ? "reduced: inference only, batch 2"
      : mode === "wasm"
      ? "reduced: 1 step batch 16, infer batch 64, no warm-up"
      : mode === "soft-gpu"
      ? "reduced (software adapter): 1 warm-up + 1 timed step batch 2, infer batch 2"
      : `${r.train_steps} timed steps`,
  };
  console.log(JSON.stringify(out));
}

/**
 * glibc serves allocations above its mmap threshold (at most 32 MiB) with fresh mmaps, so every large
 * activation tensor costs page faults on first touch and an munmap on free; raising the threshold lets
 * freed blocks be reused (measured: element-wise kernels ~35% faster). Applied to the engine subprocesses
 * and, for a fair comparison, to the PyTorch one; the same variables help `deno task train`.
 */
export const MALLOC_ENV = { MALLOC_MMAP_THRESHOLD_: "2147483647", MALLOC_TRIM_THRESHOLD_: "8589934592" };

const failed = (error: string): NetResult => ({
  train_img_s: NaN,
  infer_img_s: NaN,
  train_steps: 0,
  train_batch: 0,
  infer_batch: 0,
  peak_rss_mb: 0,
  error,
});

/** Runs a command and parses the JSON object on the last line of its stdout. */
async function lastJson<T>(cmd: Deno.Command, timeoutS: number): Promise<T | { error: string }> {
  try {
    const o = await cmd.output();
    const lines = new TextDecoder().decode(o.stdout).trim().split("\n");
    if (!o.success) {
      const err = new TextDecoder().decode(o.stderr).trim().split("\n").filter((l) => l.trim()).slice(-1)[0];
      return { error: err ?? `exit ${o.code}` };
    }
    return JSON.parse(lines[lines.length - 1]) as T;
  } catch (e) {
    return {
      error: (e as Error).name === "TimeoutError" ? `timed out after ${timeoutS} s` : (e as Error).message,
    };
  }
}

async function runChild(
  engine: string,
  net: string,
  extra: string[],
  timeoutS: number,
): Promise<ChildResult> {
  const env: Record<string, string> = flag("no-malloc-env") ? {} : { ...MALLOC_ENV };
  if (engine === OPENBLAS_VARIANT) env.FER_DNNL = "0";
  const cmd = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL(import.meta.url).pathname, "--child", engine, "--net", net, ...extra],
    env,
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(timeoutS * 1000),
  });
  const r = await lastJson<ChildResult>(cmd, timeoutS);
  return "engine" in r ? r : { ...failed(r.error), net, engine, threads: 0, library: "" };
}

/** The PyTorch interpreter, or null (with the reason printed) when it cannot import torch. */
async function torchPython(): Promise<string | null> {
  const py = Deno.env.get("FER_PYTHON") ?? "/usr/bin/python3";
  try {
    const probe = await new Deno.Command(py, {
      args: ["-c", "import torch, torchvision"],
      stdout: "null",
      stderr: "null",
    })
      .output();
    if (probe.success) return py;
    console.error(
      `torch reference skipped: ${py} cannot import torch and torchvision (apt install python3-torchvision)`,
    );
  } catch {
    console.error(`torch reference skipped: ${py} not found`);
  }
  return null;
}

type TorchResult = NetResult & { version?: string; threads?: number };

async function runTorch(py: string, net: BenchNet, threads: number, quick: boolean, seconds: number) {
  const script = new URL("../../tests/bench/torch_ref.py", import.meta.url).pathname;
  const args = [
    script,
    "--threads",
    String(threads),
    "--net",
    net.name,
    "--batch",
    String(net.batch),
    "--infer-batch",
    String(net.inferBatch),
    "--warmup",
    String(quick ? Math.min(1, net.warmup) : net.warmup),
    "--min-steps",
    String(quick ? 1 : net.minSteps),
    "--max-steps",
    String(net.maxSteps),
    "--seconds",
    String(seconds * net.timeShare),
  ];
  const env = flag("no-malloc-env") ? {} : MALLOC_ENV;
  const r = await lastJson<TorchResult>(
    new Deno.Command(py, {
      args,
      env,
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(900_000),
    }),
    900,
  );
  return "train_img_s" in r ? r : { ...failed(r.error) } as TorchResult;
}

const fmt = (
  v: number | undefined,
) => (v === undefined || !Number.isFinite(v) ? "-" : v.toFixed(v < 1 ? 3 : 1));
const ratio = (a: number | undefined, b: number | undefined) =>
  a !== undefined && b && Number.isFinite(a) && Number.isFinite(b) ? a / b : null;

/** Prints rows as aligned columns. */
function table(rows: string[][]): void {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  for (const r of rows) console.log(r.map((c, i) => c.padEnd(widths[i])).join("  ").trimEnd());
}

async function main(): Promise<void> {
  const quick = flag("quick");
  const seconds = Number(arg("seconds") ?? (quick ? 5 : 15));
  const childEngine = arg("child");
  if (childEngine) {
    await child(childEngine, arg("net") ?? "ref", quick, seconds);
    return;
  }
  const list = (s: string) => s.split(",").map((x) => x.trim()).filter(Boolean);
  const engines = list(arg("engines") ?? `native,${OPENBLAS_VARIANT},wasm,cpu`);
  const nets = (arg("nets") && arg("nets") !== "all" ? list(arg("nets")!) : BENCH_NETS.map((n) => n.name))
    .map(benchNet);
  const extra = [...(quick ? ["--quick"] : []), "--seconds", String(seconds)];
  const say = (s: string) => flag("json") || console.error(s);

  const results: ChildResult[] = [];
  for (const net of nets) {
    for (const e of engines) {
      if (net.fastEnginesOnly && !FAST_ENGINES.has(e)) continue;
      say(`benchmarking ${net.name} on ${e}...`);
      results.push(await runChild(e, net.name, extra, e === "cpu" ? 400 : e === "webgpu" ? 1500 : 900));
    }
  }
  const threads = Math.max(1, ...results.map((r) => r.threads || 0));
  const py = flag("no-torch") ? null : await torchPython();
  const torch: Record<string, TorchResult> = {};
  if (py) {
    for (const net of nets) {
      say(`benchmarking ${net.name} in torch (${threads} threads)...`);
      torch[net.name] = await runTorch(py, net, threads, quick, seconds);
    }
  }
  const torchVersion = Object.values(torch).find((t) => t.version)?.version ?? null;

  // Per net: the best engine (reduced cpu/wasm runs excluded) against PyTorch.
  const perNet = nets.map((net) => {
    const mine = results.filter((r) =>
      !r.error && r.engine !== "cpu" && r.engine !== "wasm" && r.net === net.name
    );
    const best = (f: (r: ChildResult) => number) =>
      mine.reduce<ChildResult | null>((b, r) => (b === null || f(r) > f(b) ? r : b), null);
    const bt = best((r) => r.train_img_s);
    const bi = best((r) => r.infer_img_s);
    const t = torch[net.name];
    return {
      net: net.name,
      label: net.label,
      train_batch: net.batch,
      infer_batch: net.inferBatch,
      best_train_engine: bt?.engine ?? null,
      train_img_s: bt?.train_img_s ?? null,
      best_infer_engine: bi?.engine ?? null,
      infer_img_s: bi?.infer_img_s ?? null,
      peak_rss_mb: bt?.peak_rss_mb ?? null,
      torch: t && !t.error
        ? { train_img_s: t.train_img_s, infer_img_s: t.infer_img_s, peak_rss_mb: t.peak_rss_mb }
        : null,
      ratio_train: ratio(bt?.train_img_s, t?.train_img_s),
      ratio_infer: ratio(bi?.infer_img_s, t?.infer_img_s),
    };
  });
  const load = Deno.loadavg();
  const summary = {
    date: new Date().toISOString(),
    results,
    torch: py ? { version: torchVersion, threads, results: torch } : null,
    nets: perNet,
    loadavg: load,
    cores: navigator.hardwareConcurrency,
  };
  if (flag("json")) {
    console.log(JSON.stringify(summary));
    return;
  }
  const rows = [["net", "engine", "threads", "train img/s", "infer img/s", "peak RSS MB", "note"]];
  for (const r of results) {
    rows.push([
      r.net,
      r.engine,
      String(r.threads || "-"),
      fmt(r.train_img_s),
      fmt(r.infer_img_s),
      r.peak_rss_mb ? String(r.peak_rss_mb) : "-",
      r.error ? `error: ${r.error}` : r.note ?? "",
    ]);
  }
  for (const [name, t] of Object.entries(torch)) {
    rows.push([
      name,
      `torch ${torchVersion ?? ""}`.trim(),
      String(threads),
      fmt(t.train_img_s),
      fmt(t.infer_img_s),
      t.peak_rss_mb ? String(t.peak_rss_mb) : "-",
      t.error ? `error: ${t.error}` : `${t.train_steps} timed steps`,
    ]);
  }
  table(rows);
  console.log("");
  const f2 = (v: number | null) => (v === null ? "n/a" : `${v.toFixed(2)}x`);
  table([
    ["net", "train img/s (engine)", "torch train", "ratio", "infer img/s (engine)", "torch infer", "ratio"],
    ...perNet.map((p) => [
      p.net,
      `${fmt(p.train_img_s ?? undefined)} (${p.best_train_engine ?? "-"})`,
      fmt(p.torch?.train_img_s),
      f2(p.ratio_train),
      `${fmt(p.infer_img_s ?? undefined)} (${p.best_infer_engine ?? "-"})`,
      fmt(p.torch?.infer_img_s),
      f2(p.ratio_infer),
    ]),
  ]);
  console.log(
    `(load average ${load.map((l) => l.toFixed(2)).join(" ")} on ${navigator.hardwareConcurrency} cores; ` +
      `ratios: best engine / PyTorch, same architecture, batch and time budget)`,
  );
}

if (import.meta.main) await main();
