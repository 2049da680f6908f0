/**
 * Provisioning of the native engine's libraries (OpenBLAS, oneDNN 2.x) on a machine that lacks them, so the
 * README's two commands are all the set-up: without them the toolkit falls back to wasm, ~20x slower.
 *
 * Routes, first that applies:
 * - root (or password-less sudo) with apt-get: `apt-get install libopenblas0-openmp libdnnl2` (an
 *   `apt-get update` first when the package lists are missing); with dnf: `dnf install openblas-pthreads`
 *   (Fedora's oneDNN is 3.x, another ABI);
 * - a user with apt-get but no root: the distribution's packages and the dependencies not installed are
 *   fetched with `apt-get download`, unpacked with `dpkg -x` into `.cache/native/` and loaded by path
 *   (dependencies are opened first by absolute path, so the loader finds them by soname);
 * - macOS with Homebrew: `brew install openblas`;
 * - none of these: nothing (the engine prints the install line and falls back).
 * One line says what was done. `FER_NO_PROVISION=1` switches it off (the test task sets it). Commands run
 * through an injectable runner so the routes are testable without a network or root.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { blasCandidates } from "./blas.ts";
import { dnnlCandidates } from "./dnnl.ts";

/** What a command printed and its exit status (127: not found). */
export type CommandResult = { code: number; stdout: string; stderr: string };

/** Runs a command; never throws for a failing or missing command. */
export type Runner = (
  cmd: string,
  args: string[],
  opts?: { cwd?: string; env?: Record<string, string>; timeoutS?: number },
) => Promise<CommandResult>;

/** The real runner: Deno.Command with a timeout (default 600 s). */
export const runCommand: Runner = async (cmd, args, opts = {}) => {
  try {
    const o = await new Deno.Command(cmd, {
      args,
      cwd: opts.cwd,
      env: opts.env,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout((opts.timeoutS ?? 600) * 1000),
    }).output();
    const dec = new TextDecoder();
    return { code: o.code, stdout: dec.decode(o.stdout), stderr: dec.decode(o.stderr) };
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return { code: 127, stdout: "", stderr: `${cmd}: not found` };
    return { code: 124, stdout: "", stderr: `${cmd}: ${(e as Error).message}` };
  }
};

/** Everything provisioning touches, injectable for tests. */
export type ProvisionDeps = {
  run: Runner;
  os: typeof Deno.build.os;
  arch: typeof Deno.build.arch;
  isRoot: boolean;
  /** Folder for the user-space route (default `.cache/native` in the project). */
  cacheDir: string;
  env: { get(k: string): string | undefined; set(k: string, v: string): void };
  /** Whether a library (absolute path or soname) is on this machine. */
  present: (candidates: string[]) => Promise<boolean>;
  /** Opens a shared library by absolute path (kept open for the process); throws when it cannot. */
  load: (path: string) => void;
  log: (line: string) => void;
};

/** The outcome: what was done, the line printed (or ""), and the library paths to use (user-space route). */
export type ProvisionResult = {
  action: "disabled" | "present" | "cached" | "installed" | "unpacked" | "failed" | "none";
  message: string;
  blas?: string;
  dnnl?: string;
};

/** Debian/Ubuntu packages of the two libraries. */
export const APT_PACKAGES = { blas: "libopenblas0-openmp", dnnl: "libdnnl2" } as const;

const MANIFEST = "manifest.json";
type Manifest = { blas: string | null; dnnl: string | null; preload: string[]; packages: string[] };

const opened: Deno.DynamicLibrary<Record<string, never>>[] = [];

function defaultDeps(): ProvisionDeps {
  let root = false;
  try {
    root = Deno.uid() === 0;
  } catch {
    // no uid on this platform
  }
  return {
    run: runCommand,
    os: Deno.build.os,
    arch: Deno.build.arch,
    isRoot: root,
    cacheDir: new URL("../../.cache/native", import.meta.url).pathname,
    env: Deno.env,
    present: libraryPresent,
    load: (path) => void opened.push(Deno.dlopen(path, {})),
    log: (line) => console.warn(line),
  };
}

/**
 * Whether a library is on this machine without loading it (loading oneDNN early would start its OpenMP
 * runtime before the thread count is set): an absolute candidate exists, or the soname is in the loader cache.
 */
export async function libraryPresent(candidates: string[]): Promise<boolean> {
  const sonames: string[] = [];
  for (const c of candidates) {
    if (!c.startsWith("/")) sonames.push(c);
    else if (existsSync(c)) return true;
  }
  if (!sonames.length || Deno.build.os !== "linux") return false;
  const r = await runCommand("/sbin/ldconfig", ["-p"], { timeoutS: 10 });
  if (r.code !== 0) return false;
  return sonames.some((s) => r.stdout.includes(`${s} `));
}

let done: Promise<ProvisionResult> | null = null;

/**
 * Makes OpenBLAS (and oneDNN) available when they are missing, once per process; see the module comment.
 * Returns what was done; never throws (a failure is reported in one line and the engine falls back).
 */
export function provisionNative(deps: Partial<ProvisionDeps> = {}): Promise<ProvisionResult> {
  if (Object.keys(deps).length) return provision({ ...defaultDeps(), ...deps });
  return done ??= provision(defaultDeps());
}

async function provision(d: ProvisionDeps): Promise<ProvisionResult> {
  if (d.env.get("FER_NO_PROVISION") === "1") return { action: "disabled", message: "" };
  try {
    const cached = readManifest(d.cacheDir);
    // a child process of one that provisioned: the env already names our copy; its dependencies need opening
    if (cached && cached.blas && d.env.get("FER_BLAS_LIB") === cached.blas) return activate(d, cached, "");
    const needBlas = !d.env.get("FER_BLAS_LIB") && !(await d.present(blasCandidates()));
    const needDnnl = !d.env.get("FER_DNNL_LIB") && d.env.get("FER_DNNL") !== "0" &&
      d.os === "linux" && !(await d.present(dnnlCandidates()));
    if (!needBlas && !needDnnl) return { action: "present", message: "" };
    if (cached && (!needBlas || cached.blas) && (!needDnnl || cached.dnnl)) return activate(d, cached, "");
    const pkgs = [...(needBlas ? [APT_PACKAGES.blas] : []), ...(needDnnl ? [APT_PACKAGES.dnnl] : [])];
    const what = [needBlas ? "OpenBLAS" : "", needDnnl ? "oneDNN" : ""].filter(Boolean).join(" and ");
    if (d.os === "darwin") return await brew(d, needBlas);
    if (d.os !== "linux") return { action: "none", message: "" };
    const hasApt = (await d.run("apt-get", ["--version"], { timeoutS: 30 })).code === 0;
    const hasDnf = !hasApt && (await d.run("dnf", ["--version"], { timeoutS: 30 })).code === 0;
    if (!hasApt && !hasDnf) return { action: "none", message: "" };
    const sudo = d.isRoot
      ? null
      : (await d.run("sudo", ["-n", "true"], { timeoutS: 10 })).code === 0
      ? "sudo"
      : "";
    if (d.isRoot || sudo) {
      return hasApt ? await aptInstall(d, pkgs, what, sudo) : await dnfInstall(d, needBlas, sudo);
    }
    if (hasApt) return await aptUserSpace(d, pkgs, what);
    return report(d, "failed", `native engine: ${what} missing and dnf needs root; not installed`);
  } catch (e) {
    return report(
      d,
      "failed",
      `native engine: could not provision the native libraries (${(e as Error).message})`,
    );
  }
}

function report(d: ProvisionDeps, action: ProvisionResult["action"], message: string): ProvisionResult {
  if (message) d.log(message);
  return { action, message };
}

const APT_ENV = { DEBIAN_FRONTEND: "noninteractive" };
const APT_QUIET = ["-o", "Acquire::Retries=0", "-o", "Acquire::http::Timeout=20"];

function lastLine(r: CommandResult): string {
  return (r.stderr + r.stdout).trim().split("\n").filter((l) => l.trim()).pop() ?? `exit ${r.code}`;
}

/** As root: apt-get install (an update first when the lists do not know the packages); oneDNN optional. */
async function aptInstall(d: ProvisionDeps, pkgs: string[], what: string, sudo: string | null) {
  const cmd = sudo ? "sudo" : "apt-get";
  const pre = sudo ? ["-n", "apt-get"] : [];
  const install = (list: string[]) =>
    d.run(cmd, [...pre, ...APT_QUIET, "install", "-y", "-qq", "--no-install-recommends", ...list], {
      env: APT_ENV,
    });
  let r = await install(pkgs);
  if (r.code !== 0 && /Unable to locate|has no installation candidate/.test(r.stderr + r.stdout)) {
    await d.run(cmd, [...pre, ...APT_QUIET, "update", "-qq"], { env: APT_ENV });
    r = await install(pkgs);
  }
  let got = pkgs;
  if (r.code !== 0 && pkgs.length > 1) {
    got = pkgs.filter((p) => p === APT_PACKAGES.blas); // an older release without oneDNN 2: OpenBLAS alone
    r = await install(got);
  }
  if (r.code !== 0) {
    return report(d, "failed", `native engine: apt-get install ${pkgs.join(" ")} failed (${lastLine(r)})`);
  }
  return report(
    d,
    "installed",
    `native engine: ${what} missing; installed ${got.join(" ")} with apt-get${
      sudo ? " (sudo)" : " (as root)"
    }`,
  );
}

/** As root on Fedora/RHEL: the pthreads OpenBLAS (Fedora's oneDNN is 3.x, not the 2.x ABI used here). */
async function dnfInstall(d: ProvisionDeps, needBlas: boolean, sudo: string | null) {
  if (!needBlas) return { action: "none" as const, message: "" };
  const args = ["install", "-y", "-q", "openblas-pthreads"];
  const r = sudo ? await d.run("sudo", ["-n", "dnf", ...args]) : await d.run("dnf", args);
  if (r.code !== 0) {
    return report(d, "failed", `native engine: dnf install openblas-pthreads failed (${lastLine(r)})`);
  }
  const lib = ["/usr/lib64/libopenblasp.so.0", "/usr/lib/libopenblasp.so.0"].find((p) => existsSync(p));
  if (lib && !d.env.get("FER_BLAS_LIB")) d.env.set("FER_BLAS_LIB", lib);
  return {
    ...report(d, "installed", `native engine: OpenBLAS missing; installed openblas-pthreads with dnf`),
    blas: lib,
  };
}

/** macOS: Homebrew's OpenBLAS (Homebrew's oneDNN is 3.x). */
async function brew(d: ProvisionDeps, needBlas: boolean): Promise<ProvisionResult> {
  if (!needBlas) return { action: "none", message: "" };
  if ((await d.run("brew", ["--version"], { timeoutS: 30 })).code !== 0) {
    return { action: "none", message: "" };
  }
  const r = await d.run("brew", ["install", "openblas"], { env: { HOMEBREW_NO_AUTO_UPDATE: "1" } });
  if (r.code !== 0) {
    return report(d, "failed", `native engine: brew install openblas failed (${lastLine(r)})`);
  }
  return report(d, "installed", "native engine: OpenBLAS missing; installed openblas with brew");
}

/**
 * Without root: `apt-get download` of the packages and of their dependencies that are not installed,
 * unpacked with `dpkg -x` into the cache folder; then loaded by path ({@link activate}).
 */
async function aptUserSpace(d: ProvisionDeps, pkgs: string[], what: string): Promise<ProvisionResult> {
  const deps = await d.run("apt-cache", [
    "depends",
    "--recurse",
    "--no-recommends",
    "--no-suggests",
    "--no-conflicts",
    "--no-breaks",
    "--no-replaces",
    "--no-enhances",
    ...pkgs,
  ], { timeoutS: 60 });
  if (deps.code !== 0) {
    return report(d, "failed", `native engine: apt-cache depends failed (${lastLine(deps)})`);
  }
  const all = [...new Set(deps.stdout.split("\n").filter((l) => /^[a-z0-9][a-z0-9+.-]*$/.test(l.trim())))]
    .map((l) => l.trim());
  const q = await d.run("dpkg-query", ["-W", "-f", "${Package} ${db:Status-Abbrev}\\n", ...all], {
    timeoutS: 60,
  });
  const installed = new Set(
    q.stdout.split("\n").map((l) => l.trim().split(/\s+/)).filter((f) => f[1] === "ii").map((f) => f[0]),
  );
  const fetch = all.filter((p) => !installed.has(p) || pkgs.includes(p));
  const debs = join(d.cacheDir, "debs");
  const root = join(d.cacheDir, "root");
  rmSync(debs, { recursive: true, force: true });
  mkdirSync(debs, { recursive: true });
  const dl = await d.run("apt-get", [...APT_QUIET, "download", ...fetch], { cwd: debs });
  if (dl.code !== 0) {
    return report(
      d,
      "failed",
      `native engine: ${what} missing; apt-get download ${fetch.join(" ")} failed (${lastLine(dl)})`,
    );
  }
  for (const f of readdirSync(debs).filter((f) => f.endsWith(".deb"))) {
    const x = await d.run("dpkg", ["-x", join(debs, f), root], { timeoutS: 120 });
    if (x.code !== 0) return report(d, "failed", `native engine: dpkg -x ${f} failed (${lastLine(x)})`);
  }
  rmSync(debs, { recursive: true, force: true });
  const libs = sharedLibraries(root);
  const find = (re: RegExp) => libs.find((p) => re.test(p)) ?? null;
  const manifest: Manifest = {
    blas: find(/\/openblas-(openmp|pthread)\/libopenblas\.so\.0$/) ?? find(/\/libopenblas\.so\.0$/),
    dnnl: find(/\/libdnnl\.so\.2$/),
    preload: libs.filter((p) => !/openblas|libdnnl|libblas|liblapack/.test(p)),
    packages: fetch,
  };
  if (!manifest.blas && pkgs.includes(APT_PACKAGES.blas)) {
    return report(d, "failed", `native engine: the unpacked ${APT_PACKAGES.blas} has no libopenblas.so.0`);
  }
  writeFileSync(join(d.cacheDir, MANIFEST), JSON.stringify(manifest, null, 2) + "\n");
  const extra = fetch.length - pkgs.length;
  return activate(
    d,
    manifest,
    `native engine: ${what} missing and no root; downloaded ${pkgs.join(", ")}` +
      (extra > 0 ? ` (+${extra} dependenc${extra === 1 ? "y" : "ies"})` : "") +
      ` with apt-get download and unpacked them into ${shortPath(d.cacheDir)}`,
  );
}

/** `p` relative to the working directory when inside it, else absolute. */
function shortPath(p: string): string {
  const r = relative(Deno.cwd(), p);
  return r && !r.startsWith("..") ? r : p;
}

/** Real shared-library files (`*.so*`, not symbolic links) under `dir`, sorted. */
function sharedLibraries(dir: string): string[] {
  const out: string[] = [];
  const walk = (p: string) => {
    for (const e of readdirSync(p, { withFileTypes: true })) {
      const f = join(p, e.name);
      if (e.isDirectory()) walk(f);
      else if (/\.so(\.\d+)*$/.test(e.name)) out.push(f);
    }
  };
  if (existsSync(dir)) walk(dir);
  return out.sort();
}

function readManifest(cacheDir: string): Manifest | null {
  try {
    const m = JSON.parse(readFileSync(join(cacheDir, MANIFEST), "utf8")) as Manifest;
    const ok = [m.blas, m.dnnl, ...m.preload].every((p) => p === null || statSync(p).isFile());
    return ok ? m : null;
  } catch {
    return null;
  }
}

/**
 * Uses unpacked libraries: opens the dependencies by absolute path (repeatedly, until no more open, since
 * their order is unknown), then names OpenBLAS and oneDNN in FER_BLAS_LIB / FER_DNNL_LIB unless set.
 */
function activate(d: ProvisionDeps, m: Manifest, message: string): ProvisionResult {
  let pending = [...m.preload];
  while (pending.length) {
    const left = pending.filter((p) => {
      try {
        d.load(p);
        return false;
      } catch {
        return true;
      }
    });
    if (left.length === pending.length) break; // the rest need something not here: loading them reports it
    pending = left;
  }
  if (m.blas && !d.env.get("FER_BLAS_LIB")) d.env.set("FER_BLAS_LIB", m.blas);
  if (m.dnnl && !d.env.get("FER_DNNL_LIB")) d.env.set("FER_DNNL_LIB", m.dnnl);
  const r = report(d, message ? "unpacked" : "cached", message);
  return { ...r, blas: m.blas ?? undefined, dnnl: m.dnnl ?? undefined };
}
