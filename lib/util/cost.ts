/** Cost accounting: the process's CPU time, for the run's cost fields (lib/train/loop.ts). */
import process from "node:process";

/** Process CPU time (user + system, all threads) in seconds. */
export function cpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}
