/**
 * Pretrained-weight loading: safetensors reading/writing, timm weight resolution (local file, Hugging Face
 * cache, download) and torch-to-tfjs state-dict assignment. See the module comments of each file.
 */

export * from "./safetensors.ts";
export * from "./hub.ts";
export * from "./convert.ts";
