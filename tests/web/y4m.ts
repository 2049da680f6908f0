/** A Y4M (YUV4MPEG2, 4:2:0) clip writer for Chromium's fake camera (`--use-file-for-fake-video-capture`). */

/** RGB frames (same size, even width and height) -> Y4M bytes at `fps`; BT.601 studio-range YUV. */
export function y4m(frames: Uint8Array[], width: number, height: number, fps = 10): Uint8Array {
  if (width % 2 || height % 2) throw new RangeError(`Y4M 4:2:0 needs even sizes, got ${width}×${height}`);
  const header = new TextEncoder().encode(`YUV4MPEG2 W${width} H${height} F${fps}:1 Ip A1:1 C420jpeg\n`);
  const tag = new TextEncoder().encode("FRAME\n");
  const planeY = width * height, planeC = planeY / 4;
  const out = new Uint8Array(header.length + frames.length * (tag.length + planeY + 2 * planeC));
  out.set(header, 0);
  let o = header.length;
  const clamp = (v: number) => Math.max(0, Math.min(255, Math.round(v)));
  for (const rgb of frames) {
    out.set(tag, o);
    o += tag.length;
    const Y = out.subarray(o, o + planeY), U = out.subarray(o + planeY, o + planeY + planeC);
    const V = out.subarray(o + planeY + planeC, o + planeY + 2 * planeC);
    for (let i = 0; i < planeY; i++) {
      const r = rgb[3 * i], g = rgb[3 * i + 1], b = rgb[3 * i + 2];
      Y[i] = clamp(16 + 0.257 * r + 0.504 * g + 0.098 * b);
    }
    for (let y = 0; y < height / 2; y++) {
      for (let x = 0; x < width / 2; x++) {
        let r = 0, g = 0, b = 0;
        for (const [dy, dx] of [[0, 0], [0, 1], [1, 0], [1, 1]]) {
          const p = ((2 * y + dy) * width + 2 * x + dx) * 3;
          r += rgb[p] / 4;
          g += rgb[p + 1] / 4;
          b += rgb[p + 2] / 4;
        }
        U[y * (width / 2) + x] = clamp(128 - 0.148 * r - 0.291 * g + 0.439 * b);
        V[y * (width / 2) + x] = clamp(128 + 0.439 * r - 0.368 * g - 0.071 * b);
      }
    }
    o += planeY + 2 * planeC;
  }
  return out;
}
