import assert from "node:assert/strict";
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  type CommandResult,
  type ProvisionDeps,
  provisionNative,
  runCommand,
  type Runner,
} from "../../lib/engine/provision.ts";

const ARCH = Deno.build.arch === "aarch64" ? "aarch64-linux-gnu" : "x86_64-linux-gnu";
const SYS_BLAS = `/usr/lib/${ARCH}/openblas-openmp/libopenblas.so.0`;
const SYS_GFORTRAN = `/usr/lib/${ARCH}/libgfortran.so.5`;

const ok = (stdout = ""): CommandResult => ({ code: 0, stdout, stderr: "" });
const fail = (stderr: string, code = 100): CommandResult => ({ code, stdout: "", stderr });

function fakeEnv(init: Record<string, string> = {}) {
  const m = new Map(Object.entries(init));
  return { get: (k: string) => m.get(k), set: (k: string, v: string) => void m.set(k, v), map: m };
}

/** Deps that never touch the machine: a runner answering from `answer`, a log, no library present. */
function fake(answer: (cmd: string, args: string[]) => CommandResult | Promise<CommandResult>) {
  const calls: string[] = [];
  const lines: string[] = [];
  const env = fakeEnv();
  const run: Runner = (cmd, args) => {
    calls.push([cmd, ...args].join(" "));
    return Promise.resolve(answer(cmd, args));
  };
  const deps: Partial<ProvisionDeps> = {
    run,
    os: "linux",
    arch: "x86_64",
    isRoot: true,
    cacheDir: "/nonexistent/fer-native",
    env,
    present: () => Promise.resolve(false),
    load: () => {},
    log: (l) => void lines.push(l),
  };
  return { deps, calls, lines, env };
}

Deno.test("provision: FER_NO_PROVISION=1, or libraries already present: nothing runs", async () => {
  const a = fake(() => {
    throw new Error("no command may run");
  });
  a.env.set("FER_NO_PROVISION", "1");
  assert.equal((await provisionNative(a.deps)).action, "disabled");
  const b = fake(() => {
    throw new Error("no command may run");
  });
  b.deps.present = () => Promise.resolve(true);
  assert.equal((await provisionNative(b.deps)).action, "present");
  assert.deepEqual([...a.calls, ...b.calls], []);
  assert.deepEqual([...a.lines, ...b.lines], []);
});

Deno.test("provision as root: apt-get install (update first when the lists lack the packages), one line", async () => {
  let installs = 0;
  const f = fake((cmd, args) => {
    if (args[0] === "--version") return cmd === "apt-get" ? ok("apt 2.6") : fail("", 127);
    if (args.includes("install")) {
      return ++installs === 1 ? fail("E: Unable to locate package libdnnl2") : ok();
    }
    if (args.includes("update")) return ok();
    return fail(`unexpected ${cmd}`);
  });
  const r = await provisionNative(f.deps);
  assert.equal(r.action, "installed");
  assert.deepEqual(f.calls.filter((c) => !c.includes("--version")).map((c) => c.replace(/ -o \S+/g, "")), [
    "apt-get install -y -qq --no-install-recommends libopenblas0-openmp libdnnl2",
    "apt-get update -qq",
    "apt-get install -y -qq --no-install-recommends libopenblas0-openmp libdnnl2",
  ]);
  assert.deepEqual(f.lines, [
    "native engine: OpenBLAS and oneDNN missing; installed libopenblas0-openmp libdnnl2 with apt-get (as root)",
  ]);
});

Deno.test("provision: no package manager, or a failing one: one line at most, never an exception", async () => {
  const none = fake(() => fail("", 127));
  none.deps.isRoot = false;
  assert.equal((await provisionNative(none.deps)).action, "none");
  assert.deepEqual(none.lines, []);
  const broken = fake((_cmd, args) => (args[0] === "--version" ? ok() : fail("E: network unreachable")));
  const r = await provisionNative(broken.deps);
  assert.equal(r.action, "failed");
  assert.equal(broken.lines.length, 1);
  assert.match(broken.lines[0], /apt-get install .* failed \(E: network unreachable\)/);
});

function hasDpkgDeb(): boolean {
  try {
    return new Deno.Command("dpkg-deb", { args: ["--version"], stdout: "null", stderr: "null" }).outputSync()
      .success;
  } catch {
    return false;
  }
}

/** Builds a real .deb holding `files` (path in the package -> source file). */
async function buildDeb(dir: string, name: string, files: Record<string, string>): Promise<string> {
  const tree = join(dir, `${name}-tree`);
  mkdirSync(join(tree, "DEBIAN"), { recursive: true });
  writeFileSync(
    join(tree, "DEBIAN", "control"),
    `Package: ${name}\nVersion: 1.0\nArchitecture: all\nMaintainer: test <t@example.org>\nDescription: test\n`,
  );
  for (const [p, src] of Object.entries(files)) {
    mkdirSync(join(tree, p, ".."), { recursive: true });
    copyFileSync(src, join(tree, p));
  }
  const deb = join(dir, `${name}_1.0_all.deb`);
  const r = await runCommand("dpkg-deb", ["--build", "-Znone", "--root-owner-group", tree, deb]);
  assert.equal(r.code, 0, r.stderr);
  return deb;
}

Deno.test({
  name: "provision without root: apt-get download + dpkg -x into the cache, loaded by path, reused offline",
  ignore: !hasDpkgDeb() || !existsSync(SYS_BLAS) || !existsSync(SYS_GFORTRAN),
  fn: async () => {
    const tmp = mkdtempSync(join(tmpdir(), "fer-provision-"));
    try {
      // the "repository": a real OpenBLAS package and one dependency that is "not installed"
      const repo = join(tmp, "repo");
      mkdirSync(repo);
      const debs: Record<string, string> = {
        "libopenblas0-openmp": await buildDeb(repo, "libopenblas0-openmp", {
          [`usr/lib/${ARCH}/openblas-openmp/libopenblas.so.0`]: SYS_BLAS,
        }),
        "libgfortran5": await buildDeb(repo, "libgfortran5", {
          [`usr/lib/${ARCH}/libgfortran.so.5`]: SYS_GFORTRAN,
        }),
      };
      const f = fake(async (cmd, args) => {
        if (cmd === "apt-get" && args[0] === "--version") return ok("apt 2.6");
        if (cmd === "sudo") return fail("sudo: a password is required", 1);
        if (cmd === "apt-cache") return ok("libopenblas0-openmp\nlibc6\nlibgfortran5\n<libopencl1>\n");
        if (cmd === "dpkg-query") return ok("libc6 ii \nlibopenblas0-openmp un \n");
        if (cmd === "apt-get" && args.includes("download")) {
          const pkgs = args.slice(args.indexOf("download") + 1);
          const cwd = join(f.deps.cacheDir!, "debs");
          for (const p of pkgs) copyFileSync(debs[p], join(cwd, `${p}.deb`));
          return ok();
        }
        if (cmd === "dpkg") return await runCommand(cmd, args); // the real unpacking
        return fail(`unexpected ${cmd} ${args.join(" ")}`);
      });
      const loaded: string[] = [];
      f.deps.isRoot = false;
      f.deps.cacheDir = join(tmp, "native");
      f.deps.load = (p) => {
        Deno.dlopen(p, {});
        loaded.push(p);
      };
      f.env.set("FER_DNNL", "0"); // OpenBLAS only in this test
      const r = await provisionNative(f.deps);
      assert.equal(r.action, "unpacked", f.lines.join("\n"));
      const blas = join(tmp, "native", "root", "usr", "lib", ARCH, "openblas-openmp", "libopenblas.so.0");
      assert.equal(r.blas, blas);
      assert.equal(f.env.get("FER_BLAS_LIB"), blas);
      assert.deepEqual(loaded, [join(tmp, "native", "root", "usr", "lib", ARCH, "libgfortran.so.5")]);
      assert.ok(
        f.calls.some((c) => /^apt-get .*download libopenblas0-openmp libgfortran5$/.test(c)),
        f.calls.join("\n"),
      );
      assert.equal(f.lines.length, 1); // one line says what was done
      assert.match(
        f.lines[0],
        /^native engine: OpenBLAS missing and no root; downloaded libopenblas0-openmp \(\+1 dependency\) with apt-get download and unpacked them into \S*native$/,
      );
      assert.ok(!existsSync(join(tmp, "native", "debs")), "downloaded .debs are removed");
      // the unpacked library is a working BLAS
      const lib = Deno.dlopen(blas, { openblas_get_num_threads: { parameters: [], result: "i32" } });
      assert.ok(lib.symbols.openblas_get_num_threads() >= 1);
      lib.close();
      // later runs use the cache and run nothing
      const again = fake(() => {
        throw new Error("no command may run");
      });
      again.deps.cacheDir = join(tmp, "native");
      again.deps.isRoot = false;
      again.env.set("FER_DNNL", "0");
      const r2 = await provisionNative(again.deps);
      assert.equal(r2.action, "cached");
      assert.equal(again.env.get("FER_BLAS_LIB"), blas);
      assert.deepEqual(again.lines, []);
      assert.deepEqual(readdirSync(join(tmp, "native")).sort(), ["manifest.json", "root"]);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  },
});
