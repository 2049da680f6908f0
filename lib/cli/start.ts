/**
 * `deno task start`: the main job. Trains the default experiment (the from-scratch FER CNN, `cpu` preset; `smoke`
 * with FER_SMOKE=1) on the default data (FER2013 from FER2013_DIR or data/fer2013, else the committed sample),
 * evaluates the best checkpoint once on the test split, prints the classification report and saves the run
 * (model, history, report, predictions, figures) under checkpoints/.
 */
import { defaultPreset, experimentConfig } from "../train/experiments.ts";
import { saveRunFigures } from "../runs/runs.ts";
import { engineSummary, initEngine } from "../engine/init.ts";
import { train } from "../train/loop.ts";
import { parseCli } from "./args.ts";

parseCli({
  name: "start",
  usage: [""],
  summary:
    "Trains the default experiment (fer_cnn, cpu preset; smoke with FER_SMOKE=1) on the default data " +
    "(FER2013_DIR,\ndata/fer2013, else the committed sample), evaluates the best checkpoint once on the test " +
    "split and saves the run\nunder checkpoints/. `deno task train --help` lists the other experiments.",
  options: {},
}, () => undefined);

const EXPERIMENT = "fer_cnn";
const preset = defaultPreset();
try {
  await initEngine();
  console.log(`engine: ${engineSummary()}`);
  console.log(`experiment: ${EXPERIMENT}, preset ${preset} (deno task train --help lists the others)`);
  const res = await train(experimentConfig(EXPERIMENT, preset));
  const figures = await saveRunFigures(res.runDir);
  console.log(`figures: ${figures.filter((f) => f.endsWith(".png")).join(", ")}`);
  if (res.stopped === "diverged") Deno.exit(3);
  const run = res.runDir.split("/").pop();
  console.log(
    `next: faces in a photo with \`deno task predict ${run} photo.jpg\`, the live demo with ` +
      `\`deno task serve ${run}\`; the stronger from-scratch recipe (hours on a CPU, README › Results) with ` +
      "`deno task train vgg_fer --preset cpu`",
  );
} catch (e) {
  console.error(`error: ${(e as Error).message}`);
  Deno.exit(1);
}
