/**
 * Figures for the FER2013 toolkit, drawn with Observable Plot and rendered server-side to standalone SVG
 * strings. This module gathers them by topic:
 *
 * - `layout.ts` — the layout engine (Plot in linkedom, title/subtitle/legend composition)
 * - `histogram.ts` — histogram maths for pixel intensities
 * - `dataset_plots.ts` — class distribution, sample grids, pixel intensities
 * - `training_plots.ts` — accuracy and loss curves
 * - `eval_plots.ts` — confusion matrix, per-class F1, model comparison
 * - `figure_file.ts` — PNG rasterising and `.svg` + `.png` files
 *
 * Every figure function returns a complete `<svg xmlns=...>` document, so the same string can be shown in a
 * notebook (with a PNG beside it, `lib/viz/display.ts`), written to disk or rasterised.
 *
 * @module
 */
export type { FigureOptions } from "./layout.ts";
export {
  type ClassCount,
  classDistributionPlot,
  pixelHistogramPlot,
  pixelsToDataUri,
  type PixelValues,
  sampleGridPlot,
  type SampleImage,
} from "./dataset_plots.ts";
export {
  accuracyCurvesPlot,
  type AccuracyEpoch,
  accuracyVsCpuHoursPlot,
  type CpuHoursSeries,
  lossCurvesPlot,
  type LossEpoch,
} from "./training_plots.ts";
export {
  type ClassF1,
  comparisonPlot,
  confusionMatrixPlot,
  isReferenceModel,
  type MetricEstimate,
  perClassF1Plot,
} from "./eval_plots.ts";
export { type RasterFigure, type SavedFigure, saveFigure, svgSize, svgToPng } from "./figure_file.ts";
