/**
 * Training-curve figures: train vs validation accuracy and loss per epoch.
 *
 * @module
 */
import * as Plot from "@observablehq/plot";
import {
  compose,
  DEFAULT_WIDTH,
  type FigureOptions,
  pct,
  plot,
  TRAIN_COLOR,
  unique,
  VAL_COLOR,
} from "./layout.ts";

/** One epoch of accuracy history (fractions in [0, 1]). */
export interface AccuracyEpoch {
  epoch: number;
  train_acc?: number | null;
  val_acc?: number | null;
}

/** One epoch of loss history. */
export interface LossEpoch {
  epoch: number;
  train_loss?: number | null;
  val_loss?: number | null;
}

function curvesPlot(
  history: { epoch: number }[],
  keys: [string, string],
  o: { yLabel: string; percent: boolean; best: "max" | "min"; title: string; fig: FigureOptions },
): string {
  const width = o.fig.width ?? DEFAULT_WIDTH;
  const series = [["train", keys[0]], ["val", keys[1]]] as const;
  const data = series.flatMap(([split, key]) =>
    history
      .map((h) => ({ epoch: h.epoch, split, value: (h as unknown as Record<string, number | null>)[key] }))
      .filter((d): d is { epoch: number; split: typeof split; value: number } =>
        typeof d.value === "number" && Number.isFinite(d.value)
      )
  );
  if (data.length === 0) throw new Error(`${o.title}: history has no finite ${keys.join(" / ")} values`);
  const val = data.filter((d) => d.split === "val");
  const pick = val.length > 0 ? val : data.filter((d) => d.split === "train");
  const best = pick.reduce((a, b) => (o.best === "max" ? b.value > a.value : b.value < a.value) ? b : a);
  const epochs = unique(data.map((d) => d.epoch)).sort((a, b) => a - b);
  const lastEpoch = epochs[epochs.length - 1];
  const right = best.epoch > (epochs[0] + lastEpoch) / 2;
  const fmt = (v: number) => o.percent ? pct(v) : v.toFixed(3);
  const splits = unique(data.map((d) => d.split));
  const fig = plot({
    width,
    height: 320,
    marginLeft: 50,
    marginRight: 20,
    x: { label: "Epoch", ...(epochs.length <= 15 ? { ticks: epochs } : {}), tickFormat: "d" },
    y: { label: o.yLabel, grid: true, percent: o.percent, nice: true },
    color: { domain: ["train", "val"], range: [TRAIN_COLOR, VAL_COLOR] },
    marks: [
      Plot.lineY(data, {
        x: "epoch",
        y: "value",
        stroke: "split",
        z: "split", // explicit: with one or two epochs Plot would warn about an implicit high-cardinality z
        strokeWidth: 2,
        marker: epochs.length <= 30 ? "circle-stroke" : undefined,
      }),
      Plot.dot([best], { x: "epoch", y: "value", r: 6, stroke: "#111", strokeWidth: 1.5 }),
      Plot.text([best], {
        x: "epoch",
        y: "value",
        text: (d: typeof best) => `best ${d.split} ${fmt(d.value)} (epoch ${d.epoch})`,
        dy: o.best === "max" ? 14 : -14,
        dx: right ? -4 : 4,
        textAnchor: right ? "end" : "start",
        fontWeight: "bold",
        fill: "#111",
        stroke: "white",
        strokeWidth: 3,
        paintOrder: "stroke",
      }),
    ],
  });
  const last = history[history.length - 1] as unknown as Record<string, number | null>;
  const lastText = series
    .filter(([, key]) => typeof last[key] === "number")
    .map(([split, key]) => `${split} ${fmt(last[key] as number)}`)
    .join(", ");
  return compose([fig], {
    title: o.fig.title ?? o.title,
    subtitle: o.fig.subtitle === undefined
      ? `${epochs.length} epochs; last epoch: ${lastText || "n/a"}`
      : o.fig.subtitle,
    legend: splits.map((s) => ({ label: s, color: s === "train" ? TRAIN_COLOR : VAL_COLOR, shape: "line" })),
    width,
  });
}

/** Train vs validation accuracy per epoch (values are fractions, shown as %), best val epoch marked. */
export function accuracyCurvesPlot(history: AccuracyEpoch[], opts: FigureOptions = {}): string {
  return curvesPlot(history, ["train_acc", "val_acc"], {
    yLabel: "Accuracy (%)",
    percent: true,
    best: "max",
    title: "Accuracy per epoch",
    fig: opts,
  });
}

/** Train vs validation loss per epoch, lowest val loss marked. */
export function lossCurvesPlot(history: LossEpoch[], opts: FigureOptions = {}): string {
  return curvesPlot(history, ["train_loss", "val_loss"], {
    yLabel: "Loss",
    percent: false,
    best: "min",
    title: "Loss per epoch",
    fig: opts,
  });
}

/**
 * One run's validation accuracy against its cumulative CPU-hours (one point per epoch); `dashed` draws it as a
 * dashed line without its best point circled (a fitted or extrapolated line rather than a measurement).
 */
export interface CpuHoursSeries {
  run: string;
  points: { cpuHours: number; valAcc: number }[];
  dashed?: boolean;
}

/** Series colours, one per run (Observable's "observable10" scheme, first seven). */
const RUN_COLORS = ["#4269d0", "#efb118", "#ff725c", "#6cc5b0", "#3ca951", "#ff8ab7", "#a463f2"];

/**
 * Validation accuracy against cumulative CPU-hours, one line per run, the best point of each measured run marked,
 * with optional dashed horizontal references (e.g. a target, labelled at the left edge). The curve to read when a
 * target is missed: how much accuracy each CPU-hour bought, and how fast it still rises. `yDomain` (fractions)
 * narrows the 0–100 % axis; `xLabel` renames the x axis.
 */
export function accuracyVsCpuHoursPlot(
  series: CpuHoursSeries[],
  opts: FigureOptions & {
    references?: { label: string; value: number }[];
    yDomain?: [number, number];
    xLabel?: string;
  } = {},
): string {
  const width = opts.width ?? DEFAULT_WIDTH;
  const data = series.flatMap((s) =>
    s.points
      .filter((p) => Number.isFinite(p.cpuHours) && Number.isFinite(p.valAcc))
      .map((p) => ({ run: s.run, cpuHours: p.cpuHours, valAcc: p.valAcc }))
  );
  const dashed = new Set(series.filter((s) => s.dashed).map((s) => s.run));
  if (data.length === 0) {
    throw new Error("accuracy vs CPU-hours: no run has CPU-hours and validation accuracy");
  }
  const runs = unique(data.map((d) => d.run));
  const colors = runs.map((_, i) => RUN_COLORS[i % RUN_COLORS.length]);
  const best = runs.filter((r) => !dashed.has(r)).map((r) =>
    data.filter((d) => d.run === r).reduce((a, b) => (b.valAcc > a.valAcc ? b : a))
  );
  const refs = opts.references ?? [];
  const topRef = Math.max(...refs.map((r) => r.value));
  const maxX = Math.max(...data.map((d) => d.cpuHours));
  const fig = plot({
    width,
    height: 340,
    marginLeft: 50,
    marginRight: 20,
    x: { label: opts.xLabel ?? "CPU-hours (cumulative, all sessions)", domain: [0, maxX * 1.02], nice: true },
    y: {
      label: "Validation accuracy (%)",
      grid: true,
      percent: true,
      domain: (opts.yDomain ?? [0, 1]).map((v) => 100 * v), // percent: the domain is in %
    },
    color: { domain: runs, range: colors },
    marks: [
      Plot.ruleY(refs, { y: "value", stroke: "#777", strokeDasharray: "5,4" }),
      // labels at the left edge, where runs are still far below their final accuracy: the highest reference
      // above its line, the others below theirs, so that two close references keep their labels apart
      ...[true, false].map((top) =>
        Plot.text(refs.filter((r) => (r.value === topRef) === top), {
          x: 0,
          y: "value",
          text: "label",
          dy: top ? -7 : 12,
          dx: 4,
          textAnchor: "start",
          fill: "#555",
          stroke: "white",
          strokeWidth: 3,
          paintOrder: "stroke",
        })
      ),
      ...[false, true].map((d) =>
        Plot.lineY(data.filter((p) => dashed.has(p.run) === d), {
          x: "cpuHours",
          y: "valAcc",
          stroke: "run",
          z: "run",
          strokeWidth: 2,
          ...(d ? { strokeDasharray: "6,4" } : {}),
        })
      ),
      Plot.dot(best, { x: "cpuHours", y: "valAcc", r: 5, stroke: "run", fill: "white", strokeWidth: 2 }),
    ],
  });
  const bestText = best.map((b) => `${b.run} ${pct(b.valAcc)} at ${b.cpuHours.toFixed(1)} CPU-h`).join("; ");
  return compose([fig], {
    title: opts.title ?? "Validation accuracy per CPU-hour",
    subtitle: opts.subtitle === undefined ? `best (circled): ${bestText}` : opts.subtitle,
    legend: runs.map((r, i) => ({
      label: r,
      color: colors[i],
      shape: dashed.has(r) ? "dash" as const : "line" as const,
    })),
    width,
  });
}
