import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import sharp from "sharp";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import {
  ArgsError,
  type CommandSpec,
  helpText,
  parseArgv,
  parseIntArg,
  runArg,
  userPath,
} from "../../lib/cli/args.ts";
import { PROJECT_ROOT } from "../../lib/data/dataset.ts";
import { experimentConfig, withEpochs } from "../../lib/train/experiments.ts";
import { trainTinyRun } from "../helpers/tiny_model.ts";

const SPEC: CommandSpec = {
  name: "demo",
  usage: ["[--n N] [--flag]"],
  summary: "a demo command",
  options: {
    n: { type: "string", value: "N", help: "a count", default: "1" },
    flag: { type: "boolean", help: "a flag" },
    dir: { type: "string", value: "DIR", help: "a folder" },
  },
  positionals: { max: 1 },
};

Deno.test("args: one parser; unknown options, stray positionals and bad values are ArgsErrors naming them", () => {
  const a = parseArgv(SPEC, ["--n", "5", "--flag", "pos"]);
  assert.ok(a !== "help");
  assert.equal(a.int("n"), 5);
  assert.equal(a.flag("flag"), true);
  assert.deepEqual(a.positionals, ["pos"]);
  assert.equal(parseArgv(SPEC, ["-h"]), "help");
  assert.match(
    helpText(SPEC),
    /usage: deno task demo \[--n N\] \[--flag\][\s\S]*--n N\s+a count \(default 1\)/,
  );
  const err = (argv: string[], re: RegExp) =>
    assert.throws(() => parseArgv(SPEC, argv), (e: Error) => e instanceof ArgsError && re.test(e.message));
  err(["--bogus"], /^unknown option --bogus \(demo takes --n, --flag, --dir\)/);
  err(["--n"], /^option --n needs a value/);
  err(["--flag=yes"], /^option --flag is a flag and takes no value/);
  err(["a", "b"], /too many arguments: "b"/);
  for (const bad of ["0", "abc", "1.5", " ", "1e3", "-2"]) {
    const p = parseArgv(SPEC, [`--n=${bad}`]);
    assert.ok(p !== "help");
    assert.throws(
      () => p.int("n"),
      (e: Error) => e instanceof ArgsError && /^--n must be an integer/.test(e.message),
    );
  }
  assert.throws(() => parseIntArg("--size", "5000", 1, 4096), /--size must be an integer between 1 and 4096/);
});

Deno.test("args: relative paths resolve against the caller's directory (INIT_CWD from deno task)", () => {
  const prev = Deno.env.get("INIT_CWD");
  const dir = mkdtempSync(join(tmpdir(), "fer-caller-"));
  try {
    Deno.env.set("INIT_CWD", dir);
    assert.equal(userPath("face.jpg"), join(dir, "face.jpg"));
    assert.equal(userPath("/abs/x.jpg"), "/abs/x.jpg");
    const a = parseArgv(SPEC, ["--dir", "../data"]);
    assert.ok(a !== "help");
    assert.equal(a.path("dir"), join(dir, "..", "data"));
    mkdirSync(join(dir, "myrun"));
    assert.equal(runArg("myrun"), join(dir, "myrun")); // a folder where the user is
    assert.equal(runArg("fer_cnn-cpu"), "fer_cnn-cpu"); // else a run name under checkpoints/
  } finally {
    if (prev === undefined) Deno.env.delete("INIT_CWD");
    else Deno.env.set("INIT_CWD", prev);
    rmSync(dir, { recursive: true });
  }
});

Deno.test("--epochs N: T_max follows when the preset's cosine spanned its epochs, and says so", () => {
  const cpu = experimentConfig("fer_cnn", "cpu"); // epochs 8, tMax 8
  const a = withEpochs(cpu, 12);
  assert.equal(a.cfg.epochs, 12);
  assert.equal(a.cfg.tMax, 12);
  assert.match(a.note, /T_max 12: follows --epochs/);
  const b = withEpochs(cpu, 12, 5);
  assert.equal(b.cfg.tMax, 5);
  const paper = experimentConfig("efficientnet_b3", "paper"); // epochs 20, tMax 10: the study's own T_max
  const c = withEpochs(paper, 30);
  assert.equal(c.cfg.tMax, 10);
  assert.match(c.note, /T_max 10 kept/);
  assert.deepEqual(withEpochs(cpu).cfg, cpu);
});

// ---- the CLIs, run as `deno task` runs them: in the project root, with INIT_CWD set to the caller's folder ----

async function cli(
  name: string,
  args: string[],
  initCwd = PROJECT_ROOT,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const o = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", join(PROJECT_ROOT, "lib/cli", `${name}.ts`), ...args],
    cwd: PROJECT_ROOT,
    env: { INIT_CWD: initCwd, FER_NO_PROVISION: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: o.code, stdout: dec.decode(o.stdout), stderr: dec.decode(o.stderr) };
}

/** Each `[args, message]` makes `deno task <command>` exit 2 (bad arguments) with that message on stderr. */
async function expectBadArgs(command: string, cases: [string[], RegExp][]): Promise<void> {
  for (const [args, re] of cases) {
    const r = await cli(command, args);
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.stdout}${r.stderr}`);
    assert.match(r.stderr, re);
  }
}

Deno.test("train CLI: --seed is validated and cannot change a run being resumed", async () => {
  const cases: [string[], RegExp][] = [
    [["--resume", "some-run", "--seed", "3"], /error: --seed cannot change a run being resumed/],
    [["vgg_fer", "--seed=-1"], /error: --seed must be an integer between 0 and 2147483647, got "-1"/],
    [["vgg_fer", "--seed", "x"], /error: --seed must be an integer/],
  ];
  await expectBadArgs("train", cases);
  const help = await cli("train", ["--help"]);
  assert.match(
    help.stdout,
    /--seed N\s+seed of the weights, batch order and augmentation; the validation split/,
  );
});

Deno.test("train CLI: --precision is float32 or bfloat16, for new runs only", async () => {
  const cases: [string[], RegExp][] = [
    [
      ["--resume", "some-run", "--precision", "bfloat16"],
      /error: --precision cannot change a run being resumed/,
    ],
    [
      ["vgg_fer", "--precision", "float16"],
      /error: --precision must be one of float32, bfloat16, got "float16"/,
    ],
  ];
  await expectBadArgs("train", cases);
  const help = await cli("train", ["--help"]);
  assert.match(
    help.stdout,
    /--precision P\s+convolutions and dense layers of the training steps in bfloat16 where the CPU has AMX/,
  );
});

Deno.test("data CLI: --help, unknown options, positionals and bad --size are clear errors, not stack traces", async () => {
  const help = await cli("data", ["--help"]);
  assert.equal(help.code, 0, help.stderr);
  assert.match(help.stdout, /usage: deno task data/);
  const cases: [string[], RegExp][] = [
    [["--bogus"], /error: unknown option --bogus/],
    [["extra"], /error: unexpected argument "extra"/],
    [["--size", "0"], /error: --size must be an integer >= 1, got "0"/],
    [["--size", "abc"], /error: --size must be an integer >= 1, got "abc"/],
    [["--channels", "2"], /error: --channels must be one of 1, 3, got "2"/],
    [
      ["--data", "data/sample", "--no-cache", "--size", "100000"],
      /error: --size 100000 is too large: .*\(the largest size that fits is \d+/,
    ],
  ];
  for (const [args, re] of cases) {
    const r = await cli("data", args);
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.stdout}${r.stderr}`);
    assert.match(r.stderr, re);
    assert.doesNotMatch(r.stderr, /TypeError|\s{4}at /);
  }
});

Deno.test("predict, report and models: --help; models prints no tfjs Node.js banner", async () => {
  for (
    const name of [
      "predict",
      "report",
      "models",
      "train",
      "evaluate",
      "start",
      "notebooks",
      "bench",
      "bench_data",
      "export",
      "serve",
      "peers",
    ]
  ) {
    const r = await cli(name, ["--help"]);
    assert.equal(r.code, 0, `${name}: ${r.stderr}`);
    assert.match(r.stdout, /^usage: deno task /, name);
  }
  const m = await cli("models", []);
  assert.equal(m.code, 0, m.stderr);
  assert.match(m.stdout, /fer_cnn/);
  assert.doesNotMatch(m.stdout + m.stderr, /Hi, looks like you are running TensorFlow\.js in Node\.js/);
});

Deno.test("relative paths given from a subfolder: predict images, --data and --predictions", async () => {
  await tf.setBackend("cpu");
  const caller = mkdtempSync(join(tmpdir(), "fer-subdir-"));
  try {
    await trainTinyRun(caller, "r", { augment: false, maxTrainImages: 16, maxEvalImages: 8 });
    mkdirSync(join(caller, "faces"));
    await sharp(new Uint8Array(48 * 48).fill(100), { raw: { width: 48, height: 48, channels: 1 } }).png()
      .toFile(join(caller, "faces", "face.png"));
    // `cd caller && deno task predict r faces/face.png`: run folder and image both relative to the caller
    const p = await cli("predict", ["r", "faces/face.png", "--top", "2", "--no-detect"], caller);
    assert.equal(p.code, 0, p.stderr);
    assert.match(p.stdout, /^faces\/face\.png: \w+ \d+\.\d%, \w+ \d+\.\d%/);
    const rep = await cli("report", ["r"], caller);
    assert.equal(rep.code, 0, rep.stderr);
    const ev = await cli("evaluate", ["--predictions", "r/predictions.csv", "--json"], caller);
    assert.equal(ev.code, 0, ev.stderr);
    assert.ok(JSON.parse(ev.stdout).accuracy >= 0);
    mkdirSync(join(caller, "d", "train", "a"), { recursive: true });
    mkdirSync(join(caller, "d", "test", "a"), { recursive: true });
    const jpg = await sharp(new Uint8Array(48 * 48).fill(7), { raw: { width: 48, height: 48, channels: 1 } })
      .jpeg()
      .toBuffer();
    writeFileSync(join(caller, "d", "train", "a", "x.jpg"), jpg);
    writeFileSync(join(caller, "d", "test", "a", "y.jpg"), jpg);
    const d = await cli("data", ["--data", "d", "--json", "--no-cache"], caller);
    assert.equal(d.code, 0, d.stderr);
    assert.equal(JSON.parse(d.stdout).root, join(caller, "d"));
  } finally {
    rmSync(caller, { recursive: true });
  }
});
