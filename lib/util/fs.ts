/**
 * Atomic file writes: the one helper every module that writes a file readers may open mid-write uses (run
 * folder, checkpoints, safetensors, figures, the pixel cache).
 *
 * A write goes to a temporary file beside the target (`<name>.<pid>-<random>.tmp`, same folder so the rename is
 * atomic), optionally fsynced, then renamed over the target; on failure the temporary file is removed. A process
 * killed mid-write leaves the previous file intact plus at most one temporary file, which
 * {@link removeStaleTemps} recognises by its name and removes on the next start. Hand-written because it is a
 * dozen lines over `Deno.open`/`Deno.rename` and the naming must match the clean-up.
 */
import { rmSync } from "node:fs";
import { join } from "node:path";

/** Path of a fresh temporary file next to `path` (same folder, so the rename is atomic). */
export function tempPathFor(path: string, suffix = ".tmp"): string {
  const rand = crypto.getRandomValues(new Uint32Array(2));
  return `${path}.${Deno.pid}-${rand[0].toString(16)}${rand[1].toString(16)}${suffix}`;
}

/** Options for {@link writeAtomic}. */
export type AtomicOptions = {
  /** fsync the data before the rename (durable across a power loss, not only a kill). Default false. */
  fsync?: boolean;
};

function bytesOf(data: string | Uint8Array): Uint8Array {
  return typeof data === "string" ? new TextEncoder().encode(data) : data;
}

/** Writes `data` to `path` atomically (temporary file, then rename). */
export async function writeAtomic(
  path: string,
  data: string | Uint8Array,
  opts: AtomicOptions = {},
): Promise<void> {
  const tmp = tempPathFor(path);
  try {
    const f = await Deno.open(tmp, { write: true, createNew: true });
    try {
      const bytes = bytesOf(data);
      let off = 0;
      while (off < bytes.length) off += await f.write(bytes.subarray(off));
      if (opts.fsync) await f.sync();
    } finally {
      f.close();
    }
    await Deno.rename(tmp, path);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
}

/** Synchronous {@link writeAtomic}. */
export function writeAtomicSync(path: string, data: string | Uint8Array, opts: AtomicOptions = {}): void {
  const tmp = tempPathFor(path);
  try {
    const f = Deno.openSync(tmp, { write: true, createNew: true });
    try {
      const bytes = bytesOf(data);
      let off = 0;
      while (off < bytes.length) off += f.writeSync(bytes.subarray(off));
      if (opts.fsync) f.syncSync();
    } finally {
      f.close();
    }
    Deno.renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}

/** Whether `name` is a temporary file {@link tempPathFor} made (with the default `.tmp` suffix). */
export function isTempName(name: string): boolean {
  return /\.\d+-[0-9a-f]+\.tmp$/.test(name);
}

/**
 * Removes the temporary files that interrupted atomic writes left in `dir` (only names {@link tempPathFor}
 * makes); returns their paths. For folders with one writer at a time (a run folder, a checkpoint).
 */
export function removeTempsIn(dir: string): string[] {
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync(dir)];
  } catch {
    return []; // no folder: nothing to clean
  }
  const removed: string[] = [];
  for (const e of entries) {
    if (e.isFile && isTempName(e.name)) {
      rmSync(join(dir, e.name), { force: true });
      removed.push(join(dir, e.name));
    }
  }
  return removed;
}
