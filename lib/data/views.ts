/**
 * The geometry of evaluation views: torchvision's centre-crop offset and the test-time-augmentation views (centre
 * crop, mirror, five_crop, ten_crop) as crop offsets and flips. Pure arithmetic with no imports, so that both the
 * training transforms (lib/data/augment.ts) and the platform-neutral face preprocessing of the CLI and the browser
 * demo (lib/faces/preprocess.ts) take their views from this one place.
 */

/** A deterministic evaluation view: a crop at (top, left) of the `cropFrom` image, optionally flipped. */
export type View = { top: number; left: number; flip: boolean };

/** Python's round() (half to even), as torchvision's center_crop and RandomErasing use. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** torchvision's center crop offset of a `size` crop from `n` pixels: `int(round((n - size) / 2))`. */
export function centerOffset(n: number, size: number): number {
  return roundHalfEven((n - size) / 2);
}

/** Test-time augmentation modes. */
export const TTA_MODES = ["none", "hflip", "5crop", "10crop"] as const;
/** A test-time augmentation mode. */
export type TtaMode = (typeof TTA_MODES)[number];

/**
 * The views of a TTA mode for `size` crops of a `from`×`from` image, in torchvision's order: `none` the centre
 * crop; `hflip` centre and its mirror; `5crop` top-left, top-right, bottom-left, bottom-right, centre
 * (`five_crop`); `10crop` those five, then the same five of the mirrored image (`ten_crop`, which flips the
 * whole image before cropping — so the mirrored top-left view is the mirror of the top-right crop).
 * Without crops (`from === size`) the corner crops do not exist and `5crop`/`10crop` are refused.
 */
export function ttaViews(mode: TtaMode, from: number, size: number): View[] {
  if (size > from) throw new RangeError(`crop ${size} is larger than the image ${from}`);
  const c = centerOffset(from, size);
  const center: View = { top: c, left: c, flip: false };
  const m = from - size;
  const five: View[] = [
    { top: 0, left: 0, flip: false },
    { top: 0, left: m, flip: false },
    { top: m, left: 0, flip: false },
    { top: m, left: m, flip: false },
    center,
  ];
  // the mirrored image's crop at (t, l) is the mirror of the original's crop at (t, m - l)
  const mirrored = (v: View): View => ({ top: v.top, left: m - v.left, flip: true });
  switch (mode) {
    case "none":
      return [center];
    case "hflip":
      return [center, mirrored(center)];
    case "5crop":
    case "10crop":
      if (m === 0) {
        throw new RangeError(
          `${mode} needs crops smaller than the image (crop ${size} of ${from}); use hflip`,
        );
      }
      return mode === "5crop" ? five : [...five, ...five.map(mirrored)];
    default:
      throw new RangeError(`unknown TTA mode "${mode}" (${TTA_MODES.join(", ")})`);
  }
}
