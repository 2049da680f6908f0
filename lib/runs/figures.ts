/** A run's figures: accuracy and loss curves from its history, the confusion matrix from its test report. */
import { basename, join } from "node:path";
import { accuracyCurvesPlot, confusionMatrixPlot, lossCurvesPlot, saveFigure } from "../viz/plots.ts";
import { readHistory, readTestReport } from "./files.ts";
import { runPaths } from "./paths.ts";

/** A run's figures as SVG strings: `accuracy`, `loss` and, once the run has a test report, `confusion`. */
export function runFigures(runDir: string): Record<string, string> {
  const paths = runPaths(runDir);
  const history = readHistory(paths);
  const name = basename(runDir);
  const out: Record<string, string> = {
    accuracy: accuracyCurvesPlot(history, { title: `Train vs val accuracy — ${name}` }),
    loss: lossCurvesPlot(history, { title: `Train vs val loss — ${name}` }),
  };
  const rep = readTestReport(paths);
  if (rep) {
    out.confusion = confusionMatrixPlot(rep.confusion_matrix, Object.keys(rep.report.per_class), {
      title: `Confusion matrix (test) — ${name}`,
    });
  }
  return out;
}

/** Saves a run's figures as SVG and PNG into the run folder (`accuracy.svg`, `loss.svg`, `confusion.svg`, …). */
export async function saveRunFigures(runDir: string): Promise<string[]> {
  const saved: string[] = [];
  for (const [k, svg] of Object.entries(runFigures(runDir))) {
    const f = await saveFigure(svg, join(runDir, k), { png: true });
    saved.push(f.svg, ...(f.png ? [f.png] : []));
  }
  return saved;
}
