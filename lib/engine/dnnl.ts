/**
 * oneDNN (libdnnl, the library PyTorch's CPU convolutions run on) through Deno FFI: 2-D convolutions forward,
 * backward-data and backward-weights, dense or grouped (depthwise), on TF.js's NHWC tensors.
 *
 * Why: with convolutions lowered to OpenBLAS GEMMs (kernels/conv.ts) the reference net trained at 0.28x
 * PyTorch; the convolutions were still ~70% of a step. oneDNN's JIT convolutions (AVX2/AVX-512, blocked
 * weights, OpenMP threads) are what PyTorch itself measures with, and they need no im2col buffers. The
 * OpenBLAS path stays as the fallback when libdnnl is absent or a shape is refused.
 *
 * ABI: oneDNN 2.x C API (Debian/Ubuntu `libdnnl2`, soname libdnnl.so.2); the enum values below are those of
 * its `dnnl_types.h`. oneDNN 3.x changed the descriptor API and is not used. Activations stay NHWC (`nhwc`
 * tag, no reorder); weights are TF.js's [kh, kw, in, out] (`hwio`, grouped `hwigo`) and are reordered to the
 * layout oneDNN picks (`any`) on each call, which is cheap next to the convolution.
 */
import type { ConvGeom } from "./kernels/conv.ts";

/** A convolution geometry (kernels/conv.ts) with the bottom/right padding oneDNN also needs. */
export type DnnlGeom = Omit<ConvGeom, "padInfo"> & {
  padInfo: { top: number; bottom: number; left: number; right: number };
};

// dnnl_types.h (oneDNN 2.x)
const F32 = 3;
const TAG_ANY = 1, TAG_NHWC = 20, TAG_HWIO = 30, TAG_HWIGO = 33;
const FORWARD_TRAINING = 64;
const CONV_DIRECT = 1;
const Q_IMPL_INFO = 8, Q_WEIGHTS = 131, Q_DIFF_WEIGHTS = 132;
const ARG_SRC = 1, ARG_DST = 17, ARG_WEIGHTS = 33, ARG_DIFF_SRC = 129, ARG_DIFF_DST = 145;
const ARG_DIFF_WEIGHTS = 161, ARG_FROM = 1, ARG_TO = 17;
const ENGINE_CPU = 1, STREAM_DEFAULT = 1;
const TAG_A = 2, TAG_AB = 3;
const BACKWARD = 128;
const ARG_MEAN = 49,
  ARG_VARIANCE = 50,
  ARG_SCALE = 51,
  ARG_SHIFT = 52,
  ARG_DIFF_SCALE = 255,
  ARG_DIFF_SHIFT = 256;
const BN_USE_SCALE = 8, BN_USE_SHIFT = 16;
/** Element-wise algorithms (dnnl_alg_kind_t) the engine routes to oneDNN. */
export const ELTWISE = { relu: 31, swish: 223, gelu_erf: 48, logistic: 175 } as const;
/** An element-wise algorithm name. */
export type EltwiseAlg = keyof typeof ELTWISE;
const MD_BYTES = 696; // sizeof(dnnl_memory_desc_t)
const OP_DESC_BYTES = 8192; // >= sizeof(dnnl_convolution_desc_t) (5976)

const P = "pointer", B = "buffer";
const SYMBOLS = {
  dnnl_version: { parameters: [], result: P },
  dnnl_engine_create: { parameters: [B, "i32", "usize"], result: "i32" },
  dnnl_stream_create: { parameters: [B, P, "u32"], result: "i32" },
  dnnl_stream_wait: { parameters: [P], result: "i32" },
  dnnl_memory_desc_init_by_tag: { parameters: [B, "i32", B, "i32", "i32"], result: "i32" },
  dnnl_memory_desc_equal: { parameters: [P, P], result: "i32" },
  dnnl_memory_desc_get_size: { parameters: [P], result: "usize" },
  dnnl_dilated_convolution_forward_desc_init: {
    parameters: [B, "i32", "i32", B, B, P, B, B, B, B, B],
    result: "i32",
  },
  dnnl_dilated_convolution_backward_data_desc_init: {
    parameters: [B, "i32", B, B, B, B, B, B, B],
    result: "i32",
  },
  dnnl_dilated_convolution_backward_weights_desc_init: {
    parameters: [B, "i32", B, B, P, B, B, B, B, B],
    result: "i32",
  },
  dnnl_eltwise_forward_desc_init: { parameters: [B, "i32", "i32", B, "f32", "f32"], result: "i32" },
  dnnl_eltwise_backward_desc_init: { parameters: [B, "i32", B, B, "f32", "f32"], result: "i32" },
  dnnl_batch_normalization_forward_desc_init: { parameters: [B, "i32", B, "f32", "u32"], result: "i32" },
  dnnl_batch_normalization_backward_desc_init: { parameters: [B, "i32", B, B, "f32", "u32"], result: "i32" },
  dnnl_primitive_desc_create: { parameters: [B, B, P, P, P], result: "i32" },
  dnnl_primitive_desc_query: { parameters: [P, "i32", "i32", B], result: "i32" },
  dnnl_primitive_desc_query_md: { parameters: [P, "i32", "i32"], result: P },
  dnnl_primitive_create: { parameters: [B, P], result: "i32" },
  dnnl_primitive_execute: { parameters: [P, P, "i32", B], result: "i32" },
  dnnl_reorder_primitive_desc_create: { parameters: [B, P, P, P, P, P], result: "i32" },
  dnnl_memory_create: { parameters: [B, P, P, P], result: "i32" },
  dnnl_memory_set_data_handle: { parameters: [P, P], result: "i32" },
} as const;

type Lib = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];
type Ptr = Deno.PointerValue;

/** Library paths to try: only `FER_DNNL_LIB` when set, else the usual Linux locations, then the soname. */
export function dnnlCandidates(): string[] {
  const env = Deno.env.get("FER_DNNL_LIB");
  if (env) return [env];
  if (Deno.build.os !== "linux") return ["libdnnl.2.dylib", "libdnnl.so.2"];
  const arch = Deno.build.arch === "aarch64" ? "aarch64-linux-gnu" : "x86_64-linux-gnu";
  return [
    `/usr/lib/${arch}/libdnnl.so.2`,
    "/usr/lib64/libdnnl.so.2",
    "/usr/local/lib/libdnnl.so.2",
    "libdnnl.so.2",
  ];
}

function check(status: number, what: string): void {
  if (status !== 0) throw new Error(`oneDNN ${what} failed (dnnl_status ${status})`);
}

/** One convolution direction for one geometry: primitive, memories and the weight reorder it needs. */
type Prim = {
  prim: Ptr;
  /** User-layout memories (data handles set per call), by exec arg. */
  mems: Map<number, Ptr>;
  /** Weight reorder: hwio <-> the primitive's layout (null when they are the same). */
  reorder: { prim: Ptr; from: Ptr; to: Ptr; buf: Float32Array } | null;
  impl: string;
};

/** Convolutions on oneDNN; each method returns null when oneDNN refuses the case (caller falls back). */
export type Dnnl = {
  path: string;
  version: string;
  /** NHWC forward: y[N,OH,OW,O] from x[N,H,W,C] and w[kh,kw,C/groups... ] (TF.js layout). */
  forward(x: Float32Array, w: Float32Array, g: DnnlGeom, groups: number): Float32Array | null;
  /** dx[N,H,W,C] from dy and w. */
  backwardData(dy: Float32Array, w: Float32Array, g: DnnlGeom, groups: number): Float32Array | null;
  /** dw (TF.js layout) from x and dy. */
  backwardWeights(x: Float32Array, dy: Float32Array, g: DnnlGeom, groups: number): Float32Array | null;
  /** Element-wise forward over a flat array (multi-threaded, vectorized). */
  eltwise(alg: EltwiseAlg, x: Float32Array): Float32Array | null;
  /** Element-wise backward: dx from x and dy. */
  eltwiseBackward(alg: EltwiseAlg, x: Float32Array, dy: Float32Array): Float32Array | null;
  /**
   * Training batch norm over channels-last `x` ([..., C] flattened; `shape` is TF.js's): y, batch mean and
   * biased variance.
   */
  batchNorm(
    x: Float32Array,
    shape: number[],
    gamma: Float32Array,
    beta: Float32Array,
    eps: number,
  ): { y: Float32Array; mean: Float32Array; variance: Float32Array } | null;
  /** Its backward: dx, dgamma, dbeta. */
  batchNormBackward(
    x: Float32Array,
    shape: number[],
    dy: Float32Array,
    mean: Float32Array,
    variance: Float32Array,
    gamma: Float32Array,
    eps: number,
  ): { dx: Float32Array; dgamma: Float32Array; dbeta: Float32Array } | null;
  /** Implementation oneDNN chose for each primitive created so far (e.g. `brg:avx512_core`). */
  impls(): string[];
};

let cached: Dnnl | null | undefined;
let lastError = "";
let enabled = true;

/**
 * Route the native engine's kernels through oneDNN (default) or force their OpenBLAS / JS paths (tests use
 * this to cover both; `FER_DNNL=0` keeps the library from loading at all).
 */
export function setDnnlEnabled(on: boolean): void {
  enabled = on;
}

/** The oneDNN library kernels should use now: loaded by {@link openDnnl} and not switched off; else null. */
export function activeDnnl(): Dnnl | null {
  return enabled && cached ? cached : null;
}

/** Why the last {@link openDnnl} failed ("" when it succeeded or was not tried). */
export function dnnlError(): string {
  return lastError;
}

/**
 * Open oneDNN once (cached); null when unavailable or `FER_DNNL=0`. `threads` (else `FER_THREADS`) sets
 * OMP_NUM_THREADS before the library loads (its OpenMP runtime reads it once).
 */
export function openDnnl(threads?: number): Dnnl | null {
  if (cached !== undefined) return cached;
  if (Deno.env.get("FER_DNNL") === "0") {
    lastError = "disabled by FER_DNNL=0";
    return cached = null;
  }
  const t = threads ?? Number(Deno.env.get("FER_THREADS") ?? 0);
  if (t > 0 && !Deno.env.get("OMP_NUM_THREADS")) Deno.env.set("OMP_NUM_THREADS", String(t));
  const errors: string[] = [];
  for (const path of dnnlCandidates()) {
    if (path.startsWith("/")) {
      try {
        Deno.statSync(path);
      } catch {
        continue;
      }
    }
    try {
      const lib = Deno.dlopen(path, SYMBOLS);
      cached = create(lib.symbols, path);
      lastError = "";
      return cached;
    } catch (e) {
      errors.push(`${path}: ${(e as Error).message}`);
    }
  }
  lastError = errors.length
    ? errors.join("; ")
    : "libdnnl.so.2 not found (Debian/Ubuntu: apt install libdnnl2)";
  return cached = null;
}

function create(s: Lib, path: string): Dnnl {
  const out = new BigUint64Array(1);
  const outPtr = (): Ptr => Deno.UnsafePointer.create(out[0]);
  check(s.dnnl_engine_create(out, ENGINE_CPU, 0n), "engine_create");
  const engine = outPtr();
  check(s.dnnl_stream_create(out, engine, STREAM_DEFAULT), "stream_create");
  const stream = outPtr();
  const vp = s.dnnl_version();
  let version = "2.x";
  if (vp) {
    const v = new Deno.UnsafePointerView(vp);
    version = `${v.getInt32(0)}.${v.getInt32(4)}.${v.getInt32(8)}`;
    if (v.getInt32(0) !== 2) throw new Error(`oneDNN ${version} found; the 2.x C API is required`);
  }

  const dims = (a: number[]) => {
    const d = new BigInt64Array(12);
    a.forEach((v, i) => (d[i] = BigInt(v)));
    return d;
  };
  const md = (shape: number[], tag: number) => {
    const m = new Uint8Array(MD_BYTES);
    check(s.dnnl_memory_desc_init_by_tag(m, shape.length, dims(shape), F32, tag), "memory_desc_init");
    return m;
  };
  const ptrOf = (a: Uint8Array | Float32Array): Ptr => Deno.UnsafePointer.of(a as Uint8Array<ArrayBuffer>);
  const memory = (desc: Ptr): Ptr => {
    check(s.dnnl_memory_create(out, desc, engine, null), "memory_create");
    return outPtr();
  };
  const primDesc = (opDesc: Uint8Array, hint: Ptr): Ptr => {
    check(s.dnnl_primitive_desc_create(out, opDesc, null, engine, hint), "primitive_desc_create");
    return outPtr();
  };
  const primitive = (pd: Ptr): Ptr => {
    check(s.dnnl_primitive_create(out, pd), "primitive_create");
    return outPtr();
  };
  const implOf = (pd: Ptr): string => {
    const r = new BigUint64Array(1);
    if (s.dnnl_primitive_desc_query(pd, Q_IMPL_INFO, 0, r) !== 0 || r[0] === 0n) return "?";
    return new Deno.UnsafePointerView(Deno.UnsafePointer.create(r[0])!).getCString();
  };
  /** Reorder between the user weight layout and the primitive's, or null when equal. */
  const weightReorder = (user: Uint8Array, chosen: Ptr, toChosen: boolean): Prim["reorder"] => {
    if (s.dnnl_memory_desc_equal(ptrOf(user), chosen) === 1) return null;
    const userP = ptrOf(user);
    const [src, dst] = toChosen ? [userP, chosen] : [chosen, userP];
    check(s.dnnl_reorder_primitive_desc_create(out, src, engine, dst, engine, null), "reorder_desc");
    const pd = outPtr();
    const size = Number(s.dnnl_memory_desc_get_size(chosen));
    return {
      prim: primitive(pd),
      from: memory(src),
      to: memory(dst),
      buf: new Float32Array(Math.ceil(size / 4)),
    };
  };

  const cache = new Map<string, Prim | null>();
  const shapes = (g: DnnlGeom, groups: number) => {
    const src = [g.batchSize, g.inChannels, g.inHeight, g.inWidth];
    const dst = [g.batchSize, g.outChannels, g.outHeight, g.outWidth];
    const kh = g.filterHeight, kw = g.filterWidth;
    const wShape = groups === 1
      ? [g.outChannels, g.inChannels, kh, kw]
      : [groups, g.outChannels / groups, g.inChannels / groups, kh, kw];
    const wTag = groups === 1 ? TAG_HWIO : TAG_HWIGO;
    const wAny = md(wShape, TAG_ANY);
    return {
      src: md(src, TAG_NHWC),
      dst: md(dst, TAG_NHWC),
      w: md(wShape, wTag),
      wAny,
      strides: dims([g.strideHeight, g.strideWidth]),
      dilates: dims([g.dilationHeight - 1, g.dilationWidth - 1]),
      padL: dims([g.padInfo.top, g.padInfo.left]),
      padR: dims([g.padInfo.bottom, g.padInfo.right]),
    };
  };
  const forwardPd = (d: ReturnType<typeof shapes>): Ptr => {
    const op = new Uint8Array(OP_DESC_BYTES);
    check(
      s.dnnl_dilated_convolution_forward_desc_init(
        op,
        FORWARD_TRAINING,
        CONV_DIRECT,
        d.src,
        d.wAny,
        null,
        d.dst,
        d.strides,
        d.dilates,
        d.padL,
        d.padR,
      ),
      "convolution_forward_desc_init",
    );
    return primDesc(op, null);
  };
  const build = (kind: "fwd" | "bwd_data" | "bwd_weights", g: DnnlGeom, groups: number): Prim | null => {
    const key = `${kind}|${groups}|${JSON.stringify(g)}`;
    if (cache.has(key)) return cache.get(key)!;
    let p: Prim | null = null;
    try {
      const d = shapes(g, groups);
      const fwd = forwardPd(d);
      let pd = fwd, wQuery = Q_WEIGHTS;
      const mems = new Map<number, Ptr>();
      if (kind === "fwd") {
        mems.set(ARG_SRC, memory(ptrOf(d.src)));
        mems.set(ARG_DST, memory(ptrOf(d.dst)));
      } else if (kind === "bwd_data") {
        const op = new Uint8Array(OP_DESC_BYTES);
        check(
          s.dnnl_dilated_convolution_backward_data_desc_init(
            op,
            CONV_DIRECT,
            d.src,
            d.wAny,
            d.dst,
            d.strides,
            d.dilates,
            d.padL,
            d.padR,
          ),
          "convolution_backward_data_desc_init",
        );
        pd = primDesc(op, fwd);
        mems.set(ARG_DIFF_SRC, memory(ptrOf(d.src)));
        mems.set(ARG_DIFF_DST, memory(ptrOf(d.dst)));
      } else {
        const op = new Uint8Array(OP_DESC_BYTES);
        check(
          s.dnnl_dilated_convolution_backward_weights_desc_init(
            op,
            CONV_DIRECT,
            d.src,
            d.wAny,
            null,
            d.dst,
            d.strides,
            d.dilates,
            d.padL,
            d.padR,
          ),
          "convolution_backward_weights_desc_init",
        );
        pd = primDesc(op, fwd);
        wQuery = Q_DIFF_WEIGHTS;
        mems.set(ARG_SRC, memory(ptrOf(d.src)));
        mems.set(ARG_DIFF_DST, memory(ptrOf(d.dst)));
      }
      const chosen = s.dnnl_primitive_desc_query_md(pd, wQuery, 0);
      const reorder = weightReorder(d.w, chosen, kind !== "bwd_weights");
      const wArg = kind === "bwd_weights" ? ARG_DIFF_WEIGHTS : ARG_WEIGHTS;
      mems.set(wArg, memory(reorder ? chosen : ptrOf(d.w)));
      p = { prim: primitive(pd), mems, reorder, impl: implOf(pd) };
    } catch {
      p = null; // refused by oneDNN: the caller uses the OpenBLAS path
    }
    cache.set(key, p);
    return p;
  };
  /**
   * A primitive with plain user layouts for every arg (no reorders), cached by `key` (null when refused).
   * `make` runs only on a cache miss and returns `init` (fills the op descriptor), the memory descriptor of
   * each arg, and `hint` (the forward primitive descriptor a backward one needs).
   */
  const plain = (
    key: string,
    make: () => {
      init: (op: Uint8Array) => number;
      args: [number, Uint8Array][];
      hint?: () => Ptr;
    },
  ): Prim | null => {
    if (cache.has(key)) return cache.get(key)!;
    let p: Prim | null = null;
    try {
      const { init, args, hint } = make();
      const op = new Uint8Array(OP_DESC_BYTES);
      check(init(op), key);
      const pd = primDesc(op, hint ? hint() : null);
      const mems = new Map<number, Ptr>(args.map(([arg, d]) => [arg, memory(ptrOf(d))]));
      p = { prim: primitive(pd), mems, reorder: null, impl: implOf(pd) };
    } catch {
      p = null;
    }
    cache.set(key, p);
    return p;
  };
  const flat = (n: number) => md([n], TAG_A);
  const eltwiseFwd = (alg: EltwiseAlg, d: Uint8Array) => (op: Uint8Array) =>
    s.dnnl_eltwise_forward_desc_init(op, FORWARD_TRAINING, ELTWISE[alg], d, alg === "swish" ? 1 : 0, 0);
  /** Channels-last data as oneDNN NCHW-logical dims with an nhwc / ab tag. */
  const bnData = (shape: number[]) => {
    const c = shape[shape.length - 1];
    const n = shape.reduce((p, q) => p * q, 1) / c;
    return shape.length === 4 ? md([shape[0], c, shape[1], shape[2]], TAG_NHWC) : md([n, c], TAG_AB);
  };
  const BN_FLAGS = BN_USE_SCALE | BN_USE_SHIFT;
  const bnFwd = (d: Uint8Array, eps: number) => (op: Uint8Array) =>
    s.dnnl_batch_normalization_forward_desc_init(op, FORWARD_TRAINING, d, eps, BN_FLAGS);
  const pdOf = (init: (op: Uint8Array) => number) => () => {
    const op = new Uint8Array(OP_DESC_BYTES);
    check(init(op), "forward hint");
    return primDesc(op, null);
  };
  const exec = (prim: Ptr, args: [number, Ptr][]) => {
    const buf = new Uint8Array(16 * args.length);
    const dv = new DataView(buf.buffer);
    args.forEach(([arg, mem], i) => {
      dv.setInt32(16 * i, arg, true);
      dv.setBigUint64(16 * i + 8, BigInt(Deno.UnsafePointer.value(mem)), true);
    });
    check(s.dnnl_primitive_execute(prim, stream, args.length, buf), "primitive_execute");
  };
  const bind = (mem: Ptr, data: Float32Array) =>
    check(s.dnnl_memory_set_data_handle(mem, ptrOf(data)), "set_data");
  /**
   * Run `p` with `data` bound to its args; when `p` has a weight reorder, the weight arg `wArg` goes through
   * it (before the primitive when `toChosen`, after it for a computed weight gradient).
   */
  const run = (p: Prim, data: Map<number, Float32Array>, wArg = 0, toChosen = true) => {
    const args: [number, Ptr][] = [];
    const r = p.reorder;
    if (r && toChosen) {
      bind(r.from, data.get(wArg)!);
      bind(r.to, r.buf);
      exec(r.prim, [[ARG_FROM, r.from], [ARG_TO, r.to]]);
    }
    for (const [arg, mem] of p.mems) {
      bind(mem, arg === wArg && r ? r.buf : data.get(arg)!);
      args.push([arg, mem]);
    }
    exec(p.prim, args);
    if (r && !toChosen) {
      bind(r.from, r.buf);
      bind(r.to, data.get(wArg)!);
      exec(r.prim, [[ARG_FROM, r.from], [ARG_TO, r.to]]);
    }
    check(s.dnnl_stream_wait(stream), "stream_wait");
  };
  const size = (a: number[]) => a.reduce((p, q) => p * q, 1);
  const zerosCache = new Map<number, Float32Array>();
  const zeros = (n: number) => zerosCache.get(n) ?? zerosCache.set(n, new Float32Array(n)).get(n)!;
  const wSize = (g: DnnlGeom, groups: number) =>
    g.filterHeight * g.filterWidth * (g.inChannels / groups) * g.outChannels;

  return {
    path,
    version,
    forward(x, w, g, groups) {
      const p = build("fwd", g, groups);
      if (!p) return null;
      const y = new Float32Array(size([g.batchSize, g.outHeight, g.outWidth, g.outChannels]));
      run(p, new Map([[ARG_SRC, x], [ARG_WEIGHTS, w], [ARG_DST, y]]), ARG_WEIGHTS, true);
      return y;
    },
    backwardData(dy, w, g, groups) {
      const p = build("bwd_data", g, groups);
      if (!p) return null;
      const dx = new Float32Array(size([g.batchSize, g.inHeight, g.inWidth, g.inChannels]));
      run(p, new Map([[ARG_DIFF_DST, dy], [ARG_WEIGHTS, w], [ARG_DIFF_SRC, dx]]), ARG_WEIGHTS, true);
      return dx;
    },
    backwardWeights(x, dy, g, groups) {
      const p = build("bwd_weights", g, groups);
      if (!p) return null;
      const dw = new Float32Array(wSize(g, groups));
      run(p, new Map([[ARG_SRC, x], [ARG_DIFF_DST, dy], [ARG_DIFF_WEIGHTS, dw]]), ARG_DIFF_WEIGHTS, false);
      return dw;
    },
    eltwise(alg, x) {
      const n = x.length;
      const p = plain(`eltwise|${alg}|${n}`, () => {
        const d = flat(n);
        return { init: eltwiseFwd(alg, d), args: [[ARG_SRC, d], [ARG_DST, d]] };
      });
      if (!p) return null;
      const y = new Float32Array(n);
      run(p, new Map([[ARG_SRC, x], [ARG_DST, y]]));
      return y;
    },
    eltwiseBackward(alg, x, dy) {
      const n = x.length;
      const p = plain(`eltwise_bwd|${alg}|${n}`, () => {
        const d = flat(n);
        return {
          init: (op) => s.dnnl_eltwise_backward_desc_init(op, ELTWISE[alg], d, d, alg === "swish" ? 1 : 0, 0),
          args: [[ARG_SRC, d], [ARG_DIFF_DST, d], [ARG_DIFF_SRC, d]],
          hint: pdOf(eltwiseFwd(alg, d)),
        };
      });
      if (!p) return null;
      const dx = new Float32Array(n);
      run(p, new Map([[ARG_SRC, x], [ARG_DIFF_DST, dy], [ARG_DIFF_SRC, dx]]));
      return dx;
    },
    batchNorm(x, shape, gamma, beta, eps) {
      const c = shape[shape.length - 1];
      const p = plain(`bn|${shape}|${eps}`, () => {
        const d = bnData(shape), cd = flat(c);
        return {
          init: bnFwd(d, eps),
          args: [[ARG_SRC, d], [ARG_DST, d], [ARG_MEAN, cd], [ARG_VARIANCE, cd], [ARG_SCALE, cd], [
            ARG_SHIFT,
            cd,
          ]],
        };
      });
      if (!p) return null;
      const y = new Float32Array(x.length), mean = new Float32Array(c), variance = new Float32Array(c);
      run(
        p,
        new Map([[ARG_SRC, x], [ARG_DST, y], [ARG_MEAN, mean], [ARG_VARIANCE, variance], [ARG_SCALE, gamma], [
          ARG_SHIFT,
          beta,
        ]]),
      );
      return { y, mean, variance };
    },
    batchNormBackward(x, shape, dy, mean, variance, gamma, eps) {
      const c = shape[shape.length - 1];
      const p = plain(`bn_bwd|${shape}|${eps}`, () => {
        const d = bnData(shape), cd = flat(c);
        return {
          init: (op) => s.dnnl_batch_normalization_backward_desc_init(op, BACKWARD, d, d, eps, BN_FLAGS),
          args: [
            [ARG_SRC, d],
            [ARG_DIFF_DST, d],
            [ARG_MEAN, cd],
            [ARG_VARIANCE, cd],
            [ARG_SCALE, cd],
            [ARG_SHIFT, cd],
            [ARG_DIFF_SRC, d],
            [ARG_DIFF_SCALE, cd],
            [ARG_DIFF_SHIFT, cd],
          ],
          hint: pdOf(bnFwd(d, eps)),
        };
      });
      if (!p) return null;
      const dx = new Float32Array(x.length), dgamma = new Float32Array(c), dbeta = new Float32Array(c);
      run(
        p,
        new Map([
          [ARG_SRC, x],
          [ARG_DIFF_DST, dy],
          [ARG_MEAN, mean],
          [ARG_VARIANCE, variance],
          [ARG_SCALE, gamma],
          [ARG_SHIFT, zeros(c)], // unused by the backward pass, but oneDNN 2.x requires it with use_shift
          [ARG_DIFF_SRC, dx],
          [ARG_DIFF_SCALE, dgamma],
          [ARG_DIFF_SHIFT, dbeta],
        ]),
      );
      return { dx, dgamma, dbeta };
    },
    impls() {
      return [...new Set([...cache.values()].filter((p): p is Prim => p !== null).map((p) => p.impl))];
    },
  };
}
