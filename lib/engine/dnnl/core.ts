/**
 * The oneDNN context the primitive modules share: engine and stream, memory descriptors and memories, primitive
 * creation with a per-geometry cache, weight reorders, and running a primitive on caller arrays.
 */
import {
  ARG_FROM,
  ARG_TO,
  check,
  ENGINE_CPU,
  F32,
  type Lib,
  MD_BYTES,
  OP_DESC_BYTES,
  type Prim,
  type Ptr,
  Q_IMPL_INFO,
  type Reorder,
  STREAM_DEFAULT,
  TAG_A,
} from "./abi.ts";

/** Arithmetic of the convolutions and matmuls: float32, or bfloat16 inputs with float32 accumulation and outputs. */
export type Precision = "float32" | "bfloat16";

/** Where a primitive's output array comes from (the native backend's pool, or a fresh array). */
export type Alloc = (n: number) => Float32Array;
/** A fresh zeroed array (the default {@link Alloc}). */
export const fresh: Alloc = (n) => new Float32Array(n);

/** What {@link createCore} returns: the library, its version and the helpers the primitive modules use. */
export type DnnlCore = ReturnType<typeof createCore>;

/** Creates the engine and stream and the helpers over them. */
export function createCore(s: Lib) {
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
  let precision: Precision = "float32";
  /** A float32 memory descriptor with explicit strides (in elements), e.g. a transposed or padded matrix. */
  const strided = (shape: number[], strides: number[]) => {
    const m = new Uint8Array(MD_BYTES);
    check(
      s.dnnl_memory_desc_init_by_strides(m, shape.length, dims(shape), F32, dims(strides)),
      "memory_desc_strides",
    );
    return m;
  };
  /** A memory descriptor: shape, layout tag and data type (float32 unless given; abi.ts BF16). */
  const md = (shape: number[], tag: number, dataType = F32) => {
    const m = new Uint8Array(MD_BYTES);
    check(s.dnnl_memory_desc_init_by_tag(m, shape.length, dims(shape), dataType, tag), "memory_desc_init");
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
  /** A reorder from `src` to `dst` (layout and/or data type) with a buffer the size of `own`'s data. */
  const reorderOf = (src: Ptr, dst: Ptr, own: Ptr): Reorder => {
    check(s.dnnl_reorder_primitive_desc_create(out, src, engine, dst, engine, null), "reorder_desc");
    const pd = outPtr();
    const size = Number(s.dnnl_memory_desc_get_size(own));
    return {
      prim: primitive(pd),
      from: memory(src),
      to: memory(dst),
      buf: new Float32Array(Math.ceil(size / 4)),
    };
  };
  /** Reorder between the user weight layout and the primitive's, or null when equal. */
  const weightReorder = (user: Uint8Array, chosen: Ptr, toChosen: boolean): Prim["reorder"] => {
    if (s.dnnl_memory_desc_equal(ptrOf(user), chosen) === 1) return null;
    const userP = ptrOf(user);
    return toChosen ? reorderOf(userP, chosen, chosen) : reorderOf(chosen, userP, chosen);
  };
  /** A cast of a float32 input to `to` (bfloat16, the same layout), into a buffer the cast owns. */
  const inputCast = (from: Uint8Array, to: Uint8Array): Reorder =>
    reorderOf(ptrOf(from), ptrOf(to), ptrOf(to));

  const cache = new Map<string, Prim | null>();
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
    for (const [arg, c] of p.casts ?? []) {
      bind(c.from, data.get(arg)!);
      bind(c.to, c.buf);
      exec(c.prim, [[ARG_FROM, c.from], [ARG_TO, c.to]]);
    }
    const r = p.reorder;
    if (r && toChosen) {
      bind(r.from, data.get(wArg)!);
      bind(r.to, r.buf);
      exec(r.prim, [[ARG_FROM, r.from], [ARG_TO, r.to]]);
    }
    for (const [arg, mem] of p.mems) {
      const cast = p.casts?.get(arg);
      bind(mem, cast ? cast.buf : arg === wArg && r ? r.buf : data.get(arg)!);
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

  /** Cache keys of the primitives created so far (kind and geometry, e.g. `maxpool|true|{...}`). */
  const primitives = () => [...cache].filter(([, p]) => p !== null).map(([k]) => k);
  /** Implementation oneDNN chose for each primitive created so far. */
  const impls =
    () => [...new Set([...cache.values()].filter((p): p is Prim => p !== null).map((p) => p.impl))];
  return {
    s,
    version,
    out,
    outPtr,
    dims,
    md,
    strided,
    ptrOf,
    memory,
    primDesc,
    primitive,
    implOf,
    weightReorder,
    inputCast,
    cache,
    plain,
    flat,
    pdOf,
    run,
    size,
    zeros,
    impls,
    primitives,
    /** The arithmetic the convolutions (conv.ts) and matmuls (matmul.ts) use now. */
    precision: () => precision,
    /** Sets it (the handle's `setPrecision`, conv.ts, checks that bfloat16 kernels exist first). */
    usePrecision: (p: Precision) => void (precision = p),
  };
}
