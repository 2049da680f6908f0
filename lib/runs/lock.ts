/**
 * One trainer per run: `lockRun` creates `<run folder>.lock` beside the run folder (exclusively, so two
 * processes cannot both take it) before a run starts or resumes, and refuses, naming the holder, while another
 * live process holds it — two trainers writing one run folder would interleave their checkpoints. A lock left
 * by a process that no longer exists (killed, or from before a reboot) is taken over; where that cannot be
 * checked (no /proc, another host) the message says which file to delete.
 */
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { basename } from "node:path";
import { RunError } from "./paths.ts";

/** What the lock file records about its holder. */
type Holder = { pid: number; host: string; boot: string; started: string };

/** A held lock; `release` removes the file (only while it is still this process's). */
export type RunLock = { file: string; release(): void };

function readOr(file: string, fallback: string): string {
  try {
    return readFileSync(file, "utf8").trim();
  } catch {
    return fallback;
  }
}

function hostname(): string {
  try {
    return Deno.hostname();
  } catch {
    return "unknown";
  }
}

/** This machine's boot id (Linux), so that a lock from before a reboot is known to be stale. */
function bootId(): string {
  return readOr("/proc/sys/kernel/random/boot_id", "unknown");
}

/**
 * True when the holder is known to be gone: same host and boot, and /proc shows no such process (or a process
 * of that pid that is not a Deno trainer: the pid was reused); or same host and a different boot.
 */
function isStale(h: Holder): boolean {
  if (h.host !== hostname() || !existsSync("/proc/self")) return false; // cannot check: assume alive
  if (h.boot !== "unknown" && bootId() !== "unknown" && h.boot !== bootId()) return true;
  if (!existsSync(`/proc/${h.pid}`)) return true;
  return !/deno/.test(readOr(`/proc/${h.pid}/cmdline`, "deno"));
}

/** Takes the lock of the run folder `dir` (creating `<dir>.lock`); throws {@link RunError} while it is held. */
export function lockRun(dir: string): RunLock {
  const file = `${dir}.lock`;
  const me: Holder = { pid: Deno.pid, host: hostname(), boot: bootId(), started: new Date().toISOString() };
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(file, JSON.stringify(me) + "\n", { flag: "wx" });
      return {
        file,
        release() {
          const now = readOr(file, "");
          if (now.includes(`"pid":${me.pid},`) && now.includes(me.started)) rmSync(file, { force: true });
        },
      };
    } catch (e) {
      if ((e as { code?: string }).code !== "EEXIST") throw e;
    }
    let holder: Holder | null = null;
    try {
      holder = JSON.parse(readFileSync(file, "utf8")) as Holder;
    } catch {
      holder = null; // unreadable or half-written: treated as held, the message names the file
    }
    if (holder && attempt === 0 && isStale(holder)) {
      rmSync(file, { force: true });
      continue;
    }
    const who = holder
      ? `process ${holder.pid} on ${holder.host} (since ${holder.started})`
      : "another process (the lock file cannot be read)";
    throw new RunError(
      `run ${
        basename(dir)
      } is being trained by ${who}: wait for it to finish or stop it; if that process no ` +
        `longer exists, delete ${file}`,
    );
  }
  throw new RunError(`cannot take the lock ${file}`);
}
