/**
 * NHWC 2-D convolution (forward, backprop-input, backprop-filter) and depthwise convolution on Float32Arrays,
 * written against a {@link Gemm} so OpenBLAS (native backend) or the JS GEMM (wasm gradients) can drive them.
 *
 * Two GEMM lowerings, chosen per call:
 *
 * - "shifted GEMM" for stride 1 (any kernel size, padding, dilation) when the input has >= 8 channels: view
 *   the zero-padded batch as a flat [N*Hp*Wp, C] matrix; the output pixel at padded row r is the sum over
 *   taps (i, j) of row r + i*dh*Wp + j*dw times W[i, j], so each tap is one GEMM over the whole batch whose
 *   A operand is the padded input shifted by a row offset (beta = 1 accumulation), then crop. The fw taps of
 *   one kernel row are merged along K (see rowTaps): fh GEMMs with K = fw*C, on a fw x copy instead of
 *   im2col's fh*fw x copy. The cost is computing the (Hp*Wp - H*W) border rows, ~8% at 48x48, ~78% at 6x6.
 *   For C = 1 (first layer) K would be tiny, hence the channel threshold.
 *   Backprop-input is the forward scheme on dy with the flipped, transposed filter;
 *   backprop-filter is one A^T B GEMM per kernel row. Work is chunked over images to bound memory.
 * - im2col + GEMM for strides > 1 and for thin inputs, in batch chunks of at most CHUNK_FLOATS so memory
 *   stays bounded; backprop-input is GEMM + col2im, backprop-filter accumulates A^T B over chunks (beta = 1).
 */
import type { Gemm } from "./gemm.ts";

/** The geometry fields of tfjs's `backend_util.Conv2DInfo` that the kernels use (channels-last only). */
export type ConvGeom = {
  batchSize: number;
  inHeight: number;
  inWidth: number;
  inChannels: number;
  outHeight: number;
  outWidth: number;
  outChannels: number;
  strideHeight: number;
  strideWidth: number;
  dilationHeight: number;
  dilationWidth: number;
  filterHeight: number;
  filterWidth: number;
  padInfo: { top: number; left: number };
};

/** Upper bound (floats) on the im2col buffer / shifted-GEMM output chunk (16 MiB). */
const CHUNK_FLOATS = 1 << 22;

/** Whether the shifted-GEMM lowering applies (see module comment). */
export function useShifted(g: ConvGeom): boolean {
  return g.strideHeight === 1 && g.strideWidth === 1 && g.inChannels >= 8;
}

function paddedDims(g: ConvGeom): [number, number] {
  return [
    g.outHeight + (g.filterHeight - 1) * g.dilationHeight,
    g.outWidth + (g.filterWidth - 1) * g.dilationWidth,
  ];
}

/** Forward convolution: x [N,H,W,C] * w [fh,fw,C,Co] -> y [N,oh,ow,Co]. */
export function conv2d(x: Float32Array, w: Float32Array, g: ConvGeom, gemm: Gemm): Float32Array {
  return useShifted(g) ? conv2dShifted(x, w, g, gemm) : conv2dIm2col(x, w, g, gemm);
}

/** Gradient w.r.t. the input: dy [N,oh,ow,Co], w [fh,fw,C,Co] -> dx [N,H,W,C]. */
export function conv2dBackpropInput(
  dy: Float32Array,
  w: Float32Array,
  g: ConvGeom,
  gemm: Gemm,
): Float32Array {
  return useShifted(g) ? backpropInputShifted(dy, w, g, gemm) : backpropInputIm2col(dy, w, g, gemm);
}

/** Gradient w.r.t. the filter: x [N,H,W,C], dy [N,oh,ow,Co] -> dw [fh,fw,C,Co]. */
export function conv2dBackpropFilter(
  x: Float32Array,
  dy: Float32Array,
  g: ConvGeom,
  gemm: Gemm,
): Float32Array {
  return useShifted(g) ? backpropFilterShifted(x, dy, g, gemm) : backpropFilterIm2col(x, dy, g, gemm);
}

/**
 * Row-tap matrix for images n0..n0+nb-1: row r (padded coordinates b, hp, wp) holds the fw input pixels
 * x[b, hp-top, wp-left + j*dw] (j = 0..fw-1, zeros outside), i.e. the padded input with one kernel row's
 * taps merged along K. One GEMM per kernel row then has K = fw*C instead of C (measured on this machine:
 * 160000x64x64 ran at 17-26 GFLOP/s, 160000x64x192 at 40; 40000x128x128 at 32, 40000x128x384 at 62), for
 * a copy of fw x the input instead of im2col's fh*fw x.
 */
function rowTaps(x: Float32Array, g: ConvGeom, hp: number, wp: number, n0: number, nb: number): Float32Array {
  const { inHeight: h, inWidth: w, inChannels: c, filterWidth: fw, dilationWidth: dw } = g;
  const { top, left } = g.padInfo;
  const k = fw * c;
  const out = new Float32Array(nb * hp * wp * k);
  for (let b = 0; b < nb; b++) {
    for (let r = 0; r < h; r++) {
      const rp = r + top;
      if (rp >= hp) break;
      const src = ((n0 + b) * h + r) * w * c;
      const rowBase = (b * hp + rp) * wp;
      for (let j = 0; j < fw; j++) {
        // pixel iw goes to padded column q with q + j*dw - left = iw
        const q0 = Math.max(0, left - j * dw);
        const q1 = Math.min(wp, w + left - j * dw);
        for (let q = q0; q < q1; q++) {
          const iw = q + j * dw - left;
          const dst = (rowBase + q) * k + j * c;
          if (c < 16) { for (let z = 0; z < c; z++) out[dst + z] = x[src + iw * c + z]; }
          else out.set(x.subarray(src + iw * c, src + iw * c + c), dst);
        }
      }
    }
  }
  return out;
}

function shiftedChunk(g: ConvGeom, hp: number, wp: number): number {
  const per = hp * wp * g.filterWidth * Math.max(g.inChannels, g.outChannels);
  return Math.max(1, Math.min(g.batchSize, Math.floor(CHUNK_FLOATS / per)));
}

function conv2dShifted(x: Float32Array, w: Float32Array, g: ConvGeom, gemm: Gemm): Float32Array {
  const { batchSize: n, inChannels: c, outChannels: co, outHeight: oh, outWidth: ow } = g;
  const { filterHeight: fh, filterWidth: fw, dilationHeight: dh } = g;
  const [hp, wp] = paddedDims(g);
  const hw = hp * wp, k = fw * c;
  const y = new Float32Array(n * oh * ow * co);
  const chunk = shiftedChunk(g, hp, wp);
  const yp = new Float32Array(chunk * hw * co);
  for (let n0 = 0; n0 < n; n0 += chunk) {
    const nb = Math.min(chunk, n - n0);
    const xw = rowTaps(x, g, hp, wp, n0, nb);
    const rv = (nb - 1) * hw + (oh - 1) * wp + ow;
    for (let i = 0; i < fh; i++) {
      gemm(
        false,
        false,
        rv,
        co,
        k,
        1,
        xw.subarray(i * dh * wp * k),
        k,
        w.subarray(i * k * co),
        co,
        i ? 1 : 0,
        yp,
        co,
      );
    }
    for (let b = 0; b < nb; b++) {
      for (let r = 0; r < oh; r++) {
        const src = (b * hw + r * wp) * co;
        y.set(yp.subarray(src, src + ow * co), (((n0 + b) * oh + r) * ow) * co);
      }
    }
  }
  return y;
}

/**
 * Stride-1 backprop-input is a stride-1 forward convolution of dy with the spatially flipped,
 * in/out-transposed filter and complementary padding ((fh-1)*dh - top, ...), so it reuses the forward
 * row-tap GEMMs (measured faster than a dedicated transposed-B scheme: 350 vs 509 ms on 48x48x64, batch 64).
 */
function backpropInputShifted(dy: Float32Array, w: Float32Array, g: ConvGeom, gemm: Gemm): Float32Array {
  const { filterHeight: fh, filterWidth: fw, inChannels: c, outChannels: co } = g;
  const wf = new Float32Array(w.length);
  for (let i = 0; i < fh; i++) {
    for (let j = 0; j < fw; j++) {
      const src = (i * fw + j) * c * co, dst = ((fh - 1 - i) * fw + (fw - 1 - j)) * co * c;
      for (let z = 0; z < c; z++) for (let o = 0; o < co; o++) wf[dst + o * c + z] = w[src + z * co + o];
    }
  }
  const gt: ConvGeom = {
    ...g,
    inHeight: g.outHeight,
    inWidth: g.outWidth,
    inChannels: co,
    outHeight: g.inHeight,
    outWidth: g.inWidth,
    outChannels: c,
    padInfo: {
      top: (fh - 1) * g.dilationHeight - g.padInfo.top,
      left: (fw - 1) * g.dilationWidth - g.padInfo.left,
    },
  };
  return conv2dShifted(dy, wf, gt, gemm);
}

function backpropFilterShifted(x: Float32Array, dy: Float32Array, g: ConvGeom, gemm: Gemm): Float32Array {
  const { batchSize: n, inChannels: c, outChannels: co, outHeight: oh, outWidth: ow } = g;
  const { filterHeight: fh, filterWidth: fw, dilationHeight: dh } = g;
  const [hp, wp] = paddedDims(g);
  const hw = hp * wp, k = fw * c;
  const dwt = new Float32Array(fh * k * co);
  const chunk = shiftedChunk(g, hp, wp);
  for (let n0 = 0; n0 < n; n0 += chunk) {
    const nb = Math.min(chunk, n - n0);
    const xw = rowTaps(x, g, hp, wp, n0, nb);
    const rv = (nb - 1) * hw + (oh - 1) * wp + ow;
    const dyf = new Float32Array(rv * co);
    for (let b = 0; b < nb; b++) {
      for (let r = 0; r < oh; r++) {
        const src = (((n0 + b) * oh + r) * ow) * co;
        dyf.set(dy.subarray(src, src + ow * co), (b * hw + r * wp) * co);
      }
    }
    for (let i = 0; i < fh; i++) {
      gemm(
        true,
        false,
        k,
        co,
        rv,
        1,
        xw.subarray(i * dh * wp * k),
        k,
        dyf,
        co,
        n0 ? 1 : 0,
        dwt.subarray(i * k * co),
        co,
      );
    }
  }
  return dwt;
}

/** Fill cols [nb*oh*ow, fh*fw*C] for images n0..n0+nb-1 (zeros where the window leaves the input). */
function im2col(x: Float32Array, g: ConvGeom, n0: number, nb: number, cols: Float32Array): void {
  const { inHeight: h, inWidth: w, inChannels: c, outHeight: oh, outWidth: ow } = g;
  const { filterHeight: fh, filterWidth: fw, dilationHeight: dh, dilationWidth: dw } = g;
  const { strideHeight: sh, strideWidth: sw } = g;
  const { top, left } = g.padInfo;
  let p = 0;
  for (let b = n0; b < n0 + nb; b++) {
    for (let r = 0; r < oh; r++) {
      for (let q = 0; q < ow; q++) {
        for (let i = 0; i < fh; i++) {
          const ih = r * sh - top + i * dh;
          const rowOk = ih >= 0 && ih < h;
          for (let j = 0; j < fw; j++) {
            const iw = q * sw - left + j * dw;
            if (rowOk && iw >= 0 && iw < w) {
              const src = ((b * h + ih) * w + iw) * c;
              if (c < 16) { for (let k = 0; k < c; k++) cols[p + k] = x[src + k]; }
              else cols.set(x.subarray(src, src + c), p);
            } else {
              cols.fill(0, p, p + c);
            }
            p += c;
          }
        }
      }
    }
  }
}

/** Add cols [nb*oh*ow, fh*fw*C] back into dx (the adjoint of {@link im2col}). */
function col2im(cols: Float32Array, g: ConvGeom, n0: number, nb: number, dx: Float32Array): void {
  const { inHeight: h, inWidth: w, inChannels: c, outHeight: oh, outWidth: ow } = g;
  const { filterHeight: fh, filterWidth: fw, dilationHeight: dh, dilationWidth: dw } = g;
  const { strideHeight: sh, strideWidth: sw } = g;
  const { top, left } = g.padInfo;
  let p = 0;
  for (let b = n0; b < n0 + nb; b++) {
    for (let r = 0; r < oh; r++) {
      for (let q = 0; q < ow; q++) {
        for (let i = 0; i < fh; i++) {
          const ih = r * sh - top + i * dh;
          const rowOk = ih >= 0 && ih < h;
          for (let j = 0; j < fw; j++) {
            const iw = q * sw - left + j * dw;
            if (rowOk && iw >= 0 && iw < w) {
              const dst = ((b * h + ih) * w + iw) * c;
              for (let k = 0; k < c; k++) dx[dst + k] += cols[p + k];
            }
            p += c;
          }
        }
      }
    }
  }
}

function im2colChunk(g: ConvGeom): number {
  const perImg = g.outHeight * g.outWidth * g.filterHeight * g.filterWidth * g.inChannels;
  return Math.max(1, Math.min(g.batchSize, Math.floor(CHUNK_FLOATS / Math.max(1, perImg))));
}

function conv2dIm2col(x: Float32Array, w: Float32Array, g: ConvGeom, gemm: Gemm): Float32Array {
  const { batchSize: n, outHeight: oh, outWidth: ow, outChannels: co } = g;
  const k = g.filterHeight * g.filterWidth * g.inChannels;
  const y = new Float32Array(n * oh * ow * co);
  const chunk = im2colChunk(g);
  const cols = new Float32Array(chunk * oh * ow * k);
  for (let n0 = 0; n0 < n; n0 += chunk) {
    const nb = Math.min(chunk, n - n0);
    im2col(x, g, n0, nb, cols);
    const rows = nb * oh * ow;
    gemm(false, false, rows, co, k, 1, cols, k, w, co, 0, y.subarray(n0 * oh * ow * co), co);
  }
  return y;
}

function backpropInputIm2col(dy: Float32Array, w: Float32Array, g: ConvGeom, gemm: Gemm): Float32Array {
  const { batchSize: n, outHeight: oh, outWidth: ow, outChannels: co } = g;
  const k = g.filterHeight * g.filterWidth * g.inChannels;
  const dx = new Float32Array(n * g.inHeight * g.inWidth * g.inChannels);
  const chunk = im2colChunk(g);
  const cols = new Float32Array(chunk * oh * ow * k);
  for (let n0 = 0; n0 < n; n0 += chunk) {
    const nb = Math.min(chunk, n - n0);
    const rows = nb * oh * ow;
    gemm(false, true, rows, k, co, 1, dy.subarray(n0 * oh * ow * co), co, w, co, 0, cols, k);
    col2im(cols, g, n0, nb, dx);
  }
  return dx;
}

function backpropFilterIm2col(x: Float32Array, dy: Float32Array, g: ConvGeom, gemm: Gemm): Float32Array {
  const { batchSize: n, outHeight: oh, outWidth: ow, outChannels: co } = g;
  const k = g.filterHeight * g.filterWidth * g.inChannels;
  const dw = new Float32Array(k * co);
  const chunk = im2colChunk(g);
  const cols = new Float32Array(chunk * oh * ow * k);
  for (let n0 = 0; n0 < n; n0 += chunk) {
    const nb = Math.min(chunk, n - n0);
    im2col(x, g, n0, nb, cols);
    const rows = nb * oh * ow;
    gemm(true, false, k, co, rows, 1, cols, k, dy.subarray(n0 * oh * ow * co), co, n0 === 0 ? 0 : 1, dw, co);
  }
  return dw;
}

/**
 * Visit every (output position, filter tap) pair of a depthwise convolution whose input pixel lies inside
 * the image, with the NHWC offsets of the output (C*M channels), input (C) and filter tap (C*M). The three
 * depthwise kernels below share this traversal and differ only in their channel loop.
 */
function forEachDepthwiseTap(g: ConvGeom, mult: number, visit: (yo: number, xo: number, wo: number) => void) {
  const { batchSize: n, inHeight: h, inWidth: wd, inChannels: c, outHeight: oh, outWidth: ow } = g;
  const { filterHeight: fh, filterWidth: fw, dilationHeight: dh, dilationWidth: dw } = g;
  const { strideHeight: sh, strideWidth: sw } = g;
  const { top, left } = g.padInfo;
  const co = c * mult;
  for (let b = 0; b < n; b++) {
    for (let r = 0; r < oh; r++) {
      for (let q = 0; q < ow; q++) {
        const yo = ((b * oh + r) * ow + q) * co;
        for (let i = 0; i < fh; i++) {
          const ih = r * sh - top + i * dh;
          if (ih < 0 || ih >= h) continue;
          for (let j = 0; j < fw; j++) {
            const iw = q * sw - left + j * dw;
            if (iw < 0 || iw >= wd) continue;
            visit(yo, ((b * h + ih) * wd + iw) * c, (i * fw + j) * co);
          }
        }
      }
    }
  }
}

/**
 * Depthwise convolution x [N,H,W,C] * w [fh,fw,C,M] -> y [N,oh,ow,C*M]. Plain JS loops, channel-innermost
 * so the hot loop is unit-stride over C (a per-channel GEMM would have K = fh*fw, far too small for BLAS to
 * help; measured: these loops run the ConvNeXt dw7x7 layers at ~1 GFLOP/s, a minor share of the step). The
 * native engine uses oneDNN instead when it is loaded.
 */
export function depthwiseConv2d(x: Float32Array, w: Float32Array, g: ConvGeom, mult: number): Float32Array {
  const c = g.inChannels;
  const y = new Float32Array(g.batchSize * g.outHeight * g.outWidth * c * mult);
  forEachDepthwiseTap(g, mult, (yo, xo, wo) => {
    if (mult === 1) {
      for (let k = 0; k < c; k++) y[yo + k] += x[xo + k] * w[wo + k];
    } else {
      for (let k = 0; k < c; k++) {
        const xv = x[xo + k];
        const base = k * mult;
        for (let m = 0; m < mult; m++) y[yo + base + m] += xv * w[wo + base + m];
      }
    }
  });
  return y;
}

/** Depthwise gradient w.r.t. the input: dy [N,oh,ow,C*M], w [fh,fw,C,M] -> dx [N,H,W,C]. */
export function depthwiseBackpropInput(
  dy: Float32Array,
  w: Float32Array,
  g: ConvGeom,
  mult: number,
): Float32Array {
  const c = g.inChannels;
  const dx = new Float32Array(g.batchSize * g.inHeight * g.inWidth * c);
  forEachDepthwiseTap(g, mult, (yo, xo, wo) => {
    if (mult === 1) {
      for (let k = 0; k < c; k++) dx[xo + k] += dy[yo + k] * w[wo + k];
    } else {
      for (let k = 0; k < c; k++) {
        const base = k * mult;
        let s = 0;
        for (let m = 0; m < mult; m++) s += dy[yo + base + m] * w[wo + base + m];
        dx[xo + k] += s;
      }
    }
  });
  return dx;
}

/** Depthwise gradient w.r.t. the filter: x [N,H,W,C], dy [N,oh,ow,C*M] -> dw [fh,fw,C,M]. */
export function depthwiseBackpropFilter(
  x: Float32Array,
  dy: Float32Array,
  g: ConvGeom,
  mult: number,
): Float32Array {
  const c = g.inChannels;
  const dwt = new Float32Array(g.filterHeight * g.filterWidth * c * mult);
  forEachDepthwiseTap(g, mult, (yo, xo, wo) => {
    if (mult === 1) {
      for (let k = 0; k < c; k++) dwt[wo + k] += x[xo + k] * dy[yo + k];
    } else {
      for (let k = 0; k < c; k++) {
        const xv = x[xo + k];
        const base = k * mult;
        for (let m = 0; m < mult; m++) dwt[wo + base + m] += xv * dy[yo + base + m];
      }
    }
  });
  return dwt;
}
