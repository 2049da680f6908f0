/**
 * The weight gradient of depthwise convolutions on WebAssembly SIMD (`depthwise.wat`), for the geometries
 * oneDNN's depthwise kernel does not take.
 *
 * Why hand-written: oneDNN 2.6's depthwise backward-weights kernel (`jit_dw`) takes filters at most 3 wide on
 * inputs at least as tall as the filter; ConvNeXt's 7×7 and EfficientNet's 5×5 depthwise convolutions (and its
 * 3×3 ones on 2×2 maps) fall to its generic convolution, which spent 11–14 ms on each of ConvNeXt-Tiny's 18
 * weight gradients at 64 px whatever their size (14% of a training step, more than the forward and
 * input-gradient passes together). This loop takes 1.2–7 ms for them, 1.8–11× faster (ConvNeXt-Tiny 220 → 54
 * ms a step, EfficientNet-B3 at 48 px 164 → 35 ms; `FER_THREADS=1 deno run -A tests/bench/depthwise.ts`). It
 * is 3–7× slower than `jit_dw` where that applies, which stays on oneDNN (lib/engine/native.ts). TF.js has no
 * faster kernel: its cpu backend's is a scalar loop per tap, as is lib/engine/kernels/conv.ts's fallback,
 * which stays for the cases this one does not take (channel multiplier ≠ 1, dilation, channels not a multiple
 * of 4, no WebAssembly SIMD).
 *
 * The sums run in float32 in another order than oneDNN's: equal to rounding, not bit for bit.
 */
import type { ConvGeom } from "../kernels/conv.ts";
import { simdModule } from "./module.ts";

/** `depthwise.wat` compiled (wabt 1.0.37, `parseWat(…, { simd: true }).toBinary({})`), base64. */
export const DEPTHWISE_WASM_BASE64 =
  "AGFzbQEAAAABEgFgDn9/f39/f39/f39/f39/AAMCAQAFAwEAAQcTAgZtZW1vcnkCAAZmaWx0ZXIAAArMBgHJBgIPfwV7IAZBAnQhDiANIA5sIQ9BACEQAkADQCAQIANPDQFBACERAkADQCARIARPDQEgASAQIARsIBFqIAVsIA5saiEWQQAhEgJAA0AgEiAOTw0BQQAhEwJAA0AgEyAKTw0BAkAgESAMbCATaiAIayEcIBxBAEggHCAHTnINACAAIBJqIBAgB2wgHGogCWwgDmxqIRcgAiASaiATIAtsIA5saiEYQQAhFAJAA0AgFEEEaiALSw0BIBggFCAObGohGyAb/QAEACEeIBsgDmr9AAQAIR8gGyAOQQF0av0ABAAhICAbIA5BA2xq/QAEACEhIBcgFCAObGohGSAWIBJqIRpBACEVAkADQCAVIAVPDQEgGv0ABAAhHSAeIBn9AAQAIB395gH95AEhHiAfIBkgDmr9AAQAIB395gH95AEhHyAgIBkgDkEBdGr9AAQAIB395gH95AEhICAhIBkgDkEDbGr9AAQAIB395gH95AEhISAZIA9qIRkgGiAOaiEaIBVBAWohFQwACwsgGyAe/QsEACAbIA5qIB/9CwQAIBsgDkEBdGogIP0LBAAgGyAOQQNsaiAh/QsEACAUQQRqIRQMAAsLIAsgFGtBA0YEQCAYIBQgDmxqIRsgG/0ABAAhHiAbIA5q/QAEACEfIBsgDkEBdGr9AAQAISAgFyAUIA5saiEZIBYgEmohGkEAIRUCQANAIBUgBU8NASAa/QAEACEdIB4gGf0ABAAgHf3mAf3kASEeIB8gGSAOav0ABAAgHf3mAf3kASEfICAgGSAOQQF0av0ABAAgHf3mAf3kASEgIBkgD2ohGSAaIA5qIRogFUEBaiEVDAALCyAbIB79CwQAIBsgDmogH/0LBAAgGyAOQQF0aiAg/QsEACALIRQLAkADQCAUIAtPDQEgGCAUIA5saiEbIBv9AAQAIR4gFyAUIA5saiEZIBYgEmohGkEAIRUCQANAIBUgBU8NASAeIBn9AAQAIBr9AAQA/eYB/eQBIR4gGSAPaiEZIBogDmohGiAVQQFqIRUMAAsLIBsgHv0LBAAgFEEBaiEUDAALCwsgE0EBaiETDAALCyASQRBqIRIMAAsLIBFBAWohEQwACwsgEEEBaiEQDAALCws=";

type Exports = { memory: WebAssembly.Memory; filter: (...args: number[]) => void };

/** Floats of input and output gradient the module holds at once (16 MiB): larger batches go in chunks. */
const CHUNK_FLOATS = 1 << 22;

let instance: Exports | null | undefined;

/** The module's instance, or null where WebAssembly SIMD is unavailable. */
function exportsOf(): Exports | null {
  if (instance === undefined) {
    const mod = simdModule(DEPTHWISE_WASM_BASE64);
    instance = mod ? new WebAssembly.Instance(mod).exports as unknown as Exports : null;
  }
  return instance;
}

/**
 * dw (TF.js layout [kh, kw, c, 1]) from NHWC x and dy of a depthwise convolution, into an array from `alloc`;
 * null when the kernel does not take the case (channel multiplier `mult` ≠ 1, dilation, channels not a
 * multiple of 4, or no WebAssembly SIMD).
 */
export function depthwiseFilterWasm(
  x: Float32Array,
  dy: Float32Array,
  g: ConvGeom,
  mult: number,
  alloc: (n: number) => Float32Array = (n) => new Float32Array(n),
): Float32Array | null {
  const { batchSize: n, inHeight: h, inWidth: w, inChannels: c, outHeight: oh, outWidth: ow } = g;
  const { filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw } = g;
  if (mult !== 1 || c % 4 !== 0 || g.dilationHeight !== 1 || g.dilationWidth !== 1) return null;
  const e = exportsOf();
  if (!e) return null;
  const pl = g.padInfo.left, wp = (ow - 1) * sw + kw;
  const cols = Math.min(w, wp - pl); // input columns the filter reaches
  const xImg = h * wp * c, dyImg = oh * ow * c, accLen = kh * kw * c;
  const nb = Math.max(1, Math.min(n, Math.floor(CHUNK_FLOATS / (xImg + dyImg))));
  const dyAt = nb * xImg, accAt = dyAt + nb * dyImg;
  const pages = Math.ceil(((accAt + accLen) * 4) / 65536) - e.memory.buffer.byteLength / 65536;
  try {
    if (pages > 0) e.memory.grow(pages);
  } catch {
    return null; // an image too large for 32-bit WebAssembly memory: the caller's other kernels take it
  }
  const f = new Float32Array(e.memory.buffer);
  f.fill(0, accAt, accAt + accLen);
  for (let b0 = 0; b0 < n; b0 += nb) {
    const cnt = Math.min(nb, n - b0);
    if (cols < wp) f.fill(0, 0, cnt * xImg); // the padding columns
    for (let b = 0; b < cnt; b++) {
      for (let y = 0; y < h; y++) {
        const from = ((b0 + b) * h + y) * w * c;
        f.set(x.subarray(from, from + cols * c), ((b * h + y) * wp + pl) * c);
      }
    }
    f.set(dy.subarray(b0 * dyImg, (b0 + cnt) * dyImg), dyAt);
    e.filter(0, dyAt * 4, accAt * 4, cnt, oh, ow, c, h, g.padInfo.top, wp, kh, kw, sh, sw);
  }
  const out = alloc(accLen);
  out.set(f.subarray(accAt, accAt + accLen));
  return out;
}
