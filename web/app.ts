/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/// <reference lib="deno.ns" />
/**
 * The demo page's script (bundled for the browser by lib/web/server.ts with `deno bundle`): loads the exported
 * model (/model/model.json, lib/models/export.ts) and BlazeFace (/detector/blazeface.json, from
 * @vladmandic/human's package), then runs the same face pipeline as `deno task predict` (lib/faces/pipeline.ts)
 * on the webcam or on an uploaded image, drawing boxes, labels and class probabilities with the frame rate.
 *
 * Each face gets the test-time augmentation stored in the export (by default the mode chosen on validation;
 * lib/models/export.ts), as `deno task predict` does; `?tta=none|hflip|5crop|10crop` overrides it (e.g. `none`
 * for a faster webcam). An exported ensemble (/model/ensemble.json) loads every member, each with its own TTA,
 * and averages their probabilities, as `deno task predict <ensemble>` does.
 *
 * For tests it exposes `window.fer` (see {@link FerPage}). `?backend=cpu|webgl` picks the tfjs backend
 * (default: webgl when available, else cpu); `?camera=0` leaves the webcam off.
 */
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import "@tensorflow/tfjs-backend-webgl";
import * as tfl from "@tensorflow/tfjs-layers";
import { loadGraphModel } from "@tensorflow/tfjs-converter";
import "../lib/models/layers.ts"; // registers LayerScale (ConvNeXt exports)
import { FaceDetector } from "../lib/faces/detect.ts";
import { type Classifier, type FacePrediction, predictFaces, topClasses } from "../lib/faces/pipeline.ts";
import { preprocess, type Preprocessing } from "../lib/faces/preprocess.ts";
import { TTA_MODES, type TtaMode } from "../lib/data/views.ts";
import { NO_TTA, type TtaSpec } from "../lib/eval/combine.ts";

/** What the page exposes on `window.fer`. */
export interface FerPage {
  ready: Promise<void>;
  backend: string;
  classes: string[];
  /** The test-time augmentation applied to each face (`none`: the single centre view); an ensemble's first member's. */
  tta: TtaSpec;
  /** The model, or each member of an ensemble, with its TTA. */
  members: { run: string; tta: TtaSpec }[];
  /** The latest camera frame's faces (boxes, probabilities), frames processed and frames per second. */
  last: { faces: FacePrediction[]; frames: number; fps: number };
  /** Faces and probabilities for an image URL (e.g. a data: URL). */
  predictImage(url: string): Promise<FacePrediction[]>;
  /** Raw logits of the exported model (an ensemble's member `member`) for gray crops [n, dataSize, dataSize, 1]. */
  logits(crops: number[], n: number, member?: number): Promise<number[][]>;
  error: string | null;
}

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const params = new URLSearchParams(location.search);
const page: FerPage = {
  ready: Promise.resolve(),
  backend: "",
  classes: [],
  tta: NO_TTA,
  members: [],
  last: { faces: [], frames: 0, fps: 0 },
  predictImage: () => Promise.reject(new Error("not ready")),
  logits: () => Promise.reject(new Error("not ready")),
  error: null,
};
(globalThis as unknown as { fer: FerPage }).fer = page;

function status(text: string) {
  $("status").textContent = text;
}

/** Boxes, eye points and labels on the overlay canvas; the probability table for the first face. */
function draw(canvas: HTMLCanvasElement, faces: FacePrediction[], classes: string[], fps?: number) {
  const ctx = canvas.getContext("2d")!;
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  const font = Math.max(12, Math.round(canvas.height / 28));
  ctx.font = `${font}px sans-serif`;
  ctx.lineWidth = Math.max(2, canvas.height / 200);
  faces.forEach((f, i) => {
    const [best] = topClasses(f.probs, classes, 1);
    ctx.strokeStyle = "#ffd000";
    ctx.strokeRect(f.box.x, f.box.y, f.box.width, f.box.height);
    ctx.fillStyle = "#00e0ff";
    for (const [x, y] of [f.landmarks.rightEye, f.landmarks.leftEye]) ctx.fillRect(x - 2, y - 2, 4, 4);
    const label = `${i + 1}: ${best.name} ${(100 * best.p).toFixed(0)}%`;
    const ty = f.box.y - font * 1.4 >= 0 ? f.box.y - font * 1.4 : f.box.y + f.box.height;
    ctx.fillStyle = "rgba(0,0,0,0.65)";
    ctx.fillRect(f.box.x, ty, ctx.measureText(label).width + font * 0.6, font * 1.4);
    ctx.fillStyle = "#fff";
    ctx.fillText(label, f.box.x + font * 0.3, ty + font * 1.05);
  });
  const list = $("faces");
  list.replaceChildren(...faces.map((f, i) => {
    const li = document.createElement("li");
    li.className = "face";
    li.dataset.label = topClasses(f.probs, classes, 1)[0].name;
    const bars = f.probs.map((p, k) =>
      `<div class="bar"><span>${classes[k]}</span><i style="width:${(100 * p).toFixed(1)}%"></i>` +
      `<b>${(100 * p).toFixed(1)}%</b></div>`
    ).join("");
    li.innerHTML = `<h3>face ${i + 1}: ${li.dataset.label}</h3>${bars}`;
    return li;
  }));
  if (fps !== undefined) $("fps").textContent = `${fps.toFixed(1)} frames/s`;
}

async function loadImage(url: string): Promise<HTMLImageElement> {
  const img = new Image();
  img.src = url;
  await img.decode();
  return img;
}

async function main() {
  const wanted = params.get("backend");
  const order = wanted ? [wanted] : ["webgl", "cpu"];
  for (const b of order) {
    try {
      if (await tf.setBackend(b)) break;
    } catch { /* next */ }
  }
  await tf.ready();
  page.backend = tf.getBackend();
  status(`tfjs ${tf.version_core} on ${page.backend}; loading models…`);
  const wantedTta = params.get("tta");
  if (wantedTta !== null && !(TTA_MODES as readonly string[]).includes(wantedTta)) {
    throw new Error(`?tta must be one of ${TTA_MODES.join(", ")}, got "${wantedTta}"`);
  }
  // an exported ensemble lists its members' folders (lib/models/export.ts exportEnsemble); else one model
  const listed = await fetch("model/ensemble.json");
  const ensemble = listed.ok
    ? await listed.json() as { ensemble: string; members: { path: string }[] }
    : null;
  const folders = ensemble ? ensemble.members.map((m) => `model/${m.path}/`) : ["model/"];
  const loaded = await Promise.all(folders.map(async (dir) => {
    const model = await tfl.loadLayersModel(`${dir}model.json`);
    const meta = (await (await fetch(`${dir}model.json`)).json()).userDefinedMetadata;
    // absent in exports made before TTA was exported
    const stored = meta.tta as (TtaSpec & { source?: string }) | undefined;
    const tta: TtaSpec = {
      mode: (wantedTta as TtaMode | null) ?? stored?.mode ?? "none",
      average: stored?.average ?? NO_TTA.average,
    };
    const classifier: Classifier = {
      model,
      classes: meta.classes,
      preprocessing: meta.preprocessing as Preprocessing,
      tta,
    };
    const from = wantedTta !== null
      ? " (?tta)"
      : stored?.source === "validation"
      ? " (chosen on validation)"
      : "";
    return { classifier, meta, label: `${meta.model} (${meta.run}); TTA ${tta.mode}${from}` };
  }));
  const classifiers = loaded.map((l) => l.classifier);
  const classes = classifiers[0].classes;
  const prep = classifiers[0].preprocessing;
  page.classes = classes;
  page.tta = classifiers[0].tta!;
  page.members = loaded.map((l) => ({ run: l.meta.run, tta: l.classifier.tta! }));
  const detector = new FaceDetector(await loadGraphModel("detector/blazeface.json"));
  // what the model (or the ensemble) scored with the exported TTA; not shown when ?tta= changes it
  type Scores = { validation: number | null; test: number | null } | undefined;
  const scores: Scores = wantedTta === null
    ? (ensemble ? (ensemble as { accuracy?: Scores }).accuracy : loaded[0].meta.accuracy)
    : undefined;
  const pct = (v: number) => `${(100 * v).toFixed(2)} %`;
  const scored = [
    ...(scores?.validation != null ? [`validation ${pct(scores.validation)}`] : []),
    ...(scores?.test != null ? [`test ${pct(scores.test)}`] : []),
  ];
  $("model").textContent =
    (ensemble
      ? `ensemble ${ensemble.ensemble}, ${loaded.length} members averaged: ${
        loaded.map((l) => l.label).join("; ")
      }`
      : loaded[0].label) +
    `; input ${prep.dataSize}×${prep.dataSize} gray face → ${prep.inputSize}×${prep.inputSize}×${prep.channels}` +
    (scored.length ? `; accuracy on FER2013: ${scored.join(", ")}` : "");

  const photoCanvas = $<HTMLCanvasElement>("photo");
  const overlay = $<HTMLCanvasElement>("overlay");
  async function predictImage(img: HTMLImageElement | HTMLVideoElement): Promise<FacePrediction[]> {
    const pixels = tf.browser.fromPixels(img);
    try {
      return await predictFaces(detector, classifiers.length === 1 ? classifiers[0] : classifiers, pixels);
    } finally {
      pixels.dispose();
    }
  }
  page.predictImage = async (url) => {
    const img = await loadImage(url);
    photoCanvas.width = overlay.width = img.naturalWidth;
    photoCanvas.height = overlay.height = img.naturalHeight;
    photoCanvas.getContext("2d")!.drawImage(img, 0, 0);
    const faces = await predictImage(img);
    draw(overlay, faces, classes);
    return faces;
  };
  page.logits = async (crops, n, member = 0) => {
    const c = classifiers[member];
    const s = c.preprocessing.dataSize;
    const out = tf.tidy(() =>
      c.model.predict(preprocess(tf.tensor4d(crops, [n, s, s, 1]), c.preprocessing)) as tf.Tensor
    );
    const rows = (await out.array()) as number[][];
    out.dispose();
    return rows;
  };
  $<HTMLInputElement>("upload").addEventListener("change", async (e) => {
    const file = (e.target as HTMLInputElement).files?.[0];
    if (!file) return;
    stopCamera();
    await page.predictImage(URL.createObjectURL(file));
  });

  let running = false;
  const video = $<HTMLVideoElement>("video");
  function stopCamera() {
    running = false;
    (video.srcObject as MediaStream | null)?.getTracks().forEach((t) => t.stop());
    video.srcObject = null;
  }
  async function startCamera() {
    try {
      video.srcObject = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 } });
    } catch (e) {
      status(`tfjs on ${page.backend}; no camera (${(e as Error).message}): upload an image`);
      return;
    }
    await video.play();
    running = true;
    let t0 = performance.now(), n = 0;
    while (running) {
      if (video.readyState >= 2 && video.videoWidth > 0) {
        photoCanvas.width = overlay.width = video.videoWidth;
        photoCanvas.height = overlay.height = video.videoHeight;
        photoCanvas.getContext("2d")!.drawImage(video, 0, 0);
        const faces = await predictImage(video);
        n++;
        const dt = (performance.now() - t0) / 1000;
        if (dt > 1) {
          page.last.fps = n / dt;
          t0 = performance.now();
          n = 0;
        }
        page.last = { faces, frames: page.last.frames + 1, fps: page.last.fps };
        draw(overlay, faces, classes, page.last.fps);
      }
      await new Promise((r) => requestAnimationFrame(r));
    }
  }
  $("camera").addEventListener("click", () => (running ? stopCamera() : startCamera()));
  status(`tfjs ${tf.version_core} on ${page.backend}; ready`);
  if (params.get("camera") !== "0") startCamera();
}

page.ready = main().catch((e) => {
  page.error = String(e?.stack ?? e);
  status(`error: ${e}`);
  throw e;
});
