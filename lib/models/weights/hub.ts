/**
 * Finds timm pretrained weights (`model.safetensors` of the Hugging Face repo `timm/<tag>`), in this order:
 *
 * 1. an explicit local file (`path`);
 * 2. the Hugging Face cache: `$HF_HUB_CACHE`, else `$HF_HOME/hub`, else `$XDG_CACHE_HOME/huggingface/hub`, else
 *    `~/.cache/huggingface/hub`; inside it `models--timm--<tag>/snapshots/<rev>/model.safetensors`, taking the
 *    snapshot named by `refs/main` when that file exists, else any snapshot holding the file (newest first);
 * 3. a download from `<endpoint>/timm/<tag>/resolve/main/model.safetensors` (endpoint: option `endpoint`, else
 *    `$HF_ENDPOINT`, else https://huggingface.co), skipped when `HF_HUB_OFFLINE=1`.
 *
 * Downloads use huggingface_hub's cache layout, so Python tools share the file: the bytes go to
 * `blobs/<sha256>.incomplete`, are checked (size equals Content-Length, sha256 equals the server's
 * `X-Linked-Etag` when given, the file parses as safetensors), then renamed to `blobs/<sha256>`; the snapshot
 * entry `snapshots/<commit>/model.safetensors` is a relative symlink to the blob (a copy where symlinks are not
 * allowed) and `refs/main` holds the commit (from `X-Repo-Commit`; without it the snapshot folder is named
 * after the sha256 and no ref is written). On any failure the temporary file is removed.
 *
 * A file put by hand at `<cache>/models--timm--<tag>/snapshots/manual/model.safetensors` is found too.
 */

import { createHash } from "node:crypto";
import { readSafetensorsHeader, SafetensorsError, tempPathFor } from "./safetensors.ts";

/** Default Hugging Face endpoint. */
export const DEFAULT_ENDPOINT = "https://huggingface.co";

/** File name of timm's weights in each repo. */
export const WEIGHTS_FILENAME = "model.safetensors";

/** Environment lookups; tests pass a plain object instead of touching the process environment. */
export type Env = Record<string, string | undefined>;

/** Options for {@link resolveWeights}. */
export interface ResolveOptions {
  /** Explicit local safetensors file: used as is (must exist). */
  path?: string;
  /** Hugging Face hub cache folder (overrides the environment). */
  cacheDir?: string;
  /** Base URL of the hub (overrides `HF_ENDPOINT`). */
  endpoint?: string;
  /** Skip the network (also set by `HF_HUB_OFFLINE=1`). */
  offline?: boolean;
  /** Progress: false for none, a callback, or true/undefined for throttled lines on stderr. */
  progress?: boolean | ((done: number, total: number | null) => void);
  /** Abort a download that receives no bytes for this long (ms, default 60000). */
  idleTimeoutMs?: number;
  /** Environment to read (default: Deno.env). */
  env?: Env;
  /** fetch implementation (default: global fetch). */
  fetch?: typeof fetch;
}

/** Where the weights were found. */
export interface ResolvedWeights {
  path: string;
  source: "path" | "cache" | "download";
  repoId: string;
}

/** Raised when weights cannot be found or downloaded; the message says where to put the file by hand. */
export class WeightsNotFoundError extends Error {
  /** True when the weights are not local and the network is unreachable or switched off (HF_HUB_OFFLINE). */
  readonly offline: boolean;
  constructor(message: string, opts: { offline?: boolean } = {}) {
    super(message);
    this.name = "WeightsNotFoundError";
    this.offline = opts.offline ?? false;
  }
}

function envOf(opts: { env?: Env }): Env {
  if (opts.env) return opts.env;
  try {
    return Deno.env.toObject();
  } catch {
    return {}; // no --allow-env: behave as if nothing is set
  }
}

function isTruthy(v: string | undefined): boolean {
  return v !== undefined && ["1", "true", "yes", "on"].includes(v.trim().toLowerCase());
}

function joinPath(...parts: string[]): string {
  return parts.join("/").replace(/\/+/g, "/");
}

/** Checks a timm model tag such as `convnext_tiny.fb_in22k` (no path separators or `..`) and returns it. */
export function checkTag(tag: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(tag) || tag.includes("..") || tag.length > 96) {
    throw new Error(`invalid timm model tag ${JSON.stringify(tag)} (expected e.g. "convnext_tiny.fb_in22k")`);
  }
  return tag;
}

/** Hugging Face repo id of a timm tag: `timm/<tag>`. */
export function timmRepoId(tag: string): string {
  return `timm/${checkTag(tag)}`;
}

/** The hub cache folder from the environment (same precedence as huggingface_hub). */
export function hfCacheDir(env: Env = envOf({})): string {
  if (env.HF_HUB_CACHE) return env.HF_HUB_CACHE;
  if (env.HUGGINGFACE_HUB_CACHE) return env.HUGGINGFACE_HUB_CACHE;
  if (env.HF_HOME) return joinPath(env.HF_HOME, "hub");
  if (env.XDG_CACHE_HOME) return joinPath(env.XDG_CACHE_HOME, "huggingface", "hub");
  const home = env.HOME ?? env.USERPROFILE;
  if (!home) throw new Error("cannot locate the Hugging Face cache: set HF_HUB_CACHE or HF_HOME");
  return joinPath(home, ".cache", "huggingface", "hub");
}

/** Folder of a model repo inside the cache: `models--<org>--<name>`. */
export function repoCacheFolder(cacheDir: string, repoId: string): string {
  return joinPath(cacheDir, `models--${repoId.split("/").join("--")}`);
}

/** Where to put a hand-downloaded file so that {@link findInCache} finds it. */
export function manualWeightsPath(cacheDir: string, repoId: string, filename = WEIGHTS_FILENAME): string {
  return joinPath(repoCacheFolder(cacheDir, repoId), "snapshots", "manual", filename);
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isFile; // follows symlinks: a dangling link is not a file
  } catch {
    return false;
  }
}

/**
 * Looks a file up in the hub cache: the snapshot named by `refs/<revision>` first, then any snapshot that holds
 * it (most recently modified first). Returns null when absent.
 */
export async function findInCache(
  cacheDir: string,
  repoId: string,
  filename = WEIGHTS_FILENAME,
  revision = "main",
): Promise<string | null> {
  const repo = repoCacheFolder(cacheDir, repoId);
  const snapshots = joinPath(repo, "snapshots");
  try {
    const commit = (await Deno.readTextFile(joinPath(repo, "refs", revision))).trim();
    if (/^[A-Za-z0-9._-]+$/.test(commit) && !commit.includes("..")) {
      const p = joinPath(snapshots, commit, filename);
      if (await isFile(p)) return p;
    }
  } catch {
    // no ref: fall through to scanning
  }
  const found: { path: string; mtime: number }[] = [];
  try {
    for await (const entry of Deno.readDir(snapshots)) {
      const p = joinPath(snapshots, entry.name, filename);
      try {
        const st = await Deno.stat(p);
        if (st.isFile) found.push({ path: p, mtime: st.mtime?.getTime() ?? 0 });
      } catch {
        // not in this snapshot
      }
    }
  } catch {
    return null;
  }
  found.sort((a, b) => b.mtime - a.mtime || a.path.localeCompare(b.path));
  return found[0]?.path ?? null;
}

function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}

/** A progress reporter printing `label: done / total (pct)` on stderr at most every `intervalMs`. */
export function stderrProgress(
  label: string,
  intervalMs = 1000,
): (done: number, total: number | null) => void {
  let last = 0;
  const enc = new TextEncoder();
  let tty = false;
  try {
    tty = Deno.stderr.isTerminal();
  } catch {
    tty = false;
  }
  return (done, total) => {
    const now = Date.now();
    const finished = total !== null && done >= total;
    if (!finished && now - last < intervalMs) return;
    last = now;
    const pct = total ? ` (${((100 * done) / total).toFixed(1)}%)` : "";
    const line = `${label}: ${formatBytes(done)}${total !== null ? ` / ${formatBytes(total)}` : ""}${pct}`;
    Deno.stderr.writeSync(enc.encode(tty ? `\r${line}${finished ? "\n" : ""}` : `${line}\n`));
  };
}

function isNetworkError(e: unknown): boolean {
  if (!(e instanceof Error)) return false;
  if (e instanceof TypeError) return true; // fetch rejects with TypeError on DNS/connection failures
  return /connect|refused|dns|network|unreachable|resolve/i.test(e.message);
}

/** An error's message with its cause (fetch hides the DNS/connection reason there). */
function errorText(e: unknown): string {
  if (!(e instanceof Error)) return String(e);
  const cause = e.cause instanceof Error ? e.cause.message : e.cause !== undefined ? String(e.cause) : "";
  return cause && !e.message.includes(cause) ? `${e.message}: ${cause}` : e.message;
}

function cleanEtag(v: string | null): string | null {
  if (!v) return null;
  const s = v.replace(/^W\//, "").replace(/"/g, "").trim().toLowerCase();
  return /^[0-9a-f]{64}$/.test(s) ? s : null;
}

async function removeQuiet(path: string): Promise<void> {
  await Deno.remove(path).catch(() => {});
}

/** Options for {@link downloadToCache}. */
export interface DownloadOptions {
  endpoint: string;
  cacheDir: string;
  revision?: string;
  progress?: ResolveOptions["progress"];
  idleTimeoutMs?: number;
  fetch?: typeof fetch;
}

/**
 * Downloads `<endpoint>/<repoId>/resolve/<revision>/<filename>` into the hub cache (layout described in the
 * module comment) and returns the snapshot path. Nothing is left behind on failure.
 */
export async function downloadToCache(
  repoId: string,
  filename: string,
  opts: DownloadOptions,
): Promise<string> {
  const revision = opts.revision ?? "main";
  const url = `${opts.endpoint.replace(/\/+$/, "")}/${repoId}/resolve/${revision}/${filename}`;
  const repo = repoCacheFolder(opts.cacheDir, repoId);
  const blobs = joinPath(repo, "blobs");
  const manual = manualWeightsPath(opts.cacheDir, repoId, filename);
  const hint = `Download ${url} by hand and put it at ${manual} (or pass the file path explicitly).`;
  const doFetch = opts.fetch ?? fetch;
  const ctrl = new AbortController();
  const idleMs = opts.idleTimeoutMs ?? 60_000;
  let timer = setTimeout(() => ctrl.abort(new Error(`no data for ${idleMs} ms`)), idleMs);
  const touch = () => {
    clearTimeout(timer);
    timer = setTimeout(() => ctrl.abort(new Error(`no data for ${idleMs} ms`)), idleMs);
  };
  let tmp: string | null = null;
  let file: Deno.FsFile | null = null;
  try {
    let res: Response;
    // Redirects are followed by hand: the hub answers with a redirect to a CDN whose response lacks the
    // X-Repo-Commit / X-Linked-Etag / X-Linked-Size headers we need, so they are collected on the way.
    const meta = new Headers();
    try {
      let current = url;
      for (let hop = 0;; hop++) {
        res = await doFetch(current, {
          signal: ctrl.signal,
          redirect: "manual",
          headers: { "accept-encoding": "identity" },
        });
        for (const h of ["x-repo-commit", "x-linked-etag", "x-linked-size"]) {
          const v = res.headers.get(h);
          if (v !== null && !meta.has(h)) meta.set(h, v);
        }
        const loc = res.headers.get("location");
        if (res.status < 300 || res.status >= 400 || loc === null) break;
        await res.body?.cancel();
        if (hop >= 10) throw new Error("too many redirects");
        current = new URL(loc, current).href;
      }
    } catch (e) {
      const why = errorText(e);
      throw new WeightsNotFoundError(
        `Could not download pretrained weights for ${repoId} from ${url}: ${why}. ${
          isNetworkError(e) ? "The network seems unreachable (offline?). " : ""
        }${hint}`,
        { offline: isNetworkError(e) },
      );
    }
    if (!res.ok) {
      await res.body?.cancel();
      const what = res.status === 404
        ? "not found (404): check the model tag"
        : res.status === 401 || res.status === 403
        ? `access denied (${res.status})`
        : `HTTP ${res.status} ${res.statusText}`;
      throw new WeightsNotFoundError(
        `Could not download pretrained weights for ${repoId} from ${url}: ${what}. ${hint}`,
      );
    }
    const lenHeader = res.headers.get("content-length") ?? meta.get("x-linked-size");
    const total = lenHeader !== null && /^\d+$/.test(lenHeader) ? Number(lenHeader) : null;
    const expectedSha = cleanEtag(meta.get("x-linked-etag")) ?? cleanEtag(res.headers.get("etag"));
    const commitHeader = meta.get("x-repo-commit");
    const commit = commitHeader && /^[0-9a-f]{40}$/.test(commitHeader) ? commitHeader : null;
    const report = opts.progress === false
      ? null
      : typeof opts.progress === "function"
      ? opts.progress
      : stderrProgress(`Downloading ${repoId}/${filename}`);

    await Deno.mkdir(blobs, { recursive: true });
    tmp = tempPathFor(joinPath(blobs, "download"), ".incomplete");
    file = await Deno.open(tmp, { write: true, createNew: true });
    const hash = createHash("sha256");
    let done = 0;
    report?.(0, total);
    if (!res.body) throw new Error("empty response body");
    const reader = res.body.getReader();
    try {
      while (true) {
        const { done: end, value } = await reader.read();
        if (end) break;
        touch();
        done += value.length;
        if (total !== null && done > total) {
          throw new Error(`server sent more than the announced ${total} bytes`);
        }
        hash.update(value);
        let off = 0;
        while (off < value.length) off += await file.write(value.subarray(off));
        report?.(done, total);
      }
    } catch (e) {
      await reader.cancel().catch(() => {});
      const of = total !== null ? ` of ${total}` : "";
      throw new Error(`connection lost after ${done}${of} bytes (${errorText(e)})`);
    }
    file.close();
    file = null;
    if (total !== null && done !== total) {
      throw new Error(`download truncated: got ${done} of ${total} bytes`);
    }
    const sha = hash.digest("hex");
    if (expectedSha && expectedSha !== sha) {
      throw new Error(`checksum mismatch: sha256 ${sha}, server announced ${expectedSha}`);
    }
    await readSafetensorsHeader(tmp); // full structural check against the file size
    const blob = joinPath(blobs, sha);
    await Deno.rename(tmp, blob);
    tmp = null;
    const snapName = commit ?? sha.slice(0, 40);
    const snapDir = joinPath(repo, "snapshots", snapName);
    await Deno.mkdir(snapDir, { recursive: true });
    const dest = joinPath(snapDir, filename);
    const link = tempPathFor(dest);
    try {
      await Deno.symlink(`../../blobs/${sha}`, link);
      await Deno.rename(link, dest);
    } catch {
      await removeQuiet(link);
      await Deno.copyFile(blob, link); // no symlinks allowed here: keep a copy (as huggingface_hub does)
      await Deno.rename(link, dest);
    }
    if (commit) {
      await Deno.mkdir(joinPath(repo, "refs"), { recursive: true });
      const ref = joinPath(repo, "refs", revision);
      const refTmp = tempPathFor(ref);
      await Deno.writeTextFile(refTmp, commit);
      await Deno.rename(refTmp, ref);
    }
    return dest;
  } catch (e) {
    if (e instanceof WeightsNotFoundError) throw e;
    const why = e instanceof SafetensorsError
      ? `the downloaded file is not valid safetensors (${e.message})`
      : errorText(e);
    throw new WeightsNotFoundError(
      `Could not download pretrained weights for ${repoId} from ${url}: ${why}. Nothing was saved. ${hint}`,
    );
  } finally {
    clearTimeout(timer);
    if (file) {
      try {
        file.close();
      } catch {
        // already closed
      }
    }
    if (tmp) await removeQuiet(tmp);
  }
}

/**
 * Resolves the safetensors file of timm weights for `tag` (e.g. `efficientnet_b3.ra2_in1k`): explicit path,
 * then the HF cache, then a download (unless offline). Throws {@link WeightsNotFoundError} with the exact path
 * where a hand-downloaded file would be found.
 */
export async function resolveWeights(tag: string, opts: ResolveOptions = {}): Promise<ResolvedWeights> {
  const repoId = timmRepoId(tag);
  if (opts.path) {
    if (!(await isFile(opts.path))) {
      throw new WeightsNotFoundError(`weights file ${opts.path} (given for ${tag}) does not exist`);
    }
    return { path: opts.path, source: "path", repoId };
  }
  const env = envOf(opts);
  const cacheDir = opts.cacheDir ?? hfCacheDir(env);
  const cached = await findInCache(cacheDir, repoId);
  if (cached) return { path: cached, source: "cache", repoId };
  const endpoint = opts.endpoint ?? env.HF_ENDPOINT ?? DEFAULT_ENDPOINT;
  const url = `${endpoint.replace(/\/+$/, "")}/${repoId}/resolve/main/${WEIGHTS_FILENAME}`;
  if (opts.offline || isTruthy(env.HF_HUB_OFFLINE)) {
    throw new WeightsNotFoundError(
      `Pretrained weights for ${tag} are not in the Hugging Face cache (${cacheDir}) and HF_HUB_OFFLINE is set. ` +
        `Download ${url} by hand and put it at ${
          manualWeightsPath(cacheDir, repoId)
        } (or pass the file path).`,
      { offline: true },
    );
  }
  const path = await downloadToCache(repoId, WEIGHTS_FILENAME, {
    endpoint,
    cacheDir,
    progress: opts.progress,
    idleTimeoutMs: opts.idleTimeoutMs,
    fetch: opts.fetch,
  });
  return { path, source: "download", repoId };
}
