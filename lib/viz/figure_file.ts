/**
 * Figure files and rasterising: an SVG figure as a PNG (sharp/librsvg at 2x, palette-quantised so notebook
 * files stay small) and saving a figure as `.svg` beside `.png`.
 *
 * @module
 */
import sharp from "sharp";
import { dirname } from "node:path";

/** A rasterised figure: PNG bytes and the CSS size (px) it is meant to be shown at. */
export interface RasterFigure {
  png: Uint8Array;
  /** Size of the SVG in CSS px (the PNG has `scale` times as many pixels). */
  width: number;
  height: number;
}

/** The `width`/`height` attributes of an SVG root (CSS px); NaN when absent. */
export function svgSize(svg: string): { width: number; height: number } {
  const root = /<svg\b[^>]*>/.exec(svg)?.[0] ?? "";
  const attr = (name: string) => Number(new RegExp(`\\s${name}="([\\d.]+)`).exec(root)?.[1] ?? NaN);
  return { width: attr("width"), height: attr("height") };
}

/**
 * Rasterises an SVG figure with sharp (librsvg) at `scale` times its CSS size (default 2: sharp for high-DPI
 * screens). `palette` (default true) quantises to at most 256 colours, which keeps flat charts and grey faces
 * visually identical at a fraction of the size. Text needs a system font (Debian: fonts-dejavu-core).
 */
export async function svgToPng(
  svg: string,
  opts: { scale?: number; palette?: boolean } = {},
): Promise<RasterFigure> {
  const scale = opts.scale ?? 2;
  const bytes = new TextEncoder().encode(svg);
  // librsvg renders 1 CSS px as 1 px at 72 dpi.
  const png = await sharp(bytes, { density: 72 * scale })
    .png(opts.palette === false ? { compressionLevel: 9 } : { palette: true, compressionLevel: 9, effort: 7 })
    .toBuffer();
  const size = svgSize(svg);
  const meta = Number.isFinite(size.width) ? size : await sharp(png).metadata().then((m) => ({
    width: (m.width ?? 0) / scale,
    height: (m.height ?? 0) / scale,
  }));
  return { png: new Uint8Array(png), width: meta.width, height: meta.height };
}

/** Paths written by {@link saveFigure}. */
export interface SavedFigure {
  svg: string;
  png?: string;
}

async function writeAtomic(path: string, data: Uint8Array): Promise<void> {
  const tmp = `${path}.tmp-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`;
  try {
    await Deno.writeFile(tmp, data);
    await Deno.rename(tmp, path);
  } catch (err) {
    await Deno.remove(tmp).catch(() => {});
    throw err;
  }
}

/**
 * Writes `<pathWithoutExt>.svg` and, with `png: true`, `<pathWithoutExt>.png` rasterised by
 * {@link svgToPng} at `scale` (default 2). The PNG is rendered first so that a bad SVG leaves neither file
 * half-updated; each file is written to a temp name and renamed into place; parent directories are created.
 */
export async function saveFigure(
  svg: string,
  pathWithoutExt: string,
  opts: { png?: boolean; scale?: number } = {},
): Promise<SavedFigure> {
  const base = pathWithoutExt.replace(/\.(svg|png)$/i, "");
  await Deno.mkdir(dirname(base) || ".", { recursive: true });
  const out: SavedFigure = { svg: `${base}.svg` };
  const bytes = new TextEncoder().encode(
    svg.startsWith("<?xml") ? svg : `<?xml version="1.0" encoding="UTF-8"?>\n${svg}`,
  );
  const raster = !opts.png ? undefined : await svgToPng(svg, { scale: opts.scale });
  await writeAtomic(out.svg, bytes);
  if (raster) {
    out.png = `${base}.png`;
    await writeAtomic(out.png, raster.png);
  }
  return out;
}
