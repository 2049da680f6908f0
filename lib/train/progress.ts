/**
 * Training progress: a one-line bar with img/s and ETA, rewritten in place (`\r`) when stdout is a terminal;
 * in a Jupyter kernel an updating display (lib/viz/display.ts `notebookProgress`); otherwise (logs, CI) nothing
 * during the epoch and one summary line per epoch. Hand-written: a dozen lines, and the npm progress bars
 * assume Node's process.stdout.
 */
import { inNotebook, type NotebookProgress, notebookProgress } from "../viz/display.ts";

/** Where progress goes: "tty" (in-place bar), "notebook" (updating display), "lines" (epoch lines only). */
export type ProgressMode = "tty" | "notebook" | "lines";

/** The mode for the current process. */
export function detectMode(): ProgressMode {
  if (inNotebook()) return "notebook";
  return Deno.stdout.isTerminal() ? "tty" : "lines";
}

/** `1:05`, `1:02:03` (seconds rounded). */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "?";
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
}

/** A text bar such as `[#####.....]`. */
export function bar(done: number, total: number, width = 24): string {
  const f = total > 0 ? Math.min(1, Math.max(0, done / total)) : 1;
  const n = Math.round(f * width);
  return `[${"#".repeat(n)}${".".repeat(width - n)}]`;
}

/**
 * The in-epoch status text: `epoch 2/10 [####....] 1200/28709 img  412 img/s  ETA 1:08  loss 1.234 acc 0.456`.
 * `before`: images done before `seconds` started counting (an epoch resumed in its middle), left out of the rate.
 */
export function progressLine(
  p: {
    label: string;
    done: number;
    total: number;
    seconds: number;
    loss?: number;
    acc?: number;
    before?: number;
  },
): string {
  const rate = p.seconds > 0 ? (p.done - (p.before ?? 0)) / p.seconds : 0;
  const eta = rate > 0 ? (p.total - p.done) / rate : NaN;
  let s = `${p.label} ${bar(p.done, p.total)} ${p.done}/${p.total} img  ${rate.toFixed(0)} img/s  ETA ${
    formatDuration(eta)
  }`;
  if (p.loss !== undefined) s += `  loss ${p.loss.toFixed(4)}`;
  if (p.acc !== undefined) s += ` acc ${p.acc.toFixed(4)}`;
  return s;
}

/**
 * Progress of one pass over `total` images, of which `before` were done before this pass resumed it. Call
 * `tick` after each batch and `end` once.
 */
export class Progress {
  private readonly start = performance.now();
  private readonly nb: NotebookProgress | null;
  private lastDraw = -Infinity;
  private readonly enc = new TextEncoder();

  constructor(
    private readonly label: string,
    private readonly total: number,
    readonly mode: ProgressMode = detectMode(),
    private readonly before = 0,
  ) {
    this.nb = mode === "notebook" ? notebookProgress() : null;
  }

  /** Seconds since the start. */
  elapsed(): number {
    return (performance.now() - this.start) / 1000;
  }

  /** Reports `done` images processed so far (and running loss/accuracy); redraws at most 10 times a second. */
  tick(done: number, loss?: number, acc?: number): void {
    if (this.mode === "lines") return;
    const now = performance.now();
    if (now - this.lastDraw < 100 && done < this.total) return;
    this.lastDraw = now;
    const text = progressLine({
      label: this.label,
      done,
      total: this.total,
      seconds: this.elapsed(),
      before: this.before,
      loss,
      acc,
    });
    if (this.nb) void this.nb.update(text);
    else Deno.stdout.writeSync(this.enc.encode(`\r\x1b[2K${text}`));
  }

  /** Replaces the bar with the epoch summary line (printed in every mode). */
  async end(summary: string): Promise<void> {
    if (this.nb) await this.nb.done(summary);
    else if (this.mode === "tty") Deno.stdout.writeSync(this.enc.encode(`\r\x1b[2K${summary}\n`));
    else console.log(summary);
  }
}
