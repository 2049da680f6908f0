import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import assert from "node:assert/strict";
import { AdamW, cosineAnnealingLr, SGD, warmupCosineLr } from "../../lib/train/optim.ts";
import { mulberry32 } from "../../lib/util/rng.ts";

await tf.setBackend("cpu");
const dir = new URL("../fixtures/optim/", import.meta.url);
type Case = {
  lr: number;
  lr_schedule: number[] | null;
  weight_decay: number;
  betas: [number, number];
  eps: number;
  shapes: Record<string, number[]>;
  init: Record<string, number[]>;
  grads: Record<string, number[]>[];
  after: Record<string, number[]>[];
  exp_avg: Record<string, number[]>;
  exp_avg_sq: Record<string, number[]>;
};
const adamw = JSON.parse(Deno.readTextFileSync(new URL("adamw.json", dir))).cases as Record<string, Case>;
const cosine = JSON.parse(Deno.readTextFileSync(new URL("cosine.json", dir))).cases as Record<
  string,
  { base_lr: number; t_max: number; eta_min: number; lrs: number[]; closed_form: number[] }
>;

function close(actual: ArrayLike<number>, expected: number[], tol: number, what: string) {
  assert.equal(actual.length, expected.length, what);
  for (let i = 0; i < expected.length; i++) {
    assert.ok(
      Math.abs(actual[i] - expected[i]) <= tol,
      `${what}[${i}]: ${actual[i]} vs torch ${expected[i]}`,
    );
  }
}

function makeVars(c: Case, tag: string) {
  return Object.entries(c.shapes).map(([k, s]) =>
    tf.tidy(() => tf.variable(tf.tensor(c.init[k], s), true, `${tag}_${k}`))
  );
}

for (const [name, c] of Object.entries(adamw)) {
  for (const mode of ["host", "device"] as const) {
    Deno.test(`AdamW (${mode}) matches torch.optim.AdamW (${name})`, () => {
      const before = tf.memory().numTensors;
      const vars = makeVars(c, `adamw_${mode}_${name}`);
      const keys = Object.keys(c.shapes);
      const opt = new AdamW(vars, {
        lr: c.lr,
        betas: c.betas,
        eps: c.eps,
        weightDecay: c.weight_decay,
        mode,
      });
      assert.equal(opt.mode, mode);
      c.grads.forEach((g, t) => {
        if (c.lr_schedule) opt.lr = c.lr_schedule[t];
        const grads = Object.fromEntries(keys.map((k, i) => [vars[i].name, tf.tensor(g[k], c.shapes[k])]));
        opt.step(grads);
        tf.dispose(Object.values(grads));
        keys.forEach((k, i) => close(vars[i].dataSync(), c.after[t][k], 1e-6, `${name} step ${t + 1} ${k}`));
      });
      const st = opt.exportState();
      assert.equal(st.step, c.grads.length);
      keys.forEach((k, i) => {
        close(st.m[vars[i].name], c.exp_avg[k], 1e-6, `exp_avg ${k}`);
        close(st.v[vars[i].name], c.exp_avg_sq[k], 1e-6, `exp_avg_sq ${k}`);
      });
      opt.dispose();
      tf.dispose(vars);
      assert.equal(tf.memory().numTensors, before, "AdamW leaked tensors");
    });
  }
}

Deno.test("AdamW on the cpu backend: device mode (tensor ops) equals host mode (JS loop) bit for bit, every step", async () => {
  const before = tf.memory().numTensors;
  const r = mulberry32(7);
  const shapes = [[3, 3, 2, 4], [4], [17, 5], [1]];
  const init = shapes.map((s) =>
    Float32Array.from({ length: s.reduce((a, b) => a * b, 1) }, () => r() * 2 - 1)
  );
  const make = (mode: "host" | "device", tag: string = mode) => {
    const vars = shapes.map((s, i) =>
      tf.tidy(() => tf.variable(tf.tensor(init[i], s), true, `adamw_eq_${tag}_${i}`))
    );
    return { vars, opt: new AdamW(vars, { lr: 3e-3, weightDecay: 0.05, mode }) };
  };
  const host = make("host");
  const dev = make("device");
  for (let t = 0; t < 12; t++) {
    // a cosine-like schedule, a variable without a gradient on odd steps, gradients of very different scales
    const lr = 3e-3 * (1 + Math.cos((Math.PI * t) / 12)) / 2;
    host.opt.lr = dev.opt.lr = lr;
    const g = shapes.map((s) =>
      Float32Array.from({ length: s.reduce((a, b) => a * b, 1) }, () => (r() - 0.5) * 10 ** (4 * r() - 3))
    );
    for (const { vars, opt } of [host, dev]) {
      const grads = Object.fromEntries(
        vars.filter((_, i) => !(t % 2 && i === 1)).map((
          v,
        ) => [v.name, tf.tensor(g[vars.indexOf(v)], v.shape)]),
      );
      opt.step(grads);
      tf.dispose(Object.values(grads));
    }
    for (let i = 0; i < shapes.length; i++) {
      assert.deepEqual(dev.vars[i].dataSync(), host.vars[i].dataSync(), `step ${t + 1}, variable ${i}`);
    }
  }
  const [a, b] = [host.opt.exportState(), await dev.opt.readState()];
  assert.equal(b.step, 12);
  shapes.forEach((_, i) => {
    assert.deepEqual(b.m[dev.vars[i].name], a.m[host.vars[i].name], `exp_avg ${i}`);
    assert.deepEqual(b.v[dev.vars[i].name], a.v[host.vars[i].name], `exp_avg_sq ${i}`);
  });
  // device state round-trips through importState
  const copy = make("device", "copy");
  const rename = (m: Record<string, Float32Array>) =>
    Object.fromEntries(Object.values(m).map((x, i) => [copy.vars[i].name, x]));
  copy.opt.importState({ step: b.step, m: rename(b.m), v: rename(b.v) });
  assert.deepEqual(copy.opt.exportState().v[copy.vars[0].name], b.v[dev.vars[0].name]);
  for (const { vars, opt } of [host, dev, copy]) {
    opt.dispose();
    tf.dispose(vars);
  }
  assert.equal(tf.memory().numTensors, before, "AdamW leaked tensors");
});

Deno.test("AdamW picks host mode on cpu backends", () => {
  const v = tf.variable(tf.ones([2]), true, "adamw_mode_default");
  const opt = new AdamW([v]);
  assert.equal(opt.mode, "host");
  opt.dispose();
  v.dispose();
});

Deno.test("AdamW default weight decay is PyTorch's 0.01", () => {
  const v = tf.variable(tf.ones([2]), true, "adamw_default_wd");
  const opt = new AdamW([v]);
  assert.equal(opt.weightDecay, 0.01);
  assert.equal(opt.lr, 1e-3);
  opt.dispose();
  v.dispose();
});

Deno.test("AdamW state export/import resumes identically", () => {
  const c = adamw.default;
  const keys = Object.keys(c.shapes);
  const run = (split: number | null) => {
    let vars = makeVars(c, `adamw_resume_${split}_a`);
    let opt = new AdamW(vars, { lr: c.lr });
    for (let t = 0; t < c.grads.length; t++) {
      if (split !== null && t === split) {
        // "kill": keep only exported values, rebuild everything
        const state = opt.exportState();
        const vals = vars.map((x) => x.dataSync().slice());
        opt.dispose();
        tf.dispose(vars);
        vars = keys.map((k, i) =>
          tf.tidy(() => tf.variable(tf.tensor(vals[i], c.shapes[k]), true, `adamw_resume_${k}_b`))
        );
        opt = new AdamW(vars, { lr: c.lr });
        // names differ after the rebuild: map the state onto the new names by position
        const rename = (r: Record<string, Float32Array>) =>
          Object.fromEntries(Object.values(r).map((a, i) => [vars[i].name, a]));
        opt.importState({ step: state.step, m: rename(state.m), v: rename(state.v) });
      }
      const grads = Object.fromEntries(
        keys.map((k, i) => [vars[i].name, tf.tensor(c.grads[t][k], c.shapes[k])]),
      );
      opt.step(grads);
      tf.dispose(Object.values(grads));
    }
    const out = vars.map((x) => Array.from(x.dataSync()));
    opt.dispose();
    tf.dispose(vars);
    return out;
  };
  assert.deepEqual(run(3), run(null));
});

Deno.test("AdamW.importState rejects a state of the wrong size", () => {
  const v = tf.variable(tf.ones([3]), true, "adamw_bad_state");
  const opt = new AdamW([v]);
  assert.throws(
    () =>
      opt.importState({
        step: 1,
        m: { [v.name]: new Float32Array(2) },
        v: { [v.name]: new Float32Array(3) },
      }),
    /m of adamw_bad_state has 2 values, expected 3/,
  );
  opt.dispose();
  v.dispose();
});

for (const [name, c] of Object.entries(cosine)) {
  Deno.test(`cosineAnnealingLr matches torch CosineAnnealingLR for 25 epochs (${name})`, () => {
    const ours = c.lrs.map((_, e) => cosineAnnealingLr(e, c.base_lr, c.t_max, c.eta_min));
    close(ours, c.lrs, 1e-12, name);
    // beyond T_max the rate climbs back up along the cosine (not clamped at eta_min)
    assert.ok(ours[c.t_max + 1] > ours[c.t_max]);
    close(ours, c.closed_form, 1e-9, `${name} closed form`);
  });
}

// ---- SGD (momentum, Nesterov) and the warm-up + cosine schedule -------------------------------------------

type SgdCase = {
  lr: number;
  momentum: number;
  dampening: number;
  weight_decay: number;
  nesterov: boolean;
  lr_schedule: number[] | null;
  shapes: Record<string, number[]>;
  init: Record<string, number[]>;
  grads: Record<string, number[]>[];
  after: Record<string, number[]>[];
  momentum_buffer: Record<string, number[] | null>;
};
const sgdFile = JSON.parse(Deno.readTextFileSync(new URL("sgd.json", dir)));
const sgd = sgdFile.cases as Record<string, SgdCase>;

for (const [name, c] of Object.entries(sgd)) {
  Deno.test(`SGD matches torch.optim.SGD (${name})`, () => {
    const before = tf.memory().numTensors;
    const vars = makeVars(c as unknown as Case, `sgd_${name}`);
    const keys = Object.keys(c.shapes);
    const opt = new SGD(vars, {
      lr: c.lr,
      momentum: c.momentum,
      dampening: c.dampening,
      weightDecay: c.weight_decay,
      nesterov: c.nesterov,
    });
    c.grads.forEach((g, t) => {
      if (c.lr_schedule) opt.lr = c.lr_schedule[t];
      const grads = Object.fromEntries(keys.map((k, i) => [vars[i].name, tf.tensor(g[k], c.shapes[k])]));
      opt.step(grads);
      tf.dispose(Object.values(grads));
      keys.forEach((k, i) => close(vars[i].dataSync(), c.after[t][k], 1e-6, `${name} step ${t + 1} ${k}`));
    });
    const { buf } = opt.exportSlots();
    keys.forEach((k, i) => {
      if (c.momentum_buffer[k]) close(buf[vars[i].name], c.momentum_buffer[k]!, 1e-6, `momentum_buffer ${k}`);
    });
    opt.dispose();
    tf.dispose(vars);
    assert.equal(tf.memory().numTensors, before, "SGD leaked tensors");
  });
}

Deno.test("SGD state export/import resumes identically; Nesterov without momentum is refused", () => {
  const c = sgd.nesterov_wd;
  const keys = Object.keys(c.shapes);
  const run = (split: boolean) => {
    const vars = makeVars(c as unknown as Case, `sgd_resume_${split}`);
    const mk = () => new SGD(vars, { lr: c.lr, momentum: 0.9, weightDecay: c.weight_decay, nesterov: true });
    let opt = mk();
    c.grads.forEach((g, t) => {
      if (split && t === 3) {
        const slots = opt.exportSlots();
        const step = opt.stepCount;
        opt.dispose();
        opt = mk();
        opt.importSlots(step, slots);
      }
      const grads = Object.fromEntries(keys.map((k, i) => [vars[i].name, tf.tensor(g[k], c.shapes[k])]));
      opt.step(grads);
      tf.dispose(Object.values(grads));
    });
    const out = vars.map((v) => Array.from(v.dataSync()));
    tf.dispose(vars);
    return out;
  };
  assert.deepEqual(run(true), run(false));
  assert.throws(() => new SGD([], { nesterov: true }), /Nesterov momentum requires a momentum/);
});

for (
  const [name, c] of Object.entries(
    sgdFile.warmup_cosine as Record<string, {
      base_lr: number;
      warmup: number;
      total: number;
      eta_min: number;
      start_factor: number;
      lrs: number[];
    }>,
  )
) {
  Deno.test(`warmupCosineLr matches torch LinearLR + CosineAnnealingLR per step (${name})`, () => {
    const got = c.lrs.map((_, t) =>
      warmupCosineLr(t, {
        baseLr: c.base_lr,
        total: c.total,
        warmup: c.warmup,
        etaMin: c.eta_min,
        startFactor: c.start_factor,
      })
    );
    close(got, c.lrs, 1e-12, name);
  });
}

Deno.test("warmupCosineLr: no warm-up is the cosine closed form; past the end it stays at eta_min; bad spans throw", () => {
  for (let t = 0; t <= 10; t++) {
    const want = 0.5 * 0.1 * (1 + Math.cos(Math.PI * t / 10));
    assert.ok(Math.abs(warmupCosineLr(t, { baseLr: 0.1, total: 10, warmup: 0 }) - want) < 1e-15);
  }
  assert.equal(warmupCosineLr(25, { baseLr: 0.1, total: 10, warmup: 2, etaMin: 1e-3 }), 1e-3);
  assert.throws(() => warmupCosineLr(0, { baseLr: 0.1, total: 5, warmup: 5 }), /must be shorter/);
});
