/**
 * AdamW for the engine benchmark and anyone else: re-exports the project's PyTorch-exact implementation in
 * lib/train/optim.ts (decoupled weight decay; tfjs has no AdamW) so there is one optimizer, not two.
 */
export { AdamW, type AdamWOptions } from "../train/optim.ts";
