/**
 * Reader and writer for the safetensors format (https://github.com/huggingface/safetensors):
 * an 8-byte little-endian header length N, N bytes of UTF-8 JSON mapping tensor names to
 * `{dtype, shape, data_offsets: [begin, end]}` (offsets relative to the data that follows the header), an optional
 * `__metadata__` object of string values, then the raw little-endian, C-ordered tensor bytes.
 *
 * Hand-written because no maintained npm package parses safetensors defensively without pulling in a runtime we
 * do not use, and the format is small. The reader treats every file as hostile: every number in the header is
 * checked (against the file size, the dtype size and the other tensors) before anything is allocated or read,
 * and every problem is a {@link SafetensorsError} naming the file and the tensor. Like the reference
 * implementation, it caps the header at 100 MB and requires the tensors to tile the data exactly (no overlaps,
 * no holes, nothing after the last tensor: the spec forbids holes so that files cannot be polyglots).
 */
import { writeAtomic } from "../../util/fs.ts";

/** The dtypes this reader understands. */
export type SafetensorsDtype = "F64" | "F32" | "F16" | "BF16" | "I64" | "I32" | "I16" | "I8" | "U8" | "BOOL";

/** Bytes per element of each supported dtype. */
export const DTYPE_SIZES: Readonly<Record<SafetensorsDtype, number>> = Object.freeze({
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
});

/** Largest header accepted (same limit as the reference implementation). */
export const MAX_HEADER_BYTES = 100_000_000;

/** Largest rank accepted for a tensor shape (real checkpoints use at most 5 or 6). */
export const MAX_RANK = 32;

/** A tensor as stored: dtype, shape and its raw little-endian bytes (an own, 8-byte aligned copy). */
export interface SafeTensor {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  data: Uint8Array;
}

/** Where a tensor lives in the file, as checked from the header. `begin`/`end` are relative to the data. */
export interface TensorInfo {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  begin: number;
  end: number;
}

/** A checked header: tensors in header order, metadata (or null), sizes. */
export interface SafetensorsHeader {
  tensors: TensorInfo[];
  metadata: Record<string, string> | null;
  /** Bytes before the data: 8 + header length. */
  dataStart: number;
  /** Bytes of tensor data (= the end of the last tensor). */
  dataLength: number;
}

/** A parsed file: tensors by name (header order), metadata, and where it came from. */
export interface SafetensorsFile {
  source: string;
  tensors: Map<string, SafeTensor>;
  metadata: Record<string, string> | null;
}

/** Every problem with a safetensors file is reported as this error (message names the file and tensor). */
export class SafetensorsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SafetensorsError";
  }
}

function fail(source: string, msg: string): never {
  throw new SafetensorsError(`${source}: invalid safetensors file: ${msg}`);
}

function isDtype(s: string): s is SafetensorsDtype {
  return Object.prototype.hasOwnProperty.call(DTYPE_SIZES, s);
}

/**
 * Reads the 8-byte little-endian header length from `first8` and checks it against the total file size.
 * Returns the header length as a safe integer.
 */
export function readHeaderLength(first8: Uint8Array, fileSize: number, source = "<bytes>"): number {
  if (fileSize < 8 || first8.length < 8) {
    fail(source, `file is ${fileSize} bytes, too short for the 8-byte header length`);
  }
  const n = new DataView(first8.buffer, first8.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(MAX_HEADER_BYTES)) {
    fail(source, `header length ${n} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  }
  const len = Number(n);
  if (len < 2) fail(source, `header length ${len} is too small for a JSON object`);
  if (8 + len > fileSize) {
    fail(source, `header length ${len} runs past the end of the file (${fileSize} bytes)`);
  }
  return len;
}

function checkShape(source: string, name: string, shape: unknown): number[] {
  if (!Array.isArray(shape)) fail(source, `tensor "${name}": shape must be an array`);
  if (shape.length > MAX_RANK) fail(source, `tensor "${name}": rank ${shape.length} exceeds ${MAX_RANK}`);
  const out: number[] = [];
  for (const d of shape) {
    if (typeof d !== "number" || !Number.isSafeInteger(d) || d < 0) {
      fail(
        source,
        `tensor "${name}": shape ${JSON.stringify(shape)} has an invalid dimension ${JSON.stringify(d)}`,
      );
    }
    out.push(d);
  }
  return out;
}

/** Element count of `shape`, or -1 when it exceeds Number.MAX_SAFE_INTEGER. */
function numelOf(shape: number[]): number {
  let n = 1;
  for (const d of shape) {
    if (d === 0) return 0;
  }
  for (const d of shape) {
    n *= d;
    if (n > Number.MAX_SAFE_INTEGER) return -1;
  }
  return n;
}

/**
 * Parses and checks the JSON header bytes. `available` is the number of data bytes that follow the header in
 * the file; the tensors must tile exactly `[0, available)`.
 */
export function parseHeader(
  headerBytes: Uint8Array,
  available: number,
  source = "<bytes>",
): SafetensorsHeader {
  if (headerBytes.length === 0 || headerBytes[0] !== 0x7b) fail(source, "header does not start with '{'");
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(headerBytes);
  } catch {
    fail(source, "header is not valid UTF-8");
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    fail(source, `header is not valid JSON (${(e as Error).message})`);
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
    fail(source, "header JSON is not an object");
  }
  const obj = parsed as Record<string, unknown>;
  let metadata: Record<string, string> | null = null;
  const tensors: TensorInfo[] = [];
  for (const [name, entry] of Object.entries(obj)) {
    if (name === "__metadata__") {
      if (entry === null || typeof entry !== "object" || Array.isArray(entry)) {
        fail(source, "__metadata__ must be an object of strings");
      }
      const pairs = Object.entries(entry as Record<string, unknown>);
      for (const [k, v] of pairs) {
        if (typeof v !== "string") fail(source, `__metadata__["${k}"] must be a string, got ${typeof v}`);
      }
      metadata = Object.fromEntries(pairs) as Record<string, string>; // own properties only, even "__proto__"
      continue;
    }
    if (entry === null || typeof entry !== "object" || Array.isArray(entry)) {
      fail(source, `tensor "${name}": entry must be an object`);
    }
    const e = entry as Record<string, unknown>;
    const dtype = e.dtype;
    if (typeof dtype !== "string") fail(source, `tensor "${name}": dtype must be a string`);
    if (!isDtype(dtype)) {
      fail(
        source,
        `tensor "${name}": unsupported dtype ${JSON.stringify(dtype)} (supported: ${
          Object.keys(DTYPE_SIZES).join(", ")
        })`,
      );
    }
    const shape = checkShape(source, name, e.shape);
    const offs = e.data_offsets;
    if (
      !Array.isArray(offs) || offs.length !== 2 ||
      !offs.every((o) => typeof o === "number" && Number.isSafeInteger(o) && o >= 0)
    ) {
      fail(
        source,
        `tensor "${name}": data_offsets must be two non-negative integers, got ${JSON.stringify(offs)}`,
      );
    }
    const [begin, end] = offs as number[];
    if (end < begin) fail(source, `tensor "${name}": data_offsets end ${end} is before begin ${begin}`);
    if (end > available) {
      fail(
        source,
        `tensor "${name}": data_offsets [${begin}, ${end}] run past the end of the data (${available} bytes; file truncated?)`,
      );
    }
    const numel = numelOf(shape);
    const want = numel < 0 ? -1 : numel * DTYPE_SIZES[dtype];
    if (want < 0 || !Number.isSafeInteger(want)) {
      fail(source, `tensor "${name}": shape ${JSON.stringify(shape)} has too many elements`);
    }
    if (want !== end - begin) {
      fail(
        source,
        `tensor "${name}": ${dtype} ${
          JSON.stringify(shape)
        } needs ${want} bytes but data_offsets [${begin}, ${end}] hold ${end - begin}`,
      );
    }
    tensors.push({ name, dtype, shape, begin, end });
  }
  // The tensors must tile the data exactly: sorted by offset, each starts where the previous ended.
  const sorted = [...tensors].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let pos = 0;
  let prev = "";
  for (const t of sorted) {
    if (t.begin < pos) {
      fail(
        source,
        `tensor "${t.name}" [${t.begin}, ${t.end}] overlaps tensor "${prev}" (which ends at ${pos})`,
      );
    }
    if (t.begin > pos) {
      fail(
        source,
        `bytes [${pos}, ${t.begin}) before tensor "${t.name}" belong to no tensor (holes are not allowed)`,
      );
    }
    pos = t.end;
    prev = t.name;
  }
  if (pos !== available) {
    fail(
      source,
      `${available - pos} bytes after the last tensor${
        prev ? ` ("${prev}")` : ""
      } belong to no tensor (data is ${available} bytes, tensors end at ${pos})`,
    );
  }
  return { tensors, metadata, dataStart: 8 + headerBytes.length, dataLength: pos };
}

/** Parses a whole safetensors file held in memory. Tensor data are copied (aligned, independent of `bytes`). */
export function parseSafetensors(
  bytes: Uint8Array,
  opts: { source?: string; filter?: (name: string) => boolean } = {},
): SafetensorsFile {
  const source = opts.source ?? "<bytes>";
  const len = readHeaderLength(bytes.subarray(0, 8), bytes.length, source);
  const header = parseHeader(bytes.subarray(8, 8 + len), bytes.length - 8 - len, source);
  const tensors = new Map<string, SafeTensor>();
  for (const t of header.tensors) {
    if (opts.filter && !opts.filter(t.name)) continue;
    const data = bytes.slice(header.dataStart + t.begin, header.dataStart + t.end);
    tensors.set(t.name, { name: t.name, dtype: t.dtype, shape: t.shape, data });
  }
  return { source, tensors, metadata: header.metadata };
}

async function readExactly(
  file: Deno.FsFile,
  buf: Uint8Array,
  position: number,
  source: string,
): Promise<void> {
  await file.seek(position, Deno.SeekMode.Start);
  let off = 0;
  while (off < buf.length) {
    const n = await file.read(buf.subarray(off));
    if (n === null) fail(source, `unexpected end of file at byte ${position + off} (file truncated?)`);
    off += n;
  }
}

/** Reads and checks only the header of a safetensors file on disk (8 + N bytes are read). */
export async function readSafetensorsHeader(path: string): Promise<SafetensorsHeader> {
  const file = await openFile(path);
  try {
    return await readHeaderFrom(file, path);
  } finally {
    file.close();
  }
}

async function openFile(path: string): Promise<Deno.FsFile> {
  try {
    return await Deno.open(path, { read: true });
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) throw new SafetensorsError(`${path}: file not found`);
    throw new SafetensorsError(`${path}: cannot open (${(e as Error).message})`);
  }
}

async function readHeaderFrom(file: Deno.FsFile, path: string): Promise<SafetensorsHeader> {
  const info = await file.stat();
  if (!info.isFile) throw new SafetensorsError(`${path}: not a regular file`);
  const size = info.size;
  const first8 = new Uint8Array(8);
  if (size >= 8) await readExactly(file, first8, 0, path);
  const len = readHeaderLength(first8, size, path);
  const headerBytes = new Uint8Array(len); // bounded by MAX_HEADER_BYTES and by the file size
  await readExactly(file, headerBytes, 8, path);
  return parseHeader(headerBytes, size - 8 - len, path);
}

/**
 * Reads a safetensors file from disk: the header first (validated against the file size), then only the tensors
 * accepted by `filter` (all by default), each into its own buffer.
 */
export async function readSafetensors(
  path: string,
  opts: { filter?: (name: string) => boolean } = {},
): Promise<SafetensorsFile> {
  const file = await openFile(path);
  try {
    const header = await readHeaderFrom(file, path);
    const tensors = new Map<string, SafeTensor>();
    for (const t of header.tensors) {
      if (opts.filter && !opts.filter(t.name)) continue;
      const data = new Uint8Array(t.end - t.begin);
      await readExactly(file, data, header.dataStart + t.begin, `${path} (tensor "${t.name}")`);
      tensors.set(t.name, { name: t.name, dtype: t.dtype, shape: t.shape, data });
    }
    return { source: path, tensors, metadata: header.metadata };
  } finally {
    file.close();
  }
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Decodes one IEEE 754 half-precision value (as its 16 bits) to a JS number. */
export function f16ToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24; // zero and subnormals
  if (exp === 0x1f) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/** Number of elements of a tensor. */
export function numel(t: { shape: number[] }): number {
  return t.shape.reduce((a, b) => a * b, 1);
}

/** Converts a tensor of any supported dtype to float32 values (f16 subnormals, inf and nan handled). */
export function toFloat32(t: SafeTensor): Float32Array {
  const n = numel(t);
  const size = DTYPE_SIZES[t.dtype];
  if (t.data.length !== n * size) {
    throw new SafetensorsError(`tensor "${t.name}": ${t.data.length} bytes for ${n} ${t.dtype} elements`);
  }
  const dv = new DataView(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  const out = new Float32Array(n);
  switch (t.dtype) {
    case "F32":
      if (LITTLE_ENDIAN && t.data.byteOffset % 4 === 0) {
        out.set(new Float32Array(t.data.buffer, t.data.byteOffset, n));
      } else {
        for (let i = 0; i < n; i++) out[i] = dv.getFloat32(i * 4, true);
      }
      break;
    case "F16":
      for (let i = 0; i < n; i++) out[i] = f16ToNumber(dv.getUint16(i * 2, true));
      break;
    case "BF16": {
      // bf16 is the top half of a float32: widen the bits and reinterpret.
      const scratch = new DataView(new ArrayBuffer(4));
      for (let i = 0; i < n; i++) {
        scratch.setUint32(0, (dv.getUint16(i * 2, true) << 16) >>> 0);
        out[i] = scratch.getFloat32(0);
      }
      break;
    }
    case "F64":
      for (let i = 0; i < n; i++) out[i] = dv.getFloat64(i * 8, true);
      break;
    case "I64":
      for (let i = 0; i < n; i++) out[i] = Number(dv.getBigInt64(i * 8, true));
      break;
    case "I32":
      for (let i = 0; i < n; i++) out[i] = dv.getInt32(i * 4, true);
      break;
    case "I16":
      for (let i = 0; i < n; i++) out[i] = dv.getInt16(i * 2, true);
      break;
    case "I8":
      for (let i = 0; i < n; i++) out[i] = dv.getInt8(i);
      break;
    case "U8":
      out.set(t.data);
      break;
    case "BOOL":
      for (let i = 0; i < n; i++) out[i] = t.data[i] ? 1 : 0;
      break;
  }
  return out;
}

/** A tensor to write: dtype, shape and values (a typed array matching the dtype, or raw little-endian bytes). */
export interface TensorToWrite {
  dtype: SafetensorsDtype;
  shape: number[];
  data:
    | Uint8Array
    | Float32Array
    | Float64Array
    | Int32Array
    | Int16Array
    | Int8Array
    | BigInt64Array
    | Uint16Array;
}

function encodeTensor(name: string, t: TensorToWrite): Uint8Array {
  const n = numelOf(checkShape("<writer>", name, t.shape));
  if (!isDtype(t.dtype)) throw new SafetensorsError(`tensor "${name}": unsupported dtype ${t.dtype}`);
  const size = DTYPE_SIZES[t.dtype];
  const d = t.data;
  let bytes: Uint8Array;
  if (d instanceof Uint8Array) {
    bytes = d; // raw little-endian bytes (for U8/BOOL these are also the values)
  } else {
    if (d.length !== n) {
      throw new SafetensorsError(`tensor "${name}": ${d.length} values for shape ${JSON.stringify(t.shape)}`);
    }
    bytes = new Uint8Array(n * size);
    const dv = new DataView(bytes.buffer);
    for (let i = 0; i < n; i++) {
      const v = d[i];
      switch (t.dtype) {
        case "F64":
          dv.setFloat64(i * 8, Number(v), true);
          break;
        case "F32":
          dv.setFloat32(i * 4, Number(v), true);
          break;
        case "I64":
          dv.setBigInt64(i * 8, typeof v === "bigint" ? v : BigInt(Math.trunc(v)), true);
          break;
        case "I32":
          dv.setInt32(i * 4, Number(v), true);
          break;
        case "I16":
          dv.setInt16(i * 2, Number(v), true);
          break;
        case "F16":
        case "BF16":
          dv.setUint16(i * 2, Number(v), true); // 16-bit payloads given as Uint16Array
          break;
        case "I8":
          dv.setInt8(i, Number(v));
          break;
        case "U8":
          dv.setUint8(i, Number(v));
          break;
        case "BOOL":
          dv.setUint8(i, v ? 1 : 0);
          break;
      }
    }
  }
  if (bytes.length !== n * size) {
    throw new SafetensorsError(
      `tensor "${name}": ${bytes.length} bytes for ${t.dtype} ${JSON.stringify(t.shape)} (need ${n * size})`,
    );
  }
  return bytes;
}

/** Serializes tensors (in the given order) and optional string metadata to safetensors bytes. */
export function serializeSafetensors(
  tensors: Record<string, TensorToWrite> | Map<string, TensorToWrite>,
  metadata?: Record<string, string> | null,
): Uint8Array {
  const entries = tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors);
  const header: Record<string, unknown> = {};
  if (metadata) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== "string") throw new SafetensorsError(`metadata "${k}" must be a string`);
    }
    header.__metadata__ = metadata;
  }
  const blobs: Uint8Array[] = [];
  let offset = 0;
  for (const [name, t] of entries) {
    if (name === "__metadata__") throw new SafetensorsError(`"__metadata__" is not a valid tensor name`);
    const b = encodeTensor(name, t);
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + b.length] };
    blobs.push(b);
    offset += b.length;
  }
  let json = new TextEncoder().encode(JSON.stringify(header));
  const pad = (8 - (json.length % 8)) % 8; // keep the data 8-byte aligned, padding with spaces as the spec allows
  if (pad) {
    const padded = new Uint8Array(json.length + pad).fill(0x20);
    padded.set(json);
    json = padded;
  }
  const out = new Uint8Array(8 + json.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  let pos = 8 + json.length;
  for (const b of blobs) {
    out.set(b, pos);
    pos += b.length;
  }
  return out;
}

/**
 * Writes a safetensors file atomically (lib/util/fs.ts `writeAtomic`: temporary file beside it, then rename), so
 * readers never see a half-written file.
 */
export async function writeSafetensors(
  path: string,
  tensors: Record<string, TensorToWrite> | Map<string, TensorToWrite>,
  metadata?: Record<string, string> | null,
): Promise<void> {
  await writeAtomic(path, serializeSafetensors(tensors, metadata));
}
