/**
 * FER2013 data pipeline: ImageFolder scanning (torchvision semantics), decoding with sharp, a pixel cache,
 * a stratified train/validation split and a shuffled mini-batch iterator.
 */
import * as tf from "@tensorflow/tfjs-core";
import sharp from "sharp";
import { createHash } from "node:crypto";
import {
  type Dirent,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  realpathSync,
  statSync,
} from "node:fs";
import { basename, dirname, extname, isAbsolute, join, relative, resolve, sep } from "node:path";
import { mixSeed, mulberry32, shuffleInPlace } from "../util/rng.ts";
import { writeAtomicSync } from "../util/fs.ts";

export { CLASSES } from "./classes.ts";
export { PROJECT_ROOT } from "../util/project.ts";
import { PROJECT_ROOT } from "../util/project.ts";

/** Image extensions torchvision's ImageFolder accepts (compared case-insensitively). */
export const IMG_EXTENSIONS = [".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp"];

/** One split held in memory: NHWC uint8 pixels with labels and source paths. */
export type Split = {
  name: string;
  classes: string[];
  paths: string[];
  labels: Int32Array;
  images: Uint8Array;
  height: number;
  width: number;
  channels: number;
};

/** A file that was left out, and why. */
export type Skipped = { path: string; reason: string };

/** A loaded dataset. `sample` is true when the committed demo sample was used. */
export type Dataset = {
  root: string;
  classes: string[];
  train: Split;
  test: Split;
  skipped: Skipped[];
  /** Symbolic links that were not followed (loops, links back into the dataset), with the reason. */
  links: Skipped[];
  sample: boolean;
  cache: { train: CacheStatus; test: CacheStatus };
};

/** Whether a split came from the cache ("unwritable": decoded, and the cache could not be written). */
export type CacheStatus = "hit" | "miss" | "disabled" | "unwritable";

/** Options for {@link loadDataset}. */
export type LoadOptions = {
  /** Dataset root (Kaggle layout). Default: $FER2013_DIR, else data/fer2013, else the committed sample. */
  root?: string;
  /** Square decode size in pixels (default 48). */
  size?: number;
  /** 1 (grayscale, default) or 3 (RGB). */
  channels?: 1 | 3;
  /** Cache folder; `false` disables the cache. Default: $FER_CACHE_DIR or .cache/ under the project. */
  cacheDir?: string | false;
  /** Concurrent decodes (default 32). */
  concurrency?: number;
  /** Print a line per skipped file and a summary, and progress while decoding (default true). */
  verbose?: boolean;
  /** Memory the decoded pixels may use, in bytes (default: the memory available now). */
  memoryBytes?: number;
};

/** Error for a dataset that cannot be used as is; the message names the path and the problem. */
export class DatasetError extends Error {
  override name = "DatasetError";
}

/** Resolves which dataset root to use and whether it is the committed demo sample. */
export function resolveDataRoot(root?: string): { root: string; sample: boolean } {
  const samplePath = join(PROJECT_ROOT, "data", "sample");
  if (root) return { root: resolve(root), sample: resolve(root) === samplePath };
  const env = Deno.env.get("FER2013_DIR");
  if (env) return { root: resolve(env), sample: false };
  const local = join(PROJECT_ROOT, "data", "fer2013");
  if (existsSync(local)) return { root: local, sample: false };
  return { root: samplePath, sample: true };
}

/**
 * A scanned (not yet decoded) split: sorted class names and sorted files with labels; `skipped` lists
 * non-image files, `links` the symbolic links that were not followed.
 */
export type ScannedSplit = {
  classes: string[];
  files: string[];
  labels: number[];
  skipped: Skipped[];
  links: Skipped[];
};

function isDir(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

/** Python-style code-point string order, as torchvision's `sorted()`. */
function byCodePoint(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Reads a folder's entries; an unreadable folder is a DatasetError naming it and the remedy. */
function readFolder(dir: string, what: string): Dirent[] {
  try {
    return readdirSync(dir, { withFileTypes: true });
  } catch (e) {
    const err = e as Error & { code?: string };
    const why = err.code === "EACCES" || err.code === "EPERM"
      ? `permission denied (${err.code}); make it readable (chmod -R a+rX '${dir}') or move it out of the dataset`
      : `${err.code ?? err.name}: ${err.message}`;
    throw new DatasetError(`cannot read ${what} ${dir}: ${why}`);
  }
}

/** State of one split's walk: files found, links skipped, real folders already walked, the split's real path. */
type WalkState = { out: string[]; links: Skipped[]; visited: Set<string>; splitReal: string };

const inside = (p: string, dir: string) => p === dir || p.startsWith(dir.endsWith(sep) ? dir : dir + sep);

/**
 * os.walk with followlinks, as ImageFolder uses it, but loop-safe: real paths are tracked, and a symbolic link
 * is skipped (and reported) when it points to a folder on the current path (a loop), to a folder already
 * walked, or to a folder or file inside the split itself (its images would be counted twice).
 * `stack` holds the real paths of the folders being walked.
 */
function walk(dir: string, real: string, stack: string[], w: WalkState, what = "folder"): void {
  w.visited.add(real);
  const entries = readFolder(dir, what).sort((a, b) => byCodePoint(a.name, b.name));
  const files: string[] = [];
  const dirs: [string, string][] = [];
  for (const e of entries) {
    const p = join(dir, e.name);
    // Dirent types avoid a stat per file; only symbolic links need one (ImageFolder follows them).
    if (e.isDirectory()) {
      dirs.push([e.name, join(real, e.name)]);
      continue;
    }
    if (!e.isSymbolicLink()) {
      files.push(e.name);
      continue;
    }
    let target: string;
    try {
      target = realpathSync(p);
    } catch (err) {
      const code = (err as { code?: string }).code;
      w.links.push({
        path: p,
        reason: code === "ELOOP" ? "symbolic link loop (ELOOP)" : "broken symbolic link",
      });
      continue;
    }
    const loop = [...stack, real].find((a) => inside(a, target));
    if (isDir(target)) {
      if (loop) {
        w.links.push({ path: p, reason: `symbolic link loop: points to ${target}, which contains it` });
      } else if (w.visited.has(target)) {
        w.links.push({ path: p, reason: `points to ${target}, a folder already scanned` });
      } else if (inside(target, w.splitReal)) {
        w.links.push({
          path: p,
          reason: `points to ${target} inside the dataset split; its images would be counted twice`,
        });
      } else dirs.push([e.name, target]);
    } else if (inside(target, w.splitReal)) {
      w.links.push({ path: p, reason: `points to ${target}, a file already in the dataset split` });
    } else files.push(e.name);
  }
  // os.walk order as ImageFolder uses it: this folder's files, then subfolders in sorted order.
  for (const f of files) w.out.push(join(dir, f));
  for (const [d, r] of dirs) {
    if (w.visited.has(r)) {
      w.links.push({ path: join(dir, d), reason: `${r} was already scanned through a symbolic link` });
      continue;
    }
    walk(join(dir, d), r, [...stack, real], w);
  }
}

/**
 * Scans `root/<split>/<class>/...` with ImageFolder semantics: classes are the sorted subfolder names, labels
 * their indices, files in sorted order (recursively). Files without an image extension are reported as skipped.
 */
export function scanSplit(root: string, split: string): ScannedSplit {
  const dir = join(root, split);
  if (!isDir(root)) throw new DatasetError(`dataset folder not found: ${root}`);
  if (!isDir(dir)) {
    throw new DatasetError(`missing '${split}' folder in ${root} (expected ${dir}/<class>/*.jpg)`);
  }
  const classes = readFolder(dir, "split folder").filter((e) => isDir(join(dir, e.name)))
    .map((e) => e.name).sort(byCodePoint);
  if (classes.length === 0) throw new DatasetError(`no class folders in ${dir}`);
  const files: string[] = [];
  const labels: number[] = [];
  const skipped: Skipped[] = [];
  const links: Skipped[] = [];
  const splitReal = realpathSync(dir);
  const visited = new Set<string>(); // per split: a folder reached under two labels is a duplicate too
  classes.forEach((cls, label) => {
    const all: string[] = [];
    const classDir = join(dir, cls);
    walk(classDir, realpathSync(classDir), [], { out: all, links, visited, splitReal }, "class folder");
    let n = 0;
    for (const f of all) {
      if (IMG_EXTENSIONS.includes(extname(f).toLowerCase())) {
        files.push(f);
        labels.push(label);
        n++;
      } else skipped.push({ path: f, reason: `not an image file (extension '${extname(f) || "none"}')` });
    }
    if (n === 0) throw new DatasetError(`empty class folder: ${join(dir, cls)} has no image files`);
  });
  return { classes, files, labels, skipped, links };
}

// Tiny images: one libvips thread per image and many images in flight is faster than the reverse, and the
// operation cache only costs memory here.
sharp.concurrency(1);
sharp.cache(false);

/** Decodes one image to uint8 pixels of exactly size×size×channels, or throws with the reason. */
export async function decodeImage(path: string, size: number, channels: 1 | 3): Promise<Uint8Array> {
  const bytes = await Deno.readFile(path); // reading here and decoding from memory is ~6% faster than sharp(path)
  const bad = damagedImage(bytes);
  if (bad) throw new Error(bad);
  // Fast path (FER2013: 48×48 gray JPEGs): a plain decode, no colour-space operations. sharp decodes gray JPEGs
  // to three equal channels, so channel 0 is the gray value exactly.
  const { data, info } = await sharp(bytes, { failOn: "error" }).raw().toBuffer({ resolveWithObject: true });
  const px = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (info.width === size && info.height === size) {
    if (info.channels === channels) return px;
    if (channels === 1 && info.channels === 3 && isGray(px)) {
      const out = new Uint8Array(size * size);
      for (let i = 0; i < out.length; i++) out[i] = px[3 * i];
      return out;
    }
  }
  // General path: resize (bilinear, like cv2.INTER_LINEAR in the original Albumentations pipeline) and convert.
  let img = sharp(bytes, { failOn: "error" });
  if (info.width !== size || info.height !== size) {
    img = img.resize(size, size, { fit: "fill", kernel: "linear" });
  }
  img = channels === 1 ? img.greyscale().extractChannel(0) : img.removeAlpha().toColourspace("srgb");
  const r = await img.raw().toBuffer({ resolveWithObject: true });
  if (r.info.width !== size || r.info.height !== size || r.info.channels !== channels) {
    throw new Error(
      `decoded to ${r.info.width}x${r.info.height}x${r.info.channels}, expected ${size}x${size}x${channels}`,
    );
  }
  return new Uint8Array(r.data.buffer, r.data.byteOffset, r.data.byteLength);
}

function isGray(rgb: Uint8Array): boolean {
  for (let i = 0; i < rgb.length; i += 3) if (rgb[i] !== rgb[i + 1] || rgb[i] !== rgb[i + 2]) return false;
  return true;
}

/**
 * Why an image file is damaged, when that can be told from its bytes: empty, or a JPEG cut short (no
 * end-of-image marker after its last scan: a truncated or zero-padded file, which libjpeg may otherwise decode
 * silently with grey rows). Entropy-coded JPEG data escapes 0xFF bytes, so the markers cannot occur inside it.
 */
export function damagedImage(bytes: Uint8Array): string | null {
  if (bytes.length === 0) return "empty file (0 bytes)";
  if (bytes[0] !== 0xff || bytes[1] !== 0xd8) return null;
  for (let i = bytes.length - 2; i >= 0; i--) {
    if (bytes[i] !== 0xff) continue;
    if (bytes[i + 1] === 0xd9) return null; // EOI after the last SOS
    if (bytes[i + 1] === 0xda) break; // SOS reached first
  }
  return `truncated or corrupt JPEG: no end-of-image marker after the image data (${bytes.length} bytes)`;
}

/** A decoder message made readable: libvips' JPEG messages say what they mean; repeated lines dropped. */
function decodeReason(message: string): string {
  const lines = [...new Set(message.split("\n").map((l) => l.trim()).filter(Boolean))];
  const text = lines.join("; ");
  if (/premature end of JPEG|missing SOS marker/i.test(text)) {
    return `truncated or corrupt JPEG (${lines[0]})`;
  }
  if (/unsupported image format/i.test(text)) return "not a supported image format (content unrecognised)";
  return text || "corrupt image (the decoder gave no reason)";
}

async function decodeAll(
  files: string[],
  size: number,
  channels: 1 | 3,
  concurrency: number,
  onProgress?: (done: number) => void,
): Promise<{ pixels: (Uint8Array | null)[]; skipped: Skipped[] }> {
  const pixels: (Uint8Array | null)[] = new Array(files.length).fill(null);
  const failed: number[] = [];
  let next = 0;
  let done = 0;
  const worker = async () => {
    while (next < files.length) {
      const i = next++;
      try {
        pixels[i] = await decodeImage(files[i], size, channels);
      } catch {
        failed.push(i);
      }
      onProgress?.(++done);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, files.length) }, worker));
  // libvips keeps one error buffer for all threads, so a failure's message under concurrency can be empty
  // ("Unknown error") or another file's. Failures are decoded again one at a time for their true reason.
  const skipped: Skipped[] = [];
  for (const i of failed.sort((a, b) => a - b)) {
    try {
      pixels[i] = await decodeImage(files[i], size, channels);
    } catch (e) {
      skipped.push({ path: files[i], reason: `cannot decode: ${decodeReason((e as Error).message)}` });
    }
  }
  return { pixels, skipped };
}

/** Bytes needed to decode `n` images at size×size×channels: the per-image buffers, their copy and decoders. */
export function decodeBytes(n: number, size: number, channels: number, concurrency = 32): number {
  return size * size * (2 * n * channels + 8 * Math.min(n, concurrency));
}

/** Memory available to this process now (bytes): the system's available memory. */
export function availableMemory(): number {
  try {
    const m = Deno.systemMemoryInfo();
    return m.available || m.free || m.total;
  } catch {
    return 4 * 2 ** 30;
  }
}

/** A decode size that cannot work here (too large for memory); `maxSize` is the largest that fits. */
export class DecodeSizeError extends DatasetError {
  override name = "DecodeSizeError";
  constructor(message: string, readonly maxSize: number) {
    super(message);
  }
}

const fmtBytes = (b: number) =>
  b >= 2 ** 40
    ? `${(b / 2 ** 40).toFixed(1)} TiB`
    : b >= 2 ** 30
    ? `${(b / 2 ** 30).toFixed(1)} GiB`
    : `${(b / 2 ** 20).toFixed(1)} MiB`;

/**
 * Refuses, before anything is allocated, a decode of `n` images at `size` that would need more than 80 % of
 * `memory` bytes; the error gives the largest size that fits.
 */
export function checkDecodeMemory(
  n: number,
  size: number,
  channels: number,
  memory = availableMemory(),
  concurrency = 32,
): void {
  if (!Number.isSafeInteger(size) || size < 1) {
    throw new DecodeSizeError(`size must be an integer >= 1, got ${size}`, 0);
  }
  const budget = 0.8 * memory;
  const need = decodeBytes(n, size, channels, concurrency);
  if (need <= budget) return;
  const maxSize = Math.floor(Math.sqrt(budget / decodeBytes(n, 1, channels, concurrency)));
  throw new DecodeSizeError(
    `size ${size} is too large: ${n.toLocaleString("en-US")} images at ${size}×${size}×${channels} need ` +
      `${fmtBytes(need)} of memory, ${
        fmtBytes(memory)
      } is available (the largest size that fits is ${maxSize})`,
    maxSize,
  );
}

/** Prints decode progress to stderr: a line now, then every 10 s (a line rewritten in place on a terminal). */
function decodeProgress(split: string, total: number): (done: number) => void {
  const t0 = performance.now();
  let last = t0;
  const tty = Deno.stderr.isTerminal();
  const enc = new TextEncoder();
  console.error(
    `decoding ${
      total.toLocaleString("en-US")
    } ${split} images (not in the pixel cache yet; later loads read the ` +
      `cache)...`,
  );
  return (done) => {
    const now = performance.now();
    if (done < total && now - last < (tty ? 500 : 10_000)) return;
    last = now;
    const rate = done / Math.max(1e-3, (now - t0) / 1000);
    const line =
      `decoding ${split}: ${done.toLocaleString("en-US")}/${total.toLocaleString("en-US")} images ` +
      `(${Math.floor((100 * done) / total)}%, ${rate.toFixed(0)} img/s)`;
    if (tty) Deno.stderr.writeSync(enc.encode(`\r${line}\x1b[K${done === total ? "\n" : ""}`));
    else console.error(line);
  };
}

/** A fingerprint of the file list with sizes and modification times; changes when any of them changes. */
export function fingerprint(root: string, files: string[], size: number, channels: number): string {
  const h = createHash("sha256");
  h.update(`v1|${size}|${channels}|`);
  for (const f of files) {
    const s = statSync(f);
    h.update(`${relative(root, f)}|${s.size}|${s.mtimeMs}\n`);
  }
  return h.digest("hex");
}

/**
 * Identity of the data a run sees: SHA-256 over each split's name, classes, and per image its
 * `class/file` name, label and decoded pixels. Independent of where the dataset lives, so a moved dataset
 * still matches; any added, removed, relabelled or changed image changes it.
 */
export function dataIdentity(splits: Split[]): string {
  const h = createHash("sha256");
  h.update("v1\n");
  for (const s of splits) {
    h.update(`${s.name}|${s.classes.join(",")}|${s.labels.length}|${s.height}x${s.width}x${s.channels}\n`);
    for (let i = 0; i < s.labels.length; i++) {
      const parts = s.paths[i].split(/[\\/]/);
      h.update(`${parts.slice(-2).join("/")}|${s.labels[i]}\n`);
    }
    h.update(s.images);
  }
  return h.digest("hex");
}

const MAGIC = "FERCACHE1\n";

type CacheHeader = {
  fingerprint: string;
  n: number;
  height: number;
  width: number;
  channels: number;
  classes: string[];
  paths: string[];
  labels: number[];
  skipped: Skipped[];
};

function cachePath(cacheDir: string, root: string, split: string, size: number, channels: number): string {
  const key = createHash("sha256").update(resolve(root)).digest("hex").slice(0, 12);
  return join(cacheDir, `${basename(root)}-${key}-${split}-${size}x${size}x${channels}.bin`);
}

function readCache(path: string, fp: string): { header: CacheHeader; pixels: Uint8Array } | null {
  if (!existsSync(path)) return null;
  try {
    const buf = readFileSync(path);
    const magic = new TextDecoder().decode(buf.subarray(0, MAGIC.length));
    if (magic !== MAGIC) return null;
    const hlen = buf.readUInt32LE(MAGIC.length);
    const start = MAGIC.length + 4;
    const header = JSON.parse(new TextDecoder().decode(buf.subarray(start, start + hlen))) as CacheHeader;
    if (header.fingerprint !== fp) return null;
    const pixels = new Uint8Array(buf.buffer, buf.byteOffset + start + hlen, buf.byteLength - start - hlen);
    if (pixels.length !== header.n * header.height * header.width * header.channels) return null;
    return { header, pixels };
  } catch {
    return null; // an unreadable cache is rebuilt, never trusted
  }
}

function writeCache(path: string, header: CacheHeader, pixels: Uint8Array): void {
  mkdirSync(dirname(path), { recursive: true });
  const hbytes = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(MAGIC.length + 4 + hbytes.length + pixels.length);
  out.set(new TextEncoder().encode(MAGIC), 0);
  new DataView(out.buffer).setUint32(MAGIC.length, hbytes.length, true);
  out.set(hbytes, MAGIC.length + 4);
  out.set(pixels, MAGIC.length + 4 + hbytes.length);
  writeAtomicSync(path, out);
}

const cacheWarned = new Set<string>();

/**
 * The pixel cache is an optimisation: a write that fails (EACCES, ENOSPC, EROFS, ...) warns once per process
 * and cache folder, naming the file and FER_CACHE_DIR, and the load goes on without it.
 */
function tryWriteCache(path: string, header: CacheHeader, pixels: Uint8Array): boolean {
  try {
    writeCache(path, header, pixels);
    return true;
  } catch (e) {
    if (!cacheWarned.has(dirname(path))) {
      const err = e as Error & { code?: string };
      console.warn(
        `warning: cannot write the pixel cache ${path} (${
          err.code ?? err.name
        }: ${err.message}); continuing ` +
          `without it (images are decoded again on each load). Set FER_CACHE_DIR to a writable folder with ` +
          `free space to cache them.`,
      );
      cacheWarned.add(dirname(path));
    }
    return false;
  }
}

/** Default cache folder: $FER_CACHE_DIR or `.cache/` in the project. */
export function defaultCacheDir(): string {
  return Deno.env.get("FER_CACHE_DIR") ?? join(PROJECT_ROOT, ".cache");
}

/** Loads (decoding or from cache) one split of `root`. */
export async function loadSplit(
  root: string,
  split: string,
  opts: {
    size?: number;
    channels?: 1 | 3;
    cacheDir?: string | false;
    concurrency?: number;
    memoryBytes?: number;
    progress?: boolean;
  } = {},
): Promise<{ split: Split; skipped: Skipped[]; links: Skipped[]; cache: CacheStatus }> {
  const size = opts.size ?? 48;
  const channels = opts.channels ?? 1;
  const concurrency = opts.concurrency ?? 32;
  const scanned = scanSplit(root, split);
  checkDecodeMemory(scanned.files.length, size, channels, opts.memoryBytes, concurrency);
  const cacheDir = opts.cacheDir === undefined ? defaultCacheDir() : opts.cacheDir;
  let fp = "";
  let cpath = "";
  if (cacheDir !== false) {
    fp = fingerprint(root, scanned.files, size, channels);
    cpath = cachePath(cacheDir, root, split, size, channels);
    const hit = readCache(cpath, fp);
    if (hit) {
      const h = hit.header;
      return {
        split: {
          name: split,
          classes: h.classes,
          paths: h.paths.map((p) => join(root, p)),
          labels: Int32Array.from(h.labels),
          images: hit.pixels,
          height: h.height,
          width: h.width,
          channels: h.channels,
        },
        skipped: h.skipped.map((s) => ({ ...s, path: isAbsolute(s.path) ? s.path : join(root, s.path) })),
        links: scanned.links,
        cache: "hit",
      };
    }
  }
  // a progress line when the decode takes more than a moment (a first load of FER2013 takes ~50 s)
  const progress = opts.progress && scanned.files.length >= 2000
    ? decodeProgress(split, scanned.files.length)
    : undefined;
  const { pixels, skipped: bad } = await decodeAll(scanned.files, size, channels, concurrency, progress);
  const keep: number[] = [];
  pixels.forEach((p, i) => p && keep.push(i));
  const per = size * size * channels;
  const images = new Uint8Array(keep.length * per);
  keep.forEach((i, k) => images.set(pixels[i]!, k * per));
  const paths = keep.map((i) => scanned.files[i]);
  const labels = Int32Array.from(keep.map((i) => scanned.labels[i]));
  const skipped = [...scanned.skipped, ...bad].sort((a, b) => byCodePoint(a.path, b.path));
  for (let c = 0; c < scanned.classes.length; c++) {
    if (!labels.includes(c)) {
      throw new DatasetError(`class folder ${join(root, split, scanned.classes[c])} has no decodable images`);
    }
  }
  const result: Split = {
    name: split,
    classes: scanned.classes,
    paths,
    labels,
    images,
    height: size,
    width: size,
    channels,
  };
  let cache: CacheStatus = cacheDir === false ? "disabled" : "miss";
  if (cacheDir !== false) {
    const ok = tryWriteCache(cpath, {
      fingerprint: fp,
      n: keep.length,
      height: size,
      width: size,
      channels,
      classes: scanned.classes,
      paths: paths.map((p) => relative(root, p)),
      labels: Array.from(labels),
      skipped: skipped.map((s) => ({ ...s, path: relative(root, s.path) })),
    }, images);
    if (!ok) cache = "unwritable";
  }
  return { split: result, skipped, links: scanned.links, cache };
}

/**
 * Loads the train and test splits of a Kaggle-layout FER2013 folder. Train and test must have the same class
 * folders. Skipped files are listed (and printed unless `verbose: false`).
 */
export async function loadDataset(opts: LoadOptions = {}): Promise<Dataset> {
  const { root, sample } = resolveDataRoot(opts.root);
  if (!isDir(root)) throw new DatasetError(`dataset folder not found: ${root}`);
  const verbose = opts.verbose ?? true;
  if (sample && verbose && !opts.root) {
    console.log(
      `NOTE: FER2013 not found (set FER2013_DIR or unzip it to data/fer2013); using the small committed sample ` +
        `in ${relative(Deno.cwd(), root) || root}. This is a demo, not a real result.`,
    );
  }
  const tr = scanSplit(root, "train");
  const te = scanSplit(root, "test");
  if (tr.classes.join("|") !== te.classes.join("|")) {
    throw new DatasetError(
      `class folders differ between ${join(root, "train")} [${tr.classes.join(", ")}] and ` +
        `${join(root, "test")} [${te.classes.join(", ")}]`,
    );
  }
  // both splits stay in memory together: the bound is checked on their sum before either is decoded
  checkDecodeMemory(
    tr.files.length + te.files.length,
    opts.size ?? 48,
    opts.channels ?? 1,
    opts.memoryBytes,
    opts.concurrency,
  );
  const o = {
    size: opts.size,
    channels: opts.channels,
    cacheDir: opts.cacheDir,
    concurrency: opts.concurrency,
    memoryBytes: opts.memoryBytes,
    progress: verbose,
  };
  const train = await loadSplit(root, "train", o);
  const test = await loadSplit(root, "test", o);
  const skipped = [...train.skipped, ...test.skipped];
  const links = [...train.links, ...test.links];
  if (verbose && (skipped.length || links.length)) {
    for (const s of links) console.warn(`skipped link ${s.path}: ${s.reason}`);
    for (const s of skipped) console.warn(`skipped ${s.path}: ${s.reason}`);
    console.warn(
      `${skipped.length} file(s) skipped` +
        (links.length ? `, ${links.length} symbolic link(s) not followed` : ""),
    );
  }
  return {
    root,
    classes: tr.classes,
    train: train.split,
    test: test.split,
    skipped,
    links,
    sample,
    cache: { train: train.cache, test: test.cache },
  };
}

/** The file {@link recordSkipped} writes into a run folder. */
export const SKIPPED_FILE = "skipped.json";

/**
 * Records what a load left out in `dir` (a run folder) as `skipped.json`:
 * `{ root, files: [{path, reason}], links: [{path, reason}] }`, paths relative to the data root. `data` is a
 * {@link Dataset} or any object with some of its fields (data given directly to training has none: empty lists).
 */
export function recordSkipped(dir: string, dataset: object): string {
  const data = dataset as Partial<Pick<Dataset, "root" | "skipped" | "links">>;
  const rel = (s: Skipped) => ({ path: data.root ? relative(data.root, s.path) : s.path, reason: s.reason });
  const out = join(dir, SKIPPED_FILE);
  const body = {
    root: data.root ?? null,
    files: (data.skipped ?? []).map(rel),
    links: (data.links ?? []).map(rel),
  };
  writeAtomicSync(out, JSON.stringify(body, null, 2) + "\n");
  return out;
}

/** Per-class counts of a split, keyed by class name. */
export function classCounts(split: Split): Record<string, number> {
  const out: Record<string, number> = Object.fromEntries(split.classes.map((c) => [c, 0]));
  for (const l of split.labels) out[split.classes[l]]++;
  return out;
}

/** A new split holding the given rows of `split` (pixels copied), in the given order. */
export function subset(split: Split, indices: ArrayLike<number>, name = split.name): Split {
  const per = split.height * split.width * split.channels;
  const images = new Uint8Array(indices.length * per);
  const labels = new Int32Array(indices.length);
  const paths: string[] = [];
  for (let k = 0; k < indices.length; k++) {
    const i = indices[k];
    images.set(split.images.subarray(i * per, (i + 1) * per), k * per);
    labels[k] = split.labels[i];
    paths.push(split.paths[i]);
  }
  return { ...split, name, images, labels, paths };
}

/** A seeded random subset of at most `n` rows (kept in their original order), or the split itself. */
export function cap(split: Split, n: number | null, seed: number): Split {
  if (n === null || split.labels.length <= n) return split;
  const rand = mulberry32(mixSeed(seed, 0x636170));
  const idx = shuffleInPlace(Array.from({ length: split.labels.length }, (_, i) => i), rand);
  return subset(split, idx.slice(0, n).sort((a, b) => a - b));
}

/**
 * Stratified, seeded split of the training folder into train and validation: each class keeps
 * round(n_c × valFraction) images for validation (at least one when the class has two or more).
 */
export function trainValSplit(
  train: Split,
  opts: { valFraction?: number; seed?: number } = {},
): { train: Split; val: Split } {
  const frac = opts.valFraction ?? 0.1;
  if (!(frac > 0 && frac < 1)) throw new RangeError(`valFraction must be in (0, 1), got ${frac}`);
  const rand = mulberry32(opts.seed ?? 0);
  const tr: number[] = [];
  const va: number[] = [];
  for (let c = 0; c < train.classes.length; c++) {
    const idx: number[] = [];
    train.labels.forEach((l, i) => l === c && idx.push(i));
    shuffleInPlace(idx, rand);
    let nVal = Math.round(idx.length * frac);
    if (nVal === 0 && idx.length >= 2) nVal = 1;
    va.push(...idx.slice(0, nVal));
    tr.push(...idx.slice(nVal));
  }
  tr.sort((a, b) => a - b);
  va.sort((a, b) => a - b);
  return { train: subset(train, tr, "train"), val: subset(train, va, "val") };
}

/** A mini-batch: x is float32 pixels 0..255 [b,h,w,c], y int32 labels; the caller disposes both. */
export type Batch = { x: tf.Tensor4D; y: tf.Tensor1D; indices: Int32Array };

/** The row order `batches` uses for a given seed (identity when not shuffling). */
export function batchOrder(n: number, shuffle: boolean, seed = 0): Int32Array {
  const order = Int32Array.from({ length: n }, (_, i) => i);
  return shuffle ? shuffleInPlace(order, mulberry32(seed)) : order;
}

/**
 * Yields shuffled (seeded) mini-batches as tensors. Creates exactly two tensors per batch. `fromBatch` skips the
 * first batches of that order (a training epoch resumed in its middle).
 */
export function* batches(
  split: Split,
  opts: { batchSize: number; shuffle?: boolean; seed?: number; dropLast?: boolean; fromBatch?: number },
): Generator<Batch> {
  const n = split.labels.length;
  const order = batchOrder(n, opts.shuffle ?? false, opts.seed ?? 0);
  const per = split.height * split.width * split.channels;
  for (let start = (opts.fromBatch ?? 0) * opts.batchSize; start < n; start += opts.batchSize) {
    const end = Math.min(n, start + opts.batchSize);
    if (opts.dropLast && end - start < opts.batchSize) break;
    const b = end - start;
    const xs = new Float32Array(b * per);
    const ys = new Int32Array(b);
    const indices = order.slice(start, end);
    for (let k = 0; k < b; k++) {
      const i = indices[k];
      const src = split.images.subarray(i * per, (i + 1) * per);
      for (let j = 0; j < per; j++) xs[k * per + j] = src[j];
      ys[k] = split.labels[i];
    }
    yield {
      x: tf.tensor4d(xs, [b, split.height, split.width, split.channels]),
      y: tf.tensor1d(ys, "int32"),
      indices,
    };
  }
}
