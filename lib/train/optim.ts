/**
 * AdamW, SGD (momentum, Nesterov) and CosineAnnealingLR with PyTorch's exact semantics (torch.optim.AdamW and
 * torch.optim.SGD, single-tensor path, amsgrad off; torch.optim.lr_scheduler.CosineAnnealingLR), and a per-step
 * linear warm-up + cosine schedule for training from scratch.
 *
 * Hand-written instead of tf.train.adam because tfjs has no AdamW (no decoupled weight decay), its Adam folds
 * the bias correction into a different epsilon placement than PyTorch, and its state is not exportable for a
 * resume. The update below follows torch 1.13 `_single_tensor_adamw` step by step; the scalar factors are
 * computed in float64 as Python does, the elementwise arithmetic in float32 as torch does.
 *
 * Two implementations of the same update: on backends whose tensors live in JS memory (cpu, native, wasm) a
 * plain loop over the float32 arrays (`host`); elsewhere (webgpu, tensorflow) the same operations as tensor ops,
 * so weights, gradients and moments never leave the device (`device`). On the cpu backend the two give
 * bit-identical results (tests/train/optim_test.ts); the loop stays the CPU path because a chain of ten
 * elementwise tensor ops per variable costs about a quarter of a training step there.
 */
import * as tf from "@tensorflow/tfjs-core";
import { hostBackend } from "../engine/webgpu.ts";
import { outArray, readView } from "../engine/pool.ts";
import { type AdamWFactors, type SgdFactors, WasmOptimState } from "../engine/wasm/optim.ts";

/** Hyper-parameters of {@link AdamW} (PyTorch defaults). */
export type AdamWOptions = {
  /** Learning rate (default 1e-3); settable later through `optimizer.lr`. */
  lr?: number;
  /** (beta1, beta2), default (0.9, 0.999). */
  betas?: [number, number];
  /** Added to the denominator (default 1e-8). */
  eps?: number;
  /** Decoupled weight decay (default 0.01, as torch.optim.AdamW). */
  weightDecay?: number;
  /**
   * `host`: the update as a JS loop over the values (reads every weight and gradient); `device`: as tensor
   * ops on the backend. Default: `host` on cpu, native and wasm, `device` on any other backend.
   */
  mode?: "host" | "device";
  /**
   * In host mode, run the update on WebAssembly SIMD (lib/engine/wasm/optim.ts; bit for bit the JS loop) when
   * it is available. Default true; `FER_WASM_OPTIM=0` turns it off everywhere.
   */
  simd?: boolean;
};

/** Exported optimizer state: step count and first/second moments per variable name (float32 values). */
export type AdamWState = {
  step: number;
  m: Record<string, Float32Array>;
  v: Record<string, Float32Array>;
};

/**
 * What the training loop needs of an optimizer: a settable learning rate, a step, and its state as named
 * per-variable buffers ("slots") for the resume file.
 */
export interface Optimizer {
  lr: number;
  readonly stepCount: number;
  step(grads: tf.NamedTensorMap): void;
  /** Prefix of the state's tensor names in the resume file (`adam`, `sgd`). */
  readonly stateName: string;
  /** Slot name -> variable name -> values (copies), read asynchronously (device-resident state). */
  readSlots(): Promise<Record<string, Record<string, Float32Array>>>;
  /** Restores {@link exportSlots} output and the step count. */
  importSlots(step: number, slots: Record<string, Record<string, Float32Array>>): void;
  dispose(): void;
}

/**
 * One host-side update of every variable that has a gradient: `update(index, name, w, g, out)` reads the
 * weights and the gradient in place (readView: no copy, and they stay in the pool's reach) and writes the new
 * weights into `out`, a pooled array the variable then takes. No fresh memory per step.
 */
function hostUpdate(
  vars: tf.Variable[],
  grads: tf.NamedTensorMap,
  update: (index: number, name: string, w: Float32Array, g: Float32Array, out: Float32Array) => void,
): void {
  for (const [index, p] of vars.entries()) {
    const gt = grads[p.name];
    if (!gt) continue;
    const w = readView(p);
    const out = outArray(tf.backend(), w.length);
    update(index, p.name, w, readView(gt), out);
    const t = tf.tensor(out, p.shape, "float32");
    p.assign(t);
    t.dispose();
  }
}

/**
 * One AdamW update over float32 arrays, every operation rounded to float32 (Math.fround) in torch's order: `m`
 * and `v` in place, the new weights into `out`. lib/engine/wasm/optim.wat is the same update on SIMD lanes.
 */
function adamwLoop(
  w: Float32Array,
  g: Float32Array,
  m: Float32Array,
  v: Float32Array,
  out: Float32Array,
  k: AdamWFactors,
): void {
  const f = Math.fround;
  const { bc2Sqrt, decay, negStep, b1, b2, a1, a2, eps } = k;
  for (let i = 0; i < w.length; i++) {
    const gi = g[i];
    // param.mul_(1 - lr * weight_decay)
    const pi = f(w[i] * decay);
    // exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1)
    const mi = f(f(m[i] * b1) + f(gi * a1));
    // exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
    const vi = f(f(v[i] * b2) + f(f(gi * gi) * a2));
    // denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(eps)
    const denom = f(f(f(Math.sqrt(vi)) / bc2Sqrt) + eps);
    // param.addcdiv_(exp_avg, denom, value=-step_size)
    out[i] = pi + f(f(mi / denom) * negStep);
    m[i] = mi;
    v[i] = vi;
  }
}

/**
 * AdamW over a fixed list of variables. `step(grads)` takes gradients keyed by variable name (as returned by
 * `tf.variableGrads`) and updates the variables in place; variables without a gradient are left untouched and
 * their moments are not advanced (like a PyTorch parameter whose `.grad` is None).
 */
export class AdamW implements Optimizer {
  readonly stateName = "adam";
  /** Learning rate used by the next `step` (set it from a scheduler). */
  lr: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;
  /** Number of steps taken (PyTorch keeps one per parameter; all ours advance together). */
  stepCount = 0;
  /** Where the update runs (see {@link AdamWOptions.mode}). */
  readonly mode: "host" | "device";
  private readonly vars: tf.Variable[];
  /** Moments: Float32Array in host mode, tensors in device mode. */
  private readonly m = new Map<string, Float32Array>();
  private readonly v = new Map<string, Float32Array>();
  private readonly mT = new Map<string, tf.Tensor>();
  private readonly vT = new Map<string, tf.Tensor>();
  /** Host mode on WebAssembly SIMD: the moments live in its memory (this.m / this.v hold views of them). */
  private readonly wasm: WasmOptimState | null = null;

  constructor(vars: tf.Variable[], opts: AdamWOptions = {}) {
    this.vars = vars;
    this.lr = opts.lr ?? 1e-3;
    [this.beta1, this.beta2] = opts.betas ?? [0.9, 0.999];
    this.eps = opts.eps ?? 1e-8;
    this.weightDecay = opts.weightDecay ?? 0.01;
    this.mode = opts.mode ?? (hostBackend() ? "host" : "device");
    const simd = (opts.simd ?? true) && this.mode === "host";
    this.wasm = simd ? WasmOptimState.create(vars.map((x) => x.size), 2) : null;
    const names = new Set<string>();
    for (const [i, x] of vars.entries()) {
      if (names.has(x.name)) throw new Error(`AdamW: duplicate variable name ${x.name}`);
      names.add(x.name);
      if (this.mode === "host") {
        this.m.set(x.name, this.wasm ? this.wasm.slot(0, i) : new Float32Array(x.size));
        this.v.set(x.name, this.wasm ? this.wasm.slot(1, i) : new Float32Array(x.size));
      } else {
        this.mT.set(x.name, tf.zeros(x.shape, "float32"));
        this.vT.set(x.name, tf.zeros(x.shape, "float32"));
      }
    }
  }

  /** The step's scalar factors, rounded to float32 as torch's float32 tensor arithmetic sees them. */
  private factors() {
    const f = Math.fround;
    const step = this.stepCount;
    const lr = this.lr;
    const bc1 = 1 - this.beta1 ** step;
    return {
      bc2Sqrt: f(Math.sqrt(1 - this.beta2 ** step)),
      decay: f(1 - lr * this.weightDecay),
      negStep: f(-(lr / bc1)),
      b1: f(this.beta1),
      b2: f(this.beta2),
      a1: f(1 - this.beta1),
      a2: f(1 - this.beta2),
      eps: f(this.eps),
    };
  }

  /**
   * Applies one AdamW update with the current `lr`. Does not dispose `grads`.
   *
   * The update runs as one plain loop per variable over float32 arrays, each operation rounded to float32
   * (Math.fround) in torch's order: on CPU backends a chain of ten elementwise tensor ops per variable cost
   * about a quarter of a training step. Where WebAssembly SIMD is available the same loop runs there, four
   * lanes at a time, with bit-identical results (lib/engine/wasm/optim.ts).
   */
  step(grads: tf.NamedTensorMap): void {
    this.stepCount++;
    if (this.mode === "device") return this.stepDevice(grads);
    const k = this.factors();
    hostUpdate(this.vars, grads, (index, name, w, g, out) => {
      if (this.wasm) this.wasm.adamw(index, w, g, out, k);
      else adamwLoop(w, g, this.m.get(name)!, this.v.get(name)!, out, k);
    });
  }

  /**
   * The host loop's operations, in the same order, as tensor ops (each float32-rounded by the backend): the
   * values stay on the device; only the scalar factors travel, as uniforms of 4 bytes each.
   */
  private stepDevice(grads: tf.NamedTensorMap): void {
    const k = this.factors();
    const s = tf.tidy(() => {
      const c = (x: number) => tf.keep(tf.scalar(x, "float32"));
      return {
        bc2Sqrt: c(k.bc2Sqrt),
        decay: c(k.decay),
        negStep: c(k.negStep),
        b1: c(k.b1),
        b2: c(k.b2),
        a1: c(k.a1),
        a2: c(k.a2),
        eps: c(k.eps),
      };
    });
    for (const p of this.vars) {
      const g = grads[p.name];
      if (!g) continue;
      const [m, v] = tf.tidy(() => {
        const pi = tf.mul(p, s.decay);
        const mi = tf.add(tf.mul(this.mT.get(p.name)!, s.b1), tf.mul(g, s.a1));
        const vi = tf.add(tf.mul(this.vT.get(p.name)!, s.b2), tf.mul(tf.mul(g, g), s.a2));
        const denom = tf.add(tf.div(tf.sqrt(vi), s.bc2Sqrt), s.eps);
        p.assign(tf.add(pi, tf.mul(tf.div(mi, denom), s.negStep)));
        return [mi, vi];
      });
      this.mT.get(p.name)!.dispose();
      this.vT.get(p.name)!.dispose();
      this.mT.set(p.name, m);
      this.vT.set(p.name, v);
    }
    tf.dispose(Object.values(s));
  }

  /**
   * A copy of the state (for checkpoints), read synchronously: in device mode this needs a backend with
   * synchronous reads (not webgpu under Deno); {@link readState} works everywhere.
   */
  exportState(): AdamWState {
    const m: Record<string, Float32Array> = {};
    const v: Record<string, Float32Array> = {};
    for (const p of this.vars) {
      m[p.name] = this.mode === "host"
        ? this.m.get(p.name)!.slice()
        : this.mT.get(p.name)!.dataSync().slice() as Float32Array;
      v[p.name] = this.mode === "host"
        ? this.v.get(p.name)!.slice()
        : this.vT.get(p.name)!.dataSync().slice() as Float32Array;
    }
    return { step: this.stepCount, m, v };
  }

  /** A copy of the state (for checkpoints), read asynchronously from the device in device mode. */
  async readState(): Promise<AdamWState> {
    if (this.mode === "host") return this.exportState();
    const m: Record<string, Float32Array> = {};
    const v: Record<string, Float32Array> = {};
    for (const p of this.vars) {
      m[p.name] = (await this.mT.get(p.name)!.data()).slice() as Float32Array;
      v[p.name] = (await this.vT.get(p.name)!.data()).slice() as Float32Array;
    }
    return { step: this.stepCount, m, v };
  }

  /** Restores a state from {@link exportState}; every variable must be present with a matching size. */
  importState(state: AdamWState): void {
    for (const p of this.vars) {
      for (const key of ["m", "v"] as const) {
        const vals = state[key][p.name];
        if (!vals) throw new Error(`AdamW state: no ${key} for variable ${p.name}`);
        if (vals.length !== p.size) {
          throw new Error(`AdamW state: ${key} of ${p.name} has ${vals.length} values, expected ${p.size}`);
        }
      }
    }
    for (const p of this.vars) {
      for (const [key, store, tensors] of [["m", this.m, this.mT], ["v", this.v, this.vT]] as const) {
        const vals = state[key][p.name];
        if (this.mode === "host") store.get(p.name)!.set(vals);
        else {
          tensors.get(p.name)!.dispose();
          tensors.set(p.name, tf.tensor(Float32Array.from(vals), p.shape, "float32"));
        }
      }
    }
    this.stepCount = state.step;
  }

  /** The moments as slots `m` and `v` (the resume file names them `adam_m.<i>`, `adam_v.<i>`). */
  async readSlots(): Promise<Record<string, Record<string, Float32Array>>> {
    const s = await this.readState();
    return { m: s.m, v: s.v };
  }

  /** Restores {@link exportSlots}. */
  importSlots(step: number, slots: Record<string, Record<string, Float32Array>>): void {
    this.importState({ step, m: slots.m ?? {}, v: slots.v ?? {} });
  }

  /** Frees the moment buffers (not the parameters). */
  dispose(): void {
    this.m.clear();
    this.v.clear();
    tf.dispose([...this.mT.values(), ...this.vT.values()]);
    this.mT.clear();
    this.vT.clear();
  }
}

/** Hyper-parameters of {@link SGD} (PyTorch's names and defaults, except that lr has a default). */
export type SGDOptions = {
  lr?: number;
  momentum?: number;
  dampening?: number;
  /** L2 penalty added to the gradient (coupled, as torch.optim.SGD). */
  weightDecay?: number;
  nesterov?: boolean;
  /**
   * Run the updates after the first on WebAssembly SIMD (lib/engine/wasm/optim.ts; bit for bit the JS loop)
   * when it is available and momentum and weight decay are both non-zero. Default true; `FER_WASM_OPTIM=0`
   * turns it off everywhere.
   */
  simd?: boolean;
};

/**
 * One SGD update over float32 arrays in torch's order, every operation rounded to float32: the momentum buffer
 * `b` in place (a copy of d_p on the `first` step), the new weights into `out`. lib/engine/wasm/optim.wat is the
 * same update (after the first step, with weight decay and momentum) on SIMD lanes.
 */
function sgdLoop(
  w: Float32Array,
  g: Float32Array,
  b: Float32Array,
  out: Float32Array,
  k: SgdFactors,
  first: boolean,
): void {
  const f = Math.fround;
  const { wd, mom, keep, negLr, nesterov } = k;
  for (let i = 0; i < w.length; i++) {
    // d_p = d_p.add(param, alpha=weight_decay)
    let d = wd !== 0 ? f(g[i] + f(w[i] * wd)) : g[i];
    if (mom !== 0) {
      // buf = clone(d_p) on the first step, else buf.mul_(momentum).add_(d_p, alpha=1 - dampening)
      const bi = first ? d : f(f(b[i] * mom) + f(d * keep));
      b[i] = bi;
      // nesterov: d_p = d_p.add(buf, alpha=momentum); else d_p = buf
      d = nesterov ? f(d + f(bi * mom)) : bi;
    }
    // param.add_(d_p, alpha=-lr)
    out[i] = f(w[i] + f(d * negLr));
  }
}

/**
 * torch.optim.SGD (torch 1.13 `_single_tensor_sgd`): `g += wd·p`; with momentum, the buffer starts as a copy of
 * `g` on the first step and is `buf = momentum·buf + (1 - dampening)·g` afterwards; Nesterov uses
 * `g + momentum·buf`, plain momentum `buf`; then `p -= lr·g`. Float32 arithmetic in torch's order. Hand-written
 * for the same reasons as {@link AdamW} (tfjs' momentum optimizer has no weight decay and a different update).
 * The update is a host loop over the values, so it runs on backends whose tensors live in JS memory (cpu,
 * native, wasm); lib/train/loop.ts refuses it elsewhere.
 */
export class SGD implements Optimizer {
  readonly stateName = "sgd";
  lr: number;
  readonly momentum: number;
  readonly dampening: number;
  readonly weightDecay: number;
  readonly nesterov: boolean;
  stepCount = 0;
  private readonly vars: tf.Variable[];
  private readonly buf = new Map<string, Float32Array>();
  /** The momentum buffers in WebAssembly memory (this.buf holds views of them), when SIMD serves this setup. */
  private readonly wasm: WasmOptimState | null = null;

  constructor(vars: tf.Variable[], opts: SGDOptions = {}) {
    this.vars = vars;
    this.lr = opts.lr ?? 1e-2;
    this.momentum = opts.momentum ?? 0;
    this.dampening = opts.dampening ?? 0;
    this.weightDecay = opts.weightDecay ?? 0;
    this.nesterov = opts.nesterov ?? false;
    if (this.nesterov && (this.momentum <= 0 || this.dampening !== 0)) {
      throw new Error("SGD: Nesterov momentum requires a momentum and zero dampening (as torch.optim.SGD)");
    }
    const simd = (opts.simd ?? true) && this.momentum !== 0 && this.weightDecay !== 0;
    this.wasm = simd ? WasmOptimState.create(vars.map((x) => x.size), 1) : null;
    for (const [i, x] of vars.entries()) {
      if (this.buf.has(x.name)) throw new Error(`SGD: duplicate variable name ${x.name}`);
      this.buf.set(x.name, this.wasm ? this.wasm.slot(0, i) : new Float32Array(x.size));
    }
  }

  /** Applies one update with the current `lr`. Does not dispose `grads`. */
  step(grads: tf.NamedTensorMap): void {
    const f = Math.fround;
    const first = this.stepCount === 0;
    this.stepCount++;
    const lr = f(this.lr);
    const wd = f(this.weightDecay);
    const mom = f(this.momentum);
    const keep = f(1 - this.dampening);
    const k = { wd, mom, keep, negLr: -lr, nesterov: this.nesterov };
    hostUpdate(this.vars, grads, (index, name, w, g, out) => {
      // the buffer's first value is a copy of d_p: that step stays in JS
      if (this.wasm && !first) this.wasm.sgd(index, w, g, out, k);
      else sgdLoop(w, g, this.buf.get(name)!, out, k, first);
    });
  }

  /** The momentum buffers as slot `buf` (the resume file names them `sgd_buf.<i>`). */
  exportSlots(): Record<string, Record<string, Float32Array>> {
    return this.copySlots();
  }

  /** {@link exportSlots} for the {@link Optimizer} interface. */
  readSlots(): Promise<Record<string, Record<string, Float32Array>>> {
    return Promise.resolve(this.copySlots());
  }

  private copySlots(): Record<string, Record<string, Float32Array>> {
    const buf: Record<string, Float32Array> = {};
    for (const p of this.vars) buf[p.name] = this.buf.get(p.name)!.slice();
    return { buf };
  }

  /** Restores {@link exportSlots}; every variable must be present with a matching size. */
  importSlots(step: number, slots: Record<string, Record<string, Float32Array>>): void {
    for (const p of this.vars) {
      const vals = slots.buf?.[p.name];
      if (!vals) throw new Error(`SGD state: no momentum buffer for variable ${p.name}`);
      if (vals.length !== p.size) {
        throw new Error(`SGD state: buffer of ${p.name} has ${vals.length} values, expected ${p.size}`);
      }
      this.buf.get(p.name)!.set(vals);
    }
    this.stepCount = step;
  }

  dispose(): void {
    this.buf.clear();
  }
}

/**
 * Linear warm-up then cosine decay, evaluated per optimizer step (`t` = steps taken so far, 0-based):
 * for `t < warmup` the rate rises linearly from `baseLr·startFactor` to `baseLr` (torch LinearLR's
 * `start_factor + (1 - start_factor)·t/warmup`); afterwards `etaMin + (baseLr - etaMin)(1 + cos(π·(t -
 * warmup)/(total - warmup)))/2`, reaching `etaMin` at `t = total` (and staying there). The rate is a pure
 * function of the step, so a resumed run needs no scheduler state. With `warmup = 0` this is the closed form
 * of CosineAnnealingLR over `total` steps.
 */
export function warmupCosineLr(
  t: number,
  { baseLr, total, warmup, etaMin = 0, startFactor = 0.01 }: {
    baseLr: number;
    total: number;
    warmup: number;
    etaMin?: number;
    startFactor?: number;
  },
): number {
  if (!(t >= 0)) throw new RangeError(`step must be >= 0, got ${t}`);
  if (!(total > 0) || !(warmup >= 0) || warmup >= total) {
    throw new RangeError(`warm-up (${warmup} steps) must be shorter than the schedule (${total} steps)`);
  }
  if (t < warmup) return baseLr * (startFactor + (1 - startFactor) * t / warmup);
  const p = Math.min(1, (t - warmup) / (total - warmup));
  return etaMin + (baseLr - etaMin) * (1 + Math.cos(Math.PI * p)) / 2;
}

/**
 * CosineAnnealingLR as PyTorch computes it when stepped once per epoch: epoch 0 uses `baseLr`; later epochs use
 * the recursive form of `get_lr()` (which equals the closed form `etaMin + (baseLr - etaMin)(1 + cos(pi e /
 * tMax))/2` up to rounding, so past `tMax` the rate rises again along the same cosine, period 2·tMax). The
 * recursion is replayed from epoch 0, so the value depends only on the epoch: nothing to save for a resume.
 */
export function cosineAnnealingLr(epoch: number, baseLr: number, tMax: number, etaMin = 0): number {
  if (!Number.isInteger(epoch) || epoch < 0) {
    throw new RangeError(`epoch must be an integer >= 0, got ${epoch}`);
  }
  if (!(tMax > 0)) throw new RangeError(`tMax must be > 0, got ${tMax}`);
  let lr = baseLr;
  for (let e = 1; e <= epoch; e++) {
    if ((e - 1 - tMax) % (2 * tMax) === 0) {
      lr = lr + (baseLr - etaMin) * (1 - Math.cos(Math.PI / tMax)) / 2;
    } else {
      lr = (1 + Math.cos(Math.PI * e / tMax)) / (1 + Math.cos(Math.PI * (e - 1) / tMax)) * (lr - etaMin) +
        etaMin;
    }
  }
  return lr;
}

/** Error for an optimizer a config cannot have (unknown kind, or SGD on a device backend). */
export class OptimizerError extends Error {
  override name = "OptimizerError";
}

/** What {@link makeOptimizer} reads from a training config (lib/train/config.ts). */
export type OptimizerConfig = {
  optimizer?: "adamw" | "sgd";
  lr: number;
  weightDecay: number;
  momentum?: number;
  nesterov?: boolean;
};

/** The optimizer a config names (AdamW by default) over `vars`. SGD runs only on host backends. */
export function makeOptimizer(cfg: OptimizerConfig, vars: tf.Variable[]): Optimizer {
  const kind = cfg.optimizer ?? "adamw";
  if (kind === "adamw") return new AdamW(vars, { lr: cfg.lr, weightDecay: cfg.weightDecay });
  if (kind === "sgd") {
    if (!hostBackend()) {
      throw new OptimizerError(
        `optimizer "sgd" runs on the cpu, native and wasm backends (tensors in JS memory); this is ` +
          `"${tf.getBackend()}": use optimizer "adamw" or FER_BACKEND=native`,
      );
    }
    return new SGD(vars, {
      lr: cfg.lr,
      weightDecay: cfg.weightDecay,
      momentum: cfg.momentum ?? 0.9,
      nesterov: cfg.nesterov ?? true,
    });
  }
  throw new OptimizerError(`unknown optimizer "${kind}" (adamw, sgd)`);
}
