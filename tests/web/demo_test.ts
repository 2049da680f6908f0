/// <reference lib="dom" />
/// <reference lib="deno.ns" />
/**
 * The demo page in headless Chromium (Debian's `chromium`, driven by puppeteer-core) with a fake camera playing a
 * clip of the three-face fixture: faces are boxed and labelled live; the page's predictions for a known image
 * equal `deno task predict`'s; the exported model's logits in the browser equal the checkpoint's in Deno.
 * Skipped when Chromium is not installed (CHROMIUM_PATH overrides /usr/bin/chromium).
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { Buffer } from "node:buffer";
import { launchChromium } from "../helpers/chromium.ts";
import sharp from "sharp";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import { exportEnsemble, exportRun } from "../../lib/models/export.ts";
import { CLASSES } from "../../lib/data/dataset.ts";
import { writePredictionsCsv } from "../../lib/eval/predictions.ts";
import { loadRunConfig, loadRunModel, runTransform } from "../../lib/runs/runs.ts";
import { startServer } from "../../lib/web/server.ts";
import { makeEnsembleFolder, makeTinyRun, randomCrops } from "../faces/helpers.ts";
import { y4m } from "./y4m.ts";

await tf.setBackend("cpu");
const CHROMIUM = Deno.env.get("CHROMIUM_PATH") ?? "/usr/bin/chromium";
const FIX = new URL("../fixtures/faces/", import.meta.url).pathname;
const PREDICT = new URL("../../lib/cli/predict.ts", import.meta.url).pathname;

/** What the page exposes (web/app.ts `FerPage`), as far as this test uses it. */
type Win = {
  fer: {
    error: string | null;
    ready: Promise<void>;
    classes: string[];
    tta: { mode: string; average: string };
    members: { run: string; tta: { mode: string; average: string } }[];
    last: { faces: unknown[]; frames: number; fps: number };
    predictImage(url: string): Promise<PageFace[]>;
    logits(crops: number[], n: number, member?: number): Promise<number[][]>;
  };
};
type PageFace = { box: { x: number; y: number; width: number; height: number }; probs: number[] };

/** `deno task predict <run> <image> --top 7`, parsed: one entry per face (box, probabilities by class name). */
async function cliPredict(run: string, image: string, ...more: string[]) {
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", PREDICT, run, image, "--top", "7", ...more],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const out = new TextDecoder().decode(r.stdout);
  assert.equal(r.code, 0, new TextDecoder().decode(r.stderr));
  return out.split("\n").filter((l) => l.startsWith("  face ")).map((l) => {
    const [, x, y, w, h] = l.match(/x=(\d+) y=(\d+) (\d+)×(\d+)/)!.map(Number);
    const probs = Object.fromEntries(
      [...l.split("): ")[1].matchAll(/(\w+) (\d+\.\d)%/g)].map((m) => [m[1], Number(m[2]) / 100]),
    );
    return { box: [x, y, w, h], probs };
  });
}

/** Headless Chromium (CHROMIUM) with a fresh profile in `profile` and `args` added. */
function launch(profile: string, args: string[] = []) {
  return launchChromium(CHROMIUM, profile, args);
}

/** A page of the demo at `url` with its models and detector loaded (the camera off). */
async function openPage(browser: Awaited<ReturnType<typeof launch>>, url: string) {
  const page = await browser.newPage();
  await page.goto(url);
  await page.waitForFunction(() => (globalThis as unknown as Win).fer !== undefined);
  await page.evaluate(() => (globalThis as unknown as Win).fer.ready);
  return page;
}

Deno.test({
  name:
    "demo page: fake camera faces boxed and labelled; same predictions as deno task predict, with the TTA chosen " +
    "on validation and with ?tta=none; same logits",
  ignore: !existsSync(CHROMIUM),
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const tmp = await Deno.makeTempDir({ prefix: "fer-demo-" });
    const run = await makeTinyRun(join(tmp, "run"));
    // a validation evaluation with hflip better than the best epoch: the export (and predict) choose hflip
    writePredictionsCsv(
      join(run, "predictions_val_tta-hflip.csv"),
      [{ path: "a.jpg", label: 0, pred: 0 }],
      CLASSES,
    );
    assert.equal((await exportRun(run, join(tmp, "web"))).metadata.tta?.mode, "hflip");
    // The fake camera clip: the three-face fixture, shifted a little per frame.
    const { data, info } = await sharp(FIX + "three_faces.jpg").raw().toBuffer({ resolveWithObject: true });
    const frames = [0, 4, 8].map((dx) => {
      const f = new Uint8Array(data.length);
      for (let y = 0; y < info.height; y++) {
        f.set(
          data.subarray(y * info.width * 3, (y * info.width + info.width - dx) * 3),
          (y * info.width + dx) * 3,
        );
      }
      return f;
    });
    await Deno.writeFile(join(tmp, "clip.y4m"), y4m(frames, info.width, info.height, 5));
    const server = await startServer({ modelDir: join(tmp, "web"), port: 0 });
    const browser = await launch(join(tmp, "profile"), [
      "--use-fake-ui-for-media-stream",
      "--use-fake-device-for-media-stream",
      `--use-file-for-fake-video-capture=${join(tmp, "clip.y4m")}`,
    ]);
    try {
      const page = await browser.newPage();
      const errors: string[] = [];
      page.on("pageerror", (e) => errors.push(String(e)));
      await page.goto(`${server.url}?backend=cpu`);
      // Live: at least two camera frames processed, with three faces in the latest.
      await page.waitForFunction(
        () =>
          (globalThis as unknown as Win).fer?.error || ((globalThis as unknown as Win).fer?.last.frames >= 2),
        { timeout: 240_000, polling: 500 },
      );
      const live = await page.evaluate(() => {
        const fer = (globalThis as unknown as Win).fer;
        const overlay = document.getElementById("overlay") as HTMLCanvasElement;
        const px = overlay.getContext("2d")!.getImageData(0, 0, overlay.width, overlay.height).data;
        let drawn = 0;
        for (let i = 3; i < px.length; i += 4) if (px[i] > 0) drawn++;
        return {
          error: fer.error,
          classes: fer.classes,
          faces: fer.last.faces.length,
          fps: fer.last.fps,
          labels: [...document.querySelectorAll("li.face")].map((e) => (e as HTMLElement).dataset.label),
          fpsText: document.getElementById("fps")!.textContent,
          drawn,
        };
      });
      assert.equal(live.error, null);
      assert.deepEqual(errors, []);
      assert.equal(live.faces, 3, "three faces in the camera frame");
      assert.equal(live.labels.length, 3);
      for (const l of live.labels) assert.ok(live.classes.includes(l ?? ""), `label ${l}`);
      assert.ok(live.drawn > 1000, `overlay pixels drawn: ${live.drawn}`);
      assert.match(live.fpsText ?? "", /^\d+\.\d frames\/s$/);

      // A known image (PNG, so the browser and sharp decode the same pixels): page == CLI.
      const png = join(tmp, "one_face.png");
      await sharp(FIX + "one_face.jpg").png().toFile(png);
      const url = `data:image/png;base64,${Buffer.from(await Deno.readFile(png)).toString("base64")}`;
      const pageFaces: PageFace[] = await page.evaluate(
        (u) => (globalThis as unknown as Win).fer.predictImage(u),
        url,
      );
      const samePrediction = (faces: PageFace[], cli: Awaited<ReturnType<typeof cliPredict>>) => {
        assert.equal(faces.length, 1);
        assert.equal(cli.length, 1);
        const b = faces[0].box;
        [b.x, b.y, b.width, b.height].forEach((v, i) =>
          assert.ok(Math.abs(v - cli[0].box[i]) <= 1, `box ${i}`)
        );
        live.classes.forEach((c: string, i: number) => {
          const d = Math.abs(faces[0].probs[i] - cli[0].probs[c]);
          assert.ok(d < 0.002, `${c}: page ${faces[0].probs[i]}, cli ${cli[0].probs[c]}`);
        });
      };
      assert.deepEqual(await page.evaluate(() => (globalThis as unknown as Win).fer.tta), {
        mode: "hflip",
        average: "prob",
      });
      // the page says what the exported model scored with its TTA (here the one-image validation file)
      assert.match(
        await page.evaluate(() => document.getElementById("model")!.textContent ?? ""),
        /TTA hflip \(chosen on validation\); input 48×48 gray face → 48×48×1; accuracy on FER2013: validation 100\.00 %$/,
      );
      samePrediction(pageFaces, await cliPredict(run, png)); // both: the TTA chosen on validation

      // ?tta=none overrides the export: the single centre view, as `predict --tta none`
      const plainPage = await openPage(browser, `${server.url}?backend=cpu&camera=0&tta=none`);
      // another TTA than the export's: its scores do not apply and are not shown
      assert.doesNotMatch(
        await plainPage.evaluate(() => document.getElementById("model")!.textContent ?? ""),
        /accuracy on FER2013/,
      );
      const plainFaces: PageFace[] = await plainPage.evaluate(
        (u) => (globalThis as unknown as Win).fer.predictImage(u),
        url,
      );
      samePrediction(plainFaces, await cliPredict(run, png, "--tta", "none"));
      const moved = Math.max(...plainFaces[0].probs.map((p, i) => Math.abs(p - pageFaces[0].probs[i])));
      // well above the page-vs-CLI tolerance (0.002), so the two comparisons above tell the modes apart
      assert.ok(moved > 0.005, `hflip TTA changed too little to be told apart (${moved})`);
      await plainPage.close();

      // Export round trip in the browser: the page's exported model gives the checkpoint's logits.
      const crops = randomCrops(4, 3);
      const cropData = Array.from(crops.dataSync());
      const pageLogits: number[][] = await page.evaluate(
        (c, n) => (globalThis as unknown as Win).fer.logits(c, n),
        cropData,
        4,
      );
      const { model } = await loadRunModel(run);
      const ref = tf.tidy(() =>
        (model.predict(runTransform(loadRunConfig(run))(crops)) as tf.Tensor).arraySync()
      ) as number[][];
      model.dispose();
      crops.dispose();
      const maxDiff = Math.max(...ref.flatMap((row, i) => row.map((v, j) => Math.abs(v - pageLogits[i][j]))));
      assert.ok(maxDiff < 1e-4, `max logit difference browser vs checkpoint: ${maxDiff}`);
    } finally {
      await browser.close();
      await server.shutdown();
      await Deno.remove(tmp, { recursive: true }).catch(() => {});
    }
  },
});

Deno.test({
  name:
    "demo page with an exported ensemble: every member with its TTA, probabilities averaged as deno task predict",
  ignore: !existsSync(CHROMIUM),
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const tmp = await Deno.makeTempDir({ prefix: "fer-demo-ens-" });
    const a = await makeTinyRun(join(tmp, "a"), { seed: 3 });
    await makeTinyRun(join(tmp, "b"), { seed: 11, inputSize: 44, cropFrom: 48 });
    const ens = makeEnsembleFolder(join(tmp, "ensemble-ab"), [["a", "hflip"], ["b", "5crop"]]);
    const web = join(tmp, "web");
    await exportRun(a, web); // an earlier single-model export in the same folder: replaced by the ensemble's
    const exported = await exportEnsemble(ens, web);
    assert.deepEqual(exported.manifest.members.map((m) => [m.path, m.run, m.tta.mode]), [
      ["member-1", "a", "hflip"],
      ["member-2", "b", "5crop"],
    ]);
    assert.ok(!existsSync(join(web, "model.json")));
    const server = await startServer({ modelDir: web, port: 0 });
    const browser = await launch(join(tmp, "profile"));
    try {
      const png = join(tmp, "one_face.png");
      await sharp(FIX + "one_face.jpg").png().toFile(png);
      const url = `data:image/png;base64,${Buffer.from(await Deno.readFile(png)).toString("base64")}`;
      const probsOf = async (query: string) => {
        const page = await openPage(browser, `${server.url}?backend=cpu&camera=0${query}`);
        const out = await page.evaluate(async (u) => {
          const fer = (globalThis as unknown as Win).fer;
          return { error: fer.error, members: fer.members, faces: await fer.predictImage(u) };
        }, url);
        await page.close();
        assert.equal(out.error, null);
        assert.equal(out.faces.length, 1);
        return out;
      };
      const near = (page: number[], cli: Record<string, number>) =>
        CLASSES.forEach((c, i) =>
          assert.ok(Math.abs(page[i] - cli[c]) < 0.002, `${c}: page ${page[i]}, cli ${cli[c]}`)
        );
      const own = await probsOf("");
      assert.deepEqual(own.members.map((m) => [m.run, m.tta.mode]), [["a", "hflip"], ["b", "5crop"]]);
      const cli = await cliPredict(ens, png);
      near(own.faces[0].probs, cli[0].probs);
      // the members differ, so the average is neither member's
      const [onlyA] = await cliPredict(a, png, "--tta", "hflip");
      assert.ok(Math.max(...CLASSES.map((c, i) => Math.abs(own.faces[0].probs[i] - onlyA.probs[c]))) > 0.005);
      // ?tta=none applies to every member, as `predict <ensemble> --tta none`
      const plain = await probsOf("&tta=none");
      assert.deepEqual(plain.members.map((m) => m.tta.mode), ["none", "none"]);
      near(plain.faces[0].probs, (await cliPredict(ens, png, "--tta", "none"))[0].probs);
    } finally {
      await browser.close();
      await server.shutdown();
      await Deno.remove(tmp, { recursive: true }).catch(() => {});
    }
  },
});
