import assert from "node:assert/strict";
import { DOMParser } from "linkedom";
import sharp from "sharp";
import {
  accuracyCurvesPlot,
  accuracyVsCpuHoursPlot,
  classDistributionPlot,
  comparisonPlot,
  confusionMatrixPlot,
  isReferenceModel,
  lossCurvesPlot,
  perClassF1Plot,
  pixelHistogramPlot,
  pixelsToDataUri,
  sampleGridPlot,
  saveFigure,
} from "../../lib/viz/plots.ts";

const CLASSES = ["angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"];

// deno-lint-ignore no-explicit-any
type Node = any;

/**
 * Parses an SVG string. linkedom's XML parser is lenient, so well-formedness is checked strictly by
 * librsvg (via sharp), which rejects malformed XML.
 */
async function parseSvg(svg: string): Promise<Node> {
  const head = svg.slice(0, svg.indexOf(">") + 1);
  assert.match(head, /^<svg [^>]*xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
  assert.ok(svg.endsWith("</svg>"));
  const meta = await sharp(new TextEncoder().encode(svg)).metadata();
  assert.equal(meta.format, "svg");
  assert.ok((meta.width ?? 0) >= 300, `svg width ${meta.width}`);
  const doc = new DOMParser().parseFromString(svg, "image/svg+xml");
  assert.equal(doc.documentElement.tagName.toLowerCase(), "svg");
  return doc;
}

function all(doc: Node, selector: string): Node[] {
  return [...doc.querySelectorAll(selector)];
}

function texts(doc: Node, selector: string): string[] {
  return all(doc, selector).map((n) => n.textContent);
}

function title(doc: Node): string {
  return doc.querySelector("text.fer-title")?.textContent;
}

function legend(doc: Node): string[] {
  return texts(doc, "g.fer-legend text");
}

/** Axis labels and tick labels, all text in Plot's axis groups. */
function axisText(doc: Node): string {
  return all(doc, 'g[aria-label$="label"] text').map((n) => n.textContent).join("|");
}

function translate(node: Node): [number, number] {
  const m = /translate\(([-\d.e]+),([-\d.e]+)\)/.exec(node.getAttribute("transform") ?? "");
  assert.ok(m, `no translate on ${node.outerHTML}`);
  return [Number(m[1]), Number(m[2])];
}

Deno.test("classDistributionPlot: one bar per class per split, counts, legend", async () => {
  const splits = ["train", "val", "test"];
  const counts = splits.flatMap((split, s) =>
    CLASSES.map((c, i) => ({ split, class: c, count: (i + 1) * 100 * (3 - s) }))
  );
  const doc = await parseSvg(classDistributionPlot(counts));
  assert.equal(all(doc, 'g[aria-label="bar"] rect').length, 21);
  assert.deepEqual(texts(doc, 'g[aria-label="text"] text').sort(), counts.map((c) => String(c.count)).sort());
  assert.equal(title(doc), "Class distribution");
  assert.deepEqual(legend(doc), splits);
  const axes = axisText(doc);
  assert.ok(axes.includes("Class") && axes.includes("Images"), axes);
  for (const c of CLASSES) assert.ok(axes.includes(c), `missing class ${c} in ${axes}`);
  // Bars of one split share a colour; splits differ.
  const fills = all(doc, 'g[aria-label="bar"] rect').map((r) => r.getAttribute("fill"));
  assert.equal(new Set(fills).size, 3);

  const norm = await parseSvg(classDistributionPlot(counts, { normalize: true, title: "Shares" }));
  assert.equal(title(norm), "Shares");
  assert.ok(axisText(norm).includes("Share of split (%)"));
  // Shares within a split: every split has counts proportional to 1..7, i.e. shares of (1..7)/28.
  const labels = texts(norm, 'g[aria-label="text"] text').map(Number).sort((a, b) => a - b);
  assert.deepEqual(labels, [4, 7, 11, 14, 18, 21, 25].flatMap((v) => [v, v, v]));
});

Deno.test("classDistributionPlot: rejects empty input", () => {
  assert.throws(() => classDistributionPlot([]), /no counts/);
});

function face(
  k: number,
  channels = 1,
): { pixels: Uint8Array; width: number; height: number; channels: number } {
  const pixels = new Uint8Array(48 * 48 * channels);
  for (let i = 0; i < pixels.length; i++) pixels[i] = (i * (k + 1)) % 256;
  return { pixels, width: 48, height: 48, channels };
}

Deno.test("sampleGridPlot: embeds one PNG image and one label per face, in a grid", async () => {
  const images = Array.from({ length: 10 }, (_, k) => ({ ...face(k), label: `${CLASSES[k % 7]} #${k}` }));
  const doc = await parseSvg(await sampleGridPlot(images, { columns: 4 }));
  const imgs = all(doc, 'g[aria-label="image"] image');
  assert.equal(imgs.length, 10);
  const labels = all(doc, 'g[aria-label="text"] text');
  assert.deepEqual(labels.map((t) => t.textContent).sort(), images.map((i) => i.label).sort());
  // Facet position (cell origin) of each image and label, keyed by label.
  const imgAt = new Map(imgs.map((im) => [im.querySelector("title").textContent, translate(im.parentNode)]));
  const textAt = new Map(labels.map((t) => [t.textContent, translate(t.parentNode)]));
  const at = (k: number) => imgAt.get(images[k].label)!;
  // 4 columns x 3 rows, row-major: x grows along a row, y grows down the rows.
  assert.ok(at(0)[0] < at(1)[0] && at(1)[0] < at(2)[0] && at(2)[0] < at(3)[0]);
  assert.equal(at(0)[1], at(3)[1]);
  assert.equal(at(4)[0], at(0)[0]);
  assert.ok(at(0)[1] < at(4)[1] && at(4)[1] < at(8)[1]);
  for (const img of images) assert.deepEqual(textAt.get(img.label), imgAt.get(img.label));

  const k = imgs.findIndex((im) => im.querySelector("title").textContent === images[3].label);
  const href = imgs[k].getAttribute("href") as string;
  assert.match(href, /^data:image\/png;base64,/);
  const png = Uint8Array.from(atob(href.split(",")[1]), (c) => c.charCodeAt(0));
  const meta = await sharp(png).metadata();
  assert.deepEqual([meta.format, meta.width, meta.height, meta.channels], ["png", 48, 48, 1]);
  // The embedded pixels are the input pixels.
  const raw = await sharp(png).extractChannel(0).raw().toBuffer();
  assert.deepEqual(new Uint8Array(raw), images[3].pixels);
  assert.equal(title(doc), "Sample images");
});

Deno.test("sampleGridPlot: RGB faces and bad buffers", async () => {
  const doc = await parseSvg(await sampleGridPlot([{ ...face(1, 3), label: "rgb" }]));
  assert.equal(all(doc, "image").length, 1);
  await assert.rejects(
    () => pixelsToDataUri({ pixels: new Uint8Array(10), width: 48, height: 48, channels: 1 }),
    /10 values; expected 48x48x1 = 2304/,
  );
  await assert.rejects(() => sampleGridPlot([]), /no images/);
});

function rectHeights(doc: Node, selector: string): number[] {
  return all(doc, selector).map((r) => Number(r.getAttribute("height")));
}

Deno.test("pixelHistogramPlot: bins and shares of a single array", async () => {
  // 3 of 4 pixels in the lower half: with 2 bins the first bar is 3x as tall as the second.
  const doc = await parseSvg(pixelHistogramPlot(new Uint8Array([0, 10, 100, 255]), { bins: 2 }));
  const heights = rectHeights(doc, 'g[aria-label="rect"] rect');
  assert.equal(heights.length, 2);
  assert.ok(Math.abs(heights[0] / heights[1] - 3) < 1e-6, `${heights}`);
  assert.equal(title(doc), "Pixel intensities");
  assert.ok(axisText(doc).includes("Pixel intensity"));

  const uniform = Uint8Array.from({ length: 256 * 4 }, (_, i) => i % 256);
  const doc32 = await parseSvg(pixelHistogramPlot(uniform));
  const h32 = rectHeights(doc32, 'g[aria-label="rect"] rect');
  assert.equal(h32.length, 32);
  assert.ok(h32.every((h) => Math.abs(h - h32[0]) < 1e-6));
});

Deno.test("pixelHistogramPlot: per-class lines and mean intensities", async () => {
  const byClass = {
    dark: new Uint8Array([0, 10, 20]),
    mid: new Uint8Array([100, 128, 156]),
    light: new Uint8Array([250, 255, 245]),
  };
  const doc = await parseSvg(pixelHistogramPlot(byClass, { bins: 8 }));
  assert.equal(all(doc, 'g[aria-label="line"] path').length, 3);
  assert.equal(all(doc, 'g[aria-label="bar"] rect').length, 3);
  assert.deepEqual(texts(doc, 'g[aria-label="text"] text'), ["10.0", "128.0", "250.0"]);
  assert.deepEqual(legend(doc), ["all classes", "dark", "mid", "light"]);
  assert.equal(title(doc), "Pixel intensities by class");
  assert.throws(() => pixelHistogramPlot({}), /no values/);
});

const HISTORY = [
  { epoch: 1, train_acc: 0.4, val_acc: 0.35, train_loss: 1.6, val_loss: 1.7 },
  { epoch: 2, train_acc: 0.55, val_acc: 0.5, train_loss: 1.2, val_loss: 1.3 },
  { epoch: 3, train_acc: 0.65, val_acc: 0.7, train_loss: 0.9, val_loss: 1.1 },
  { epoch: 4, train_acc: 0.75, val_acc: 0.6, train_loss: 0.7, val_loss: 1.25 },
];

Deno.test("accuracyCurvesPlot: train and val lines, best val epoch marked", async () => {
  const doc = await parseSvg(accuracyCurvesPlot(HISTORY));
  const lines = all(doc, 'g[aria-label="line"] path');
  assert.equal(lines.length, 2);
  assert.equal(new Set(lines.map((l) => l.getAttribute("stroke"))).size, 2);
  // Each line has one vertex per epoch (M + 3 L).
  for (const l of lines) assert.equal((l.getAttribute("d").match(/[ML]/g) ?? []).length, 4);
  assert.deepEqual(texts(doc, 'g[aria-label="text"] text'), ["best val 70.0% (epoch 3)"]);
  assert.deepEqual(legend(doc), ["train", "val"]);
  assert.equal(title(doc), "Accuracy per epoch");
  const axes = axisText(doc);
  assert.ok(axes.includes("Epoch") && axes.includes("Accuracy (%)"), axes);

  // Only train values: one line, best train marked.
  const trainOnly = await parseSvg(
    accuracyCurvesPlot(HISTORY.map(({ epoch, train_acc }) => ({ epoch, train_acc }))),
  );
  assert.equal(all(trainOnly, 'g[aria-label="line"] path').length, 1);
  assert.deepEqual(texts(trainOnly, 'g[aria-label="text"] text'), ["best train 75.0% (epoch 4)"]);
  assert.throws(() => accuracyCurvesPlot([{ epoch: 1 }]), /no finite/);
});

Deno.test("accuracyVsCpuHoursPlot: a line per run over cumulative CPU-hours, best points circled, references", async () => {
  const svg = accuracyVsCpuHoursPlot([
    {
      run: "a",
      points: [{ cpuHours: 0.5, valAcc: 0.4 }, { cpuHours: 1, valAcc: 0.6 }, { cpuHours: 1.5, valAcc: 0.55 }],
    },
    {
      run: "b",
      points: [{ cpuHours: 0.2, valAcc: 0.3 }, { cpuHours: 0.4, valAcc: 0.5 }, { cpuHours: NaN, valAcc: 1 }],
    },
  ], { references: [{ label: "target 70%", value: 0.7 }] });
  const doc = await parseSvg(svg);
  const lines = all(doc, 'g[aria-label="line"] path');
  assert.equal(lines.length, 2);
  // a: 3 vertices; b: 2 (the point without CPU-hours is dropped)
  assert.deepEqual(lines.map((l) => (l.getAttribute("d").match(/[ML]/g) ?? []).length).sort(), [2, 3]);
  assert.equal(all(doc, 'g[aria-label="dot"] circle').length, 2);
  assert.equal(all(doc, 'g[aria-label="rule"] line').length, 1);
  assert.deepEqual(texts(doc, 'g[aria-label="text"] text'), ["target 70%"]);
  assert.deepEqual(legend(doc), ["a", "b"]);
  assert.equal(title(doc), "Validation accuracy per CPU-hour");
  assert.match(svg, /best \(circled\): a 60\.0% at 1\.0 CPU-h; b 50\.0% at 0\.4 CPU-h/);
  const axes = axisText(doc);
  assert.ok(axes.includes("Validation accuracy (%)") && axes.includes("CPU-hours"), axes);
  assert.throws(() => accuracyVsCpuHoursPlot([{ run: "x", points: [] }]), /no run has CPU-hours/);
});

Deno.test("lossCurvesPlot: lowest val loss marked", async () => {
  const doc = await parseSvg(lossCurvesPlot(HISTORY, { title: "Loss (run 7)" }));
  assert.equal(all(doc, 'g[aria-label="line"] path').length, 2);
  assert.deepEqual(texts(doc, 'g[aria-label="text"] text'), ["best val 1.100 (epoch 3)"]);
  assert.equal(title(doc), "Loss (run 7)");
  assert.ok(axisText(doc).includes("Loss"));
});

Deno.test("confusionMatrixPlot: 49 cells and counts, true on y, predicted on x", async () => {
  const m = CLASSES.map((_, i) => CLASSES.map((_, j) => i * 7 + j + (i === j ? 100 : 0)));
  const doc = await parseSvg(confusionMatrixPlot(m, CLASSES));
  assert.equal(all(doc, 'g[aria-label="cell"] rect').length, 49);
  const labels = all(doc, 'g[aria-label="text"] text');
  assert.equal(labels.length, 49);
  const byValue = new Map(labels.map((t) => [Number(t.textContent), translate(t)]));
  assert.equal(byValue.size, 49);
  // Same true class (row) -> same y, x grows with the predicted class; same predicted -> same x.
  for (let i = 0; i < 7; i++) {
    for (let j = 1; j < 7; j++) {
      const a = byValue.get(m[i][j - 1])!;
      const b = byValue.get(m[i][j])!;
      assert.equal(a[1], b[1]);
      assert.ok(b[0] > a[0]);
      const up = byValue.get(m[j - 1][i])!;
      const down = byValue.get(m[j][i])!;
      assert.equal(up[0], down[0]);
      assert.ok(down[1] > up[1]);
    }
  }
  // Each cell rect (titled "true X, predicted Y") contains the label of matrix[X][Y].
  for (const rect of all(doc, 'g[aria-label="cell"] rect')) {
    const [, t, p] = /^true (\w+), predicted (\w+):/.exec(rect.querySelector("title").textContent)!;
    const [tx, ty] = byValue.get(m[CLASSES.indexOf(t)][CLASSES.indexOf(p)])!;
    const [x, y, w, h] = ["x", "y", "width", "height"].map((a) => Number(rect.getAttribute(a)));
    assert.ok(tx >= x && tx <= x + w && ty >= y && ty <= y + h, `${t}/${p}`);
  }
  const axes = axisText(doc);
  assert.ok(axes.includes("True label") && axes.includes("Predicted label"), axes);
  assert.equal(title(doc), "Confusion matrix");
  const total = m.flat().reduce((a, b) => a + b, 0);
  const correct = m.reduce((s, r, i) => s + r[i], 0);
  assert.ok(doc.querySelector("text.fer-subtitle").textContent.includes(`(${correct}/${total})`));
  // Darker cells for larger counts: the diagonal cells differ in fill from the smallest off-diagonal cell.
  const fills = all(doc, 'g[aria-label="cell"] rect').map((r) => r.getAttribute("fill"));
  assert.notEqual(fills[0], fills[1]);
});

Deno.test("confusionMatrixPlot: normalize writes rates and counts; shape errors", async () => {
  const doc = await parseSvg(confusionMatrixPlot([[3, 1], [0, 4]], ["a", "b"], { normalize: true }));
  const labels = all(doc, 'g[aria-label="text"] text').map((t) =>
    all(t, "tspan").map((s) => s.textContent).join(" ") || t.textContent
  );
  assert.deepEqual(labels, ["75% 3", "25% 1", "0% 0", "100% 4"]);
  assert.match(title(doc), /normalised/);
  assert.throws(() => confusionMatrixPlot([[1, 2]], ["a", "b"]), /must be 2x2/);
});

Deno.test("perClassF1Plot: one bar per class per model", async () => {
  const models = ["vgg13", "resnet18", "study-cnn"];
  const rows = models.flatMap((model, k) => CLASSES.map((c, i) => ({ model, class: c, f1: (i + k) / 10 })));
  const doc = await parseSvg(perClassF1Plot(rows));
  assert.equal(all(doc, 'g[aria-label="bar"] rect').length, 21 + 7);
  // "study-cnn" reads as the study's reference: its 7 bars are outlined again, dashed, in red
  assert.equal(all(doc, '[stroke-dasharray="3,2"] rect').length, 7);
  assert.deepEqual(legend(doc), models);
  assert.equal(all(doc, 'g[aria-label="text"] text').length, 21);
  assert.ok(axisText(doc).includes("F1"));
  assert.equal(title(doc), "Per-class F1");
  assert.throws(() => perClassF1Plot([]), /no rows/);
});

Deno.test("comparisonPlot: value ticks over interval bands per metric, the study as references, axis from 0", async () => {
  const rows = [
    { model: "vgg13", metric: "accuracy", value: 0.68, lo: 0.665, hi: 0.695 },
    { model: "vgg13", metric: "macro-F1", value: 0.66, lo: 0.645, hi: 0.675 },
    { model: "resnet18", metric: "accuracy", value: 0.31, lo: 0.295, hi: 0.325 },
    { model: "resnet18", metric: "macro-F1", value: 0.29, lo: 0.275, hi: 0.305 },
    { model: "study: published", metric: "accuracy", value: 0.66, lo: NaN, hi: NaN },
    { model: "study: published", metric: "macro-F1", value: 0.64, lo: NaN, hi: NaN },
  ];
  const doc = await parseSvg(comparisonPlot(rows));
  // one tick per run value, one diamond per reference
  assert.equal(all(doc, 'g[aria-label="tick"] line').length, 4);
  assert.equal(all(doc, 'g[aria-label="dot"] path').length, 2);
  // 4 interval bands (the study rows have no interval); no dashed reference lines across the panels
  const rules = all(doc, 'g[aria-label="rule"] line');
  assert.equal(rules.length, 4);
  assert.equal(all(doc, "[stroke-dasharray]").length, 0);
  // every value is labelled with its interval, references say they are published values
  assert.deepEqual(
    texts(doc, 'g[aria-label="text"] text').sort(),
    [
      "68.0% (66.5–69.5)",
      "66.0% (64.5–67.5)",
      "31.0% (29.5–32.5)",
      "29.0% (27.5–30.5)",
      "66.0% published",
      "64.0% published",
    ].sort(),
  );
  const axes = axisText(doc);
  for (const s of ["accuracy", "macro-F1", "vgg13", "resnet18", "study: published"]) {
    assert.ok(axes.includes(s), s);
  }
  // The axis starts at 0 and ends at 100 %.
  const ticks = texts(doc, 'g[aria-label="x-axis tick label"] text');
  assert.equal(ticks[0], "0");
  assert.equal(ticks[ticks.length - 1], "100");
  assert.deepEqual(legend(doc), [
    "value (tick) and 95% interval (band)",
    "the study's published value (no interval)",
  ]);
  // The band spans [lo, hi]: every interval here is 3 points wide, so every band has the same length.
  const spans = rules.map((r) => Number(r.getAttribute("x2")) - Number(r.getAttribute("x1")));
  assert.ok(spans.every((s) => Math.abs(s - spans[0]) < 1e-6 && s > 0), `${spans}`);
  assert.ok(
    isReferenceModel("Study: paper") && !isReferenceModel("studying") && !isReferenceModel("seed: 1"),
  );
});

Deno.test("saveFigure: writes svg and png atomically", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const svg = confusionMatrixPlot([[5, 1], [2, 7]], ["a", "b"]);
    const out = await saveFigure(svg, `${dir}/figs/cm`, { png: true });
    assert.deepEqual(out, { svg: `${dir}/figs/cm.svg`, png: `${dir}/figs/cm.png` });
    const names = [...Deno.readDirSync(`${dir}/figs`)].map((e) => e.name).sort();
    assert.deepEqual(names, ["cm.png", "cm.svg"]);
    const written = await Deno.readTextFile(out.svg);
    assert.ok(written.startsWith('<?xml version="1.0" encoding="UTF-8"?>\n<svg'));
    assert.ok(written.endsWith(svg));
    const meta = await sharp(out.png!).metadata();
    const svgMeta = await sharp(out.svg).metadata();
    assert.equal(meta.format, "png");
    assert.equal(meta.width, svgMeta.width! * 2);
    assert.equal(meta.height, svgMeta.height! * 2);
    // The render is not blank: the dark diagonal cells make the image far from uniformly white.
    const stats = await sharp(out.png!).stats();
    assert.ok(stats.channels[0].min < 100, `min ${stats.channels[0].min}`);

    const only = await saveFigure(svg, `${dir}/plain.svg`);
    assert.deepEqual(only, { svg: `${dir}/plain.svg` });
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name).sort(), ["figs", "plain.svg"]);

    // A broken SVG fails before anything is written and leaves no temp files.
    await assert.rejects(() => saveFigure("<svg><g></svg>", `${dir}/bad`, { png: true }));
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name).sort(), ["figs", "plain.svg"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("compose: a title too long for the width wraps instead of being cut", async () => {
  const long = "Confusion matrix (test) — efficientnet_b3_label_smoothing-2026-11-28T17-15-36";
  const doc = await parseSvg(confusionMatrixPlot([[1, 0], [0, 1]], ["a", "b"], { title: long }));
  const spans = all(doc, "text.fer-title tspan");
  assert.ok(spans.length >= 2, "wrapped");
  assert.equal(title(doc), long); // the lines join back to the title
  for (const s of spans) assert.ok(s.textContent.trimEnd().length * 16 * 0.66 <= 640 - 16, s.textContent);
  // short titles stay on one line
  const short = await parseSvg(confusionMatrixPlot([[1, 0], [0, 1]], ["a", "b"], { title: "CM" }));
  assert.equal(all(short, "text.fer-title tspan").length, 0);
});
