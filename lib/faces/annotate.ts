/**
 * `--annotate`: the photo with each face's box, eye landmarks and top class drawn on it, as an SVG overlay
 * composited by sharp (librsvg renders the text with the system fonts, e.g. DejaVu Sans).
 */
import sharp from "sharp";
import { Buffer } from "node:buffer";
import type { Photo } from "./files.ts";
import { type FacePrediction, topClasses } from "./pipeline.ts";

const escape = (s: string) => s.replace(/[<>&"]/g, (c) => `&#${c.charCodeAt(0)};`);

/** The overlay for a `width`×`height` photo as an SVG document. */
export function overlaySvg(
  width: number,
  height: number,
  faces: FacePrediction[],
  classes: string[],
): string {
  const stroke = Math.max(2, Math.round(Math.min(width, height) / 200));
  const font = Math.max(11, Math.round(Math.min(width, height) / 28));
  const parts = faces.map((f, i) => {
    const [best] = topClasses(f.probs, classes, 1);
    const label = `${i + 1}: ${best.name} ${(100 * best.p).toFixed(0)}%`;
    const { x, y, width: w, height: h } = f.box;
    const ty = y - font * 1.4 >= 0 ? y - font * 1.4 : y + h;
    const eyes = [f.landmarks.rightEye, f.landmarks.leftEye]
      .map(([ex, ey]) =>
        `<circle cx="${ex.toFixed(1)}" cy="${ey.toFixed(1)}" r="${stroke}" fill="#00e0ff"/>`
      );
    return `<rect x="${x.toFixed(1)}" y="${y.toFixed(1)}" width="${w.toFixed(1)}" height="${h.toFixed(1)}" ` +
      `fill="none" stroke="#ffd000" stroke-width="${stroke}"/>${eyes.join("")}` +
      `<rect x="${x.toFixed(1)}" y="${ty.toFixed(1)}" width="${(label.length * font * 0.62).toFixed(1)}" ` +
      `height="${(font * 1.4).toFixed(1)}" fill="#000" fill-opacity="0.65"/>` +
      `<text x="${(x + font * 0.3).toFixed(1)}" y="${
        (ty + font * 1.05).toFixed(1)
      }" font-family="DejaVu Sans, sans-serif" ` +
      `font-size="${font}" fill="#fff">${escape(label)}</text>`;
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">${
    parts.join("")
  }</svg>`;
}

/** Writes the annotated photo to `out` (format from the extension: .png, .jpg, .webp). */
export async function annotatePhoto(
  photo: Photo,
  faces: FacePrediction[],
  classes: string[],
  out: string,
): Promise<void> {
  const svg = Buffer.from(overlaySvg(photo.width, photo.height, faces, classes));
  await sharp(photo.data, { raw: { width: photo.width, height: photo.height, channels: 3 } })
    .composite([{ input: svg, left: 0, top: 0 }])
    .toFile(out);
}

/** The photo with the overlay as one SVG (photo embedded as PNG), for notebooks. */
export async function annotatedSvg(
  photo: Photo,
  faces: FacePrediction[],
  classes: string[],
): Promise<string> {
  const png = await sharp(photo.data, { raw: { width: photo.width, height: photo.height, channels: 3 } })
    .png()
    .toBuffer();
  const overlay = overlaySvg(photo.width, photo.height, faces, classes);
  return overlay.replace(
    /^(<svg[^>]*>)/,
    `$1<image href="data:image/png;base64,${
      png.toString("base64")
    }" width="${photo.width}" height="${photo.height}"/>`,
  );
}

/** Gray crops [n, s, s, 1] (0..255) side by side, scaled ×`zoom`, as an SVG: what the model sees. */
export async function cropsSvg(
  crops: Float32Array | Uint8Array,
  n: number,
  size: number,
  zoom = 3,
): Promise<string> {
  const tiles = await Promise.all(Array.from({ length: n }, async (_, i) => {
    const px = Uint8Array.from(crops.subarray(i * size * size, (i + 1) * size * size), (v) => Math.round(v));
    const png = await sharp(px, { raw: { width: size, height: size, channels: 1 } }).png().toBuffer();
    const s = size * zoom;
    return `<image x="${i * (s + 8)}" y="0" width="${s}" height="${s}" style="image-rendering:pixelated" ` +
      `href="data:image/png;base64,${png.toString("base64")}"/>`;
  }));
  const w = Math.max(1, n * (size * zoom + 8) - 8);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${size * zoom}">${
    tiles.join("")
  }</svg>`;
}
