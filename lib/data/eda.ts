/** Exploratory-data-analysis helpers behind notebooks/01_eda.ipynb: counts, samples, pixel statistics. */
import { mean, standardDeviation } from "simple-statistics";
import { classCounts, type Dataset, type Split } from "./dataset.ts";
import { mulberry32, shuffleInPlace } from "../util/rng.ts";
import type { ClassCount, SampleImage } from "../viz/plots.ts";

/** Rows {split, class, count} for every split given, in class order. */
export function classCountRows(splits: Split[]): ClassCount[] {
  return splits.flatMap((s) =>
    Object.entries(classCounts(s)).map(([c, count]) => ({ split: s.name, class: c, count }))
  );
}

/** A one-row-per-class summary table: counts per split and each class's share of train. */
export function summaryTable(ds: Dataset): Record<string, string | number>[] {
  const tr = classCounts(ds.train);
  const te = classCounts(ds.test);
  const n = ds.train.labels.length;
  return ds.classes.map((c) => ({
    class: c,
    train: tr[c],
    test: te[c],
    "train share": `${(100 * tr[c] / n).toFixed(1)}%`,
  }));
}

/** `n` random faces of a split (seeded), labelled with their class, ready for `sampleGridPlot`. */
export function randomSamples(split: Split, n: number, seed = 0): SampleImage[] {
  const idx = shuffleInPlace(Array.from({ length: split.labels.length }, (_, i) => i), mulberry32(seed))
    .slice(0, n);
  const per = split.height * split.width * split.channels;
  return idx.map((i) => ({
    pixels: split.images.slice(i * per, (i + 1) * per),
    width: split.width,
    height: split.height,
    channels: split.channels,
    label: split.classes[split.labels[i]],
  }));
}

/** `perClass` random faces of every class (seeded), grouped by class. */
export function samplesPerClass(split: Split, perClass: number, seed = 0): SampleImage[] {
  const rand = mulberry32(seed);
  const per = split.height * split.width * split.channels;
  return split.classes.flatMap((c, label) => {
    const idx: number[] = [];
    split.labels.forEach((l, i) => l === label && idx.push(i));
    return shuffleInPlace(idx, rand).slice(0, perClass).map((i) => ({
      pixels: split.images.slice(i * per, (i + 1) * per),
      width: split.width,
      height: split.height,
      channels: split.channels,
      label: c,
    }));
  });
}

/** Pixel values per class (subsampled to at most `maxImages` images per class, seeded). */
export function pixelsByClass(split: Split, maxImages = 500, seed = 0): Record<string, Uint8Array> {
  const per = split.height * split.width * split.channels;
  const rand = mulberry32(seed);
  const out: Record<string, Uint8Array> = {};
  split.classes.forEach((c, label) => {
    const idx: number[] = [];
    split.labels.forEach((l, i) => l === label && idx.push(i));
    const chosen = shuffleInPlace(idx, rand).slice(0, maxImages);
    const px = new Uint8Array(chosen.length * per);
    chosen.forEach((i, k) => px.set(split.images.subarray(i * per, (i + 1) * per), k * per));
    out[c] = px;
  });
  return out;
}

/** Mean and standard deviation of all pixel values of a split, scaled to [0, 1] (for normalization). */
export function pixelStats(split: Split): { mean: number; std: number } {
  // simple-statistics on a plain array of per-image means would bias the std; use exact running sums.
  let s = 0;
  let s2 = 0;
  for (const v of split.images) {
    s += v;
    s2 += v * v;
  }
  const n = split.images.length;
  const m = s / n;
  return { mean: m / 255, std: Math.sqrt(Math.max(0, s2 / n - m * m)) / 255 };
}

/** Per-class mean brightness and its spread across images (0..255), via simple-statistics. */
export function brightnessByClass(split: Split): { class: string; mean: number; sd: number }[] {
  const per = split.height * split.width * split.channels;
  return split.classes.map((c, label) => {
    const means: number[] = [];
    split.labels.forEach((l, i) => {
      if (l !== label) return;
      let s = 0;
      for (let j = i * per; j < (i + 1) * per; j++) s += split.images[j];
      means.push(s / per);
    });
    return { class: c, mean: mean(means), sd: means.length > 1 ? standardDeviation(means) : 0 };
  });
}

/** Byte-identical images within a split (FER2013 has many): groups of indices sharing the same pixels. */
export function duplicateGroups(split: Split): number[][] {
  const per = split.height * split.width * split.channels;
  const seen = new Map<string, number[]>();
  for (let i = 0; i < split.labels.length; i++) {
    const px = split.images.subarray(i * per, (i + 1) * per);
    // FNV-1a over the pixels as a bucket key, confirmed by a byte comparison below.
    let h = 0x811c9dc5;
    for (let j = 0; j < px.length; j++) h = Math.imul(h ^ px[j], 0x01000193);
    const key = String(h >>> 0);
    const group = seen.get(key);
    if (group) group.push(i);
    else seen.set(key, [i]);
  }
  const groups: number[][] = [];
  for (const g of seen.values()) {
    if (g.length < 2) continue;
    // split a hash bucket into exact-equality groups
    const rest = [...g];
    while (rest.length) {
      const a = rest.shift()!;
      const pa = split.images.subarray(a * per, (a + 1) * per);
      const same = [a];
      for (let k = rest.length - 1; k >= 0; k--) {
        const b = rest[k];
        const pb = split.images.subarray(b * per, (b + 1) * per);
        if (pa.every((v, j) => v === pb[j])) same.push(b), rest.splice(k, 1);
      }
      if (same.length > 1) groups.push(same.sort((x, y) => x - y));
    }
  }
  return groups;
}
