/** Engine selection: names, overrides, fallback, description. */
import * as tf from "@tensorflow/tfjs-core";
import { strict as assert } from "node:assert";
import { describeEngine, engineSummary, initEngine, nativeAvailable } from "../../lib/engine/init.ts";
import {
  betterCoreType,
  blasCandidates,
  blasInstallHint,
  coreOfConfig,
  cpuFlags,
} from "../../lib/engine/blas.ts";
import { openDnnl } from "../../lib/engine/dnnl.ts";
import { probeAdapterIsolated } from "../../lib/engine/webgpu.ts";

const NATIVE = nativeAvailable();
/** A hardware GPU adapter takes precedence over native (a software one does not: tests/engine/webgpu_test.ts). */
const GPU = await probeAdapterIsolated();

Deno.test("initEngine picks native when OpenBLAS is present, and describeEngine names the library", {
  ignore: !NATIVE.ok || Boolean(GPU && !GPU.fallback),
}, async () => {
  const prev = Deno.env.get("FER_BACKEND");
  Deno.env.delete("FER_BACKEND");
  try {
    const e = await initEngine();
    assert.equal(e.name, "native");
    assert.equal(tf.getBackend(), "native");
    assert.ok(e.threads >= 1);
    const d = describeEngine();
    assert.match(d.library, /openblas/i);
    assert.match(engineSummary(), /^native \(\d+ threads?, /);
  } finally {
    if (prev !== undefined) Deno.env.set("FER_BACKEND", prev);
  }
});

Deno.test("initEngine: name argument and FER_BACKEND force an engine; unknown names are an error", async () => {
  assert.deepEqual(await initEngine("cpu"), { name: "cpu", threads: 1 });
  assert.equal(tf.getBackend(), "cpu");
  Deno.env.set("FER_BACKEND", "cpu");
  try {
    assert.equal((await initEngine()).name, "cpu");
  } finally {
    Deno.env.delete("FER_BACKEND");
  }
  await assert.rejects(() => initEngine("gpu-please"), /unknown engine "gpu-please"/);
});

Deno.test("initEngine('wasm') initialises wasm with the gradient kernels registered", async () => {
  const e = await initEngine("wasm");
  assert.equal(e.name, "wasm");
  assert.ok(tf.getKernel("Conv2DBackpropFilter", "wasm"));
  await tf.setBackend("cpu");
});

Deno.test("OpenBLAS lookup: FER_BLAS_LIB alone when set, else platform paths; the hint says what to install", () => {
  const prev = Deno.env.get("FER_BLAS_LIB");
  Deno.env.set("FER_BLAS_LIB", "/nowhere/libopenblas.so.0");
  try {
    assert.deepEqual(blasCandidates(), ["/nowhere/libopenblas.so.0"]);
    Deno.env.delete("FER_BLAS_LIB");
    const c = blasCandidates();
    assert.ok(c.some((p) => /libopenblas\.(so\.0|so|dylib|dll)$/.test(p)), c.join());
  } finally {
    if (prev !== undefined) Deno.env.set("FER_BLAS_LIB", prev);
    else Deno.env.delete("FER_BLAS_LIB");
  }
  assert.match(blasInstallHint(), /openblas/i);
});

/** Runs `code` (TypeScript) in a fresh Deno with `env`; returns its last stdout line as JSON and its stderr. */
async function evalInSubprocess(
  code: string,
  env: Record<string, string>,
): Promise<{ out: Record<string, unknown> & { name: string; library: string }; err: string }> {
  const o = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--ext=ts", code],
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const err = new TextDecoder().decode(o.stderr);
  assert.ok(o.success, err);
  return { out: JSON.parse(new TextDecoder().decode(o.stdout).trim().split("\n").pop()!), err };
}

Deno.test("without OpenBLAS the native engine falls back (subprocess with FER_BLAS_LIB pointing nowhere)", async () => {
  const code = `
    import { initEngine } from ${JSON.stringify(new URL("../../lib/engine/init.ts", import.meta.url).href)};
    const e = await initEngine("native");
    console.log(JSON.stringify(e));`;
  const { out: e, err } = await evalInSubprocess(code, { FER_BLAS_LIB: "/nowhere/libopenblas.so.0" });
  assert.notEqual(e.name, "native");
  assert.match(err, /OpenBLAS not found \(install it: /);
});

Deno.test({
  name: "without oneDNN the native engine keeps running on OpenBLAS convolutions and says what to install",
  ignore: !nativeAvailable().ok,
}, async () => {
  const code = `
    import * as tf from "@tensorflow/tfjs-core";
    import { initEngine, describeEngine, setPrecision } from ${
    JSON.stringify(new URL("../../lib/engine/init.ts", import.meta.url).href)
  };
    const e = await initEngine("native");
    const y = tf.conv2d(tf.ones([1, 5, 5, 2]), tf.ones([3, 3, 2, 4]), 1, "same");
    const low = setPrecision("bfloat16");
    console.log(JSON.stringify({ ...e, library: describeEngine().library, center: y.dataSync()[12 * 4], low }));`;
  const { out: e, err } = await evalInSubprocess(code, { FER_DNNL_LIB: "/nowhere/libdnnl.so.2" });
  assert.equal(e.name, "native");
  assert.doesNotMatch(e.library, /oneDNN/);
  assert.equal(e.center, 18); // 3x3 window x 2 channels of ones
  // bfloat16 asked for: float32, and why
  assert.deepEqual(e.low, {
    precision: "float32",
    reason: "oneDNN is not loaded (the native engine's bfloat16 kernels are oneDNN's)",
  });
  assert.match(err, /convolutions on OpenBLAS \(oneDNN not loaded: .*apt install libdnnl2/);
});

Deno.test({
  name: "with oneDNN present the engine line names it",
  ignore: !nativeAvailable().ok || !openDnnl(),
}, async () => {
  await initEngine("native");
  assert.match(describeEngine().library, /oneDNN 2\.\d+\.\d+ /);
  await tf.setBackend("cpu");
});

Deno.test("coreOfConfig / betterCoreType: a pre-AVX2 fallback core is replaced by the CPU's, nothing else", () => {
  const cfg = "OpenBLAS 0.3.21 NO_LAPACKE DYNAMIC_ARCH NO_AFFINITY USE_OPENMP Prescott MAX_THREADS=64";
  assert.equal(coreOfConfig(cfg), "Prescott");
  assert.equal(coreOfConfig("OpenBLAS 0.3.26 DYNAMIC_ARCH NO_AFFINITY SkylakeX MAX_THREADS=128"), "SkylakeX");
  assert.equal(coreOfConfig("some other BLAS"), "");
  const avx512 = ["sse3", "avx", "avx2", "fma", "avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"];
  assert.equal(betterCoreType("Prescott", new Set([...avx512, "avx512_bf16"])), "Cooperlake");
  assert.equal(betterCoreType("Prescott", new Set(avx512)), "SkylakeX");
  assert.equal(betterCoreType("Sandybridge", new Set(["avx", "avx2", "fma"])), "Haswell");
  assert.equal(betterCoreType("Nehalem", new Set(["sse4_2", "avx"])), null); // no AVX2: the fallback is right
  for (const core of ["Haswell", "Zen", "SkylakeX", "Cooperlake", "SapphireRapids", "NEOVERSEN1", ""]) {
    assert.equal(betterCoreType(core, new Set(avx512)), null, core); // OpenBLAS's own choice is kept
  }
});

Deno.test({
  name:
    "OpenBLAS runs kernels that match this CPU, not a generic fallback (fresh process, OPENBLAS_CORETYPE unset)",
  ignore: !NATIVE.ok,
}, async () => {
  const code = `
    import { openBlas } from ${JSON.stringify(new URL("../../lib/engine/blas.ts", import.meta.url).href)};
    const b = openBlas()!;
    console.log(JSON.stringify({ core: b.core, fallback: b.fallbackCore, wanted: b.wantedCore }));`;
  const env = Deno.env.toObject();
  delete env.OPENBLAS_CORETYPE; // this process may have set it (lib/engine/blas.ts)
  const o = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--ext=ts", code],
    env,
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(o.success, new TextDecoder().decode(o.stderr));
  const b = JSON.parse(new TextDecoder().decode(o.stdout).trim().split("\n").pop()!);
  assert.equal(b.wanted, "", `OpenBLAS could not be made to use ${b.wanted} kernels`);
  assert.equal(betterCoreType(b.core, cpuFlags()), null, `OpenBLAS uses ${b.core} kernels on this CPU`);
});
