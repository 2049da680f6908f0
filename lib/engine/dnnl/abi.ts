/**
 * The oneDNN 2.x C ABI the engine uses: enum values from `dnnl_types.h`, the FFI symbol table, and the shapes
 * shared by the primitive modules.
 */
import type { ConvGeom } from "../kernels/conv.ts";

/** A convolution geometry (kernels/conv.ts) with the bottom/right padding oneDNN also needs. */
export type DnnlGeom = Omit<ConvGeom, "padInfo"> & {
  padInfo: { top: number; bottom: number; left: number; right: number };
};

// dnnl_types.h (oneDNN 2.x)
export const F32 = 3, BF16 = 2;
export const TAG_ANY = 1, TAG_NHWC = 20, TAG_HWIO = 30, TAG_HWIGO = 33;
export const FORWARD_TRAINING = 64, FORWARD_INFERENCE = 96;
export const CONV_DIRECT = 1;
export const Q_IMPL_INFO = 8, Q_WEIGHTS = 131, Q_DIFF_WEIGHTS = 132, Q_WORKSPACE = 135;
export const ARG_SRC = 1, ARG_DST = 17, ARG_WEIGHTS = 33, ARG_DIFF_SRC = 129, ARG_DIFF_DST = 145;
export const ARG_DIFF_WEIGHTS = 161, ARG_FROM = 1, ARG_TO = 17, ARG_WORKSPACE = 64;
export const POOLING_MAX = 0x1ff, POOLING_AVG = 0x3ff;
/** Binary algorithms (dnnl_alg_kind_t) the engine routes to oneDNN: correctly rounded in float32. */
export const BINARY = { add: 0x1fff0, mul: 0x1fff1, sub: 0x1fff5 } as const;
/** A binary algorithm name. */
export type BinaryAlg = keyof typeof BINARY;
export const ENGINE_CPU = 1, STREAM_DEFAULT = 1;
export const TAG_A = 2, TAG_AB = 3;
export const BACKWARD = 128;
export const ARG_MEAN = 49,
  ARG_VARIANCE = 50,
  ARG_SCALE = 51,
  ARG_SHIFT = 52,
  ARG_DIFF_SCALE = 255,
  ARG_DIFF_SHIFT = 256;
export const BN_GLOBAL_STATS = 1, BN_USE_SCALE = 8, BN_USE_SHIFT = 16;
/** Element-wise algorithms (dnnl_alg_kind_t) the engine routes to oneDNN. */
export const ELTWISE = { relu: 31, swish: 223, gelu_erf: 48, logistic: 175 } as const;
/** An element-wise algorithm name. */
export type EltwiseAlg = keyof typeof ELTWISE;
export const MD_BYTES = 696; // sizeof(dnnl_memory_desc_t)
export const OP_DESC_BYTES = 8192; // >= sizeof(dnnl_convolution_desc_t) (5976)

const P = "pointer", B = "buffer";
/** The oneDNN functions the engine calls. */
export const SYMBOLS = {
  dnnl_version: { parameters: [], result: P },
  dnnl_engine_create: { parameters: [B, "i32", "usize"], result: "i32" },
  dnnl_stream_create: { parameters: [B, P, "u32"], result: "i32" },
  dnnl_stream_wait: { parameters: [P], result: "i32" },
  dnnl_memory_desc_init_by_tag: { parameters: [B, "i32", B, "i32", "i32"], result: "i32" },
  dnnl_memory_desc_init_by_strides: { parameters: [B, "i32", B, "i32", B], result: "i32" },
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
  dnnl_pooling_forward_desc_init: { parameters: [B, "i32", "i32", B, B, B, B, B, B], result: "i32" },
  dnnl_pooling_backward_desc_init: { parameters: [B, "i32", B, B, B, B, B, B], result: "i32" },
  dnnl_layer_normalization_forward_desc_init: { parameters: [B, "i32", B, B, "f32", "u32"], result: "i32" },
  dnnl_layer_normalization_backward_desc_init: {
    parameters: [B, "i32", B, B, B, "f32", "u32"],
    result: "i32",
  },
  dnnl_binary_desc_init: { parameters: [B, "i32", B, B, B], result: "i32" },
  dnnl_matmul_desc_init: { parameters: [B, B, B, P, B], result: "i32" },
  dnnl_primitive_desc_create: { parameters: [B, B, P, P, P], result: "i32" },
  dnnl_primitive_desc_query: { parameters: [P, "i32", "i32", B], result: "i32" },
  dnnl_primitive_desc_query_md: { parameters: [P, "i32", "i32"], result: P },
  dnnl_primitive_create: { parameters: [B, P], result: "i32" },
  dnnl_primitive_execute: { parameters: [P, P, "i32", B], result: "i32" },
  dnnl_reorder_primitive_desc_create: { parameters: [B, P, P, P, P, P], result: "i32" },
  dnnl_memory_create: { parameters: [B, P, P, P], result: "i32" },
  dnnl_memory_set_data_handle: { parameters: [P, P], result: "i32" },
} as const;

/** The opened library's symbols. */
export type Lib = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];
/** A native pointer. */
export type Ptr = Deno.PointerValue;

/** Throws when a oneDNN call did not return dnnl_success. */
export function check(status: number, what: string): void {
  if (status !== 0) throw new Error(`oneDNN ${what} failed (dnnl_status ${status})`);
}

/** A reorder primitive with its two memories and the buffer it writes (or reads, for a computed gradient). */
export type Reorder = { prim: Ptr; from: Ptr; to: Ptr; buf: Float32Array };

/** One convolution direction for one geometry: primitive, memories and the weight reorder it needs. */
export type Prim = {
  prim: Ptr;
  /** User-layout memories (data handles set per call), by exec arg. */
  mems: Map<number, Ptr>;
  /** Weight reorder: hwio <-> the primitive's layout (null when they are the same). */
  reorder: Reorder | null;
  /** Input casts (float32 -> bfloat16, same layout) run before the primitive, by exec arg; absent: none. */
  casts?: Map<number, Reorder>;
  impl: string;
};
