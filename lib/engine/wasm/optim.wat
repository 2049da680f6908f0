;; The optimizers' updates on WebAssembly SIMD (four float32 lanes), in torch 1.13's order
;; (`_single_tensor_adamw`, `_single_tensor_sgd`), every operation a correctly rounded float32 operation, so the
;; results equal lib/train/optim.ts's Math.fround loops bit for bit. Compiled to the bytes in optim.ts
;; (tests/engine/wasm_optim_test.ts checks they match).
;;
;; adamw(w, g, m, v, out, n, decay, b1, a1, b2, a2, bc2Sqrt, eps, negStep): byte offsets of five float32
;; arrays in this module's memory, n a multiple of 4; m and v are updated in place, out receives the weights.
;;
;; sgd(w, g, buf, out, n, wd, mom, keep, negLr, nesterov): SGD with weight decay and momentum after the first
;; step (the buffer exists): d = g + w·wd; buf = buf·mom + d·keep; d = nesterov ? d + buf·mom : buf;
;; out = w + d·(−lr). buf is updated in place.
(module
  (memory (export "memory") 1)
  (func (export "adamw")
    (param $w i32) (param $g i32) (param $m i32) (param $v i32) (param $out i32) (param $n i32)
    (param $decay f32) (param $b1 f32) (param $a1 f32) (param $b2 f32) (param $a2 f32)
    (param $bc2 f32) (param $eps f32) (param $neg f32)
    (local $o i32) (local $end i32)
    (local $kdecay v128) (local $kb1 v128) (local $ka1 v128) (local $kb2 v128) (local $ka2 v128)
    (local $kbc2 v128) (local $keps v128) (local $kneg v128)
    (local $gi v128) (local $mi v128) (local $vi v128) (local $denom v128)
    (local.set $kdecay (f32x4.splat (local.get $decay)))
    (local.set $kb1 (f32x4.splat (local.get $b1)))
    (local.set $ka1 (f32x4.splat (local.get $a1)))
    (local.set $kb2 (f32x4.splat (local.get $b2)))
    (local.set $ka2 (f32x4.splat (local.get $a2)))
    (local.set $kbc2 (f32x4.splat (local.get $bc2)))
    (local.set $keps (f32x4.splat (local.get $eps)))
    (local.set $kneg (f32x4.splat (local.get $neg)))
    (local.set $end (i32.shl (local.get $n) (i32.const 2)))
    (local.set $o (i32.const 0))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $o) (local.get $end)))
        (local.set $gi (v128.load (i32.add (local.get $g) (local.get $o))))
        ;; exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1)
        (local.set $mi (f32x4.add
          (f32x4.mul (v128.load (i32.add (local.get $m) (local.get $o))) (local.get $kb1))
          (f32x4.mul (local.get $gi) (local.get $ka1))))
        ;; exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        (local.set $vi (f32x4.add
          (f32x4.mul (v128.load (i32.add (local.get $v) (local.get $o))) (local.get $kb2))
          (f32x4.mul (f32x4.mul (local.get $gi) (local.get $gi)) (local.get $ka2))))
        (v128.store (i32.add (local.get $m) (local.get $o)) (local.get $mi))
        (v128.store (i32.add (local.get $v) (local.get $o)) (local.get $vi))
        ;; denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(eps)
        (local.set $denom (f32x4.add (f32x4.div (f32x4.sqrt (local.get $vi)) (local.get $kbc2)) (local.get $keps)))
        ;; param.mul_(1 - lr * weight_decay); param.addcdiv_(exp_avg, denom, value=-step_size)
        (v128.store (i32.add (local.get $out) (local.get $o))
          (f32x4.add
            (f32x4.mul (v128.load (i32.add (local.get $w) (local.get $o))) (local.get $kdecay))
            (f32x4.mul (f32x4.div (local.get $mi) (local.get $denom)) (local.get $kneg))))
        (local.set $o (i32.add (local.get $o) (i32.const 16)))
        (br $next))))
  (func (export "sgd")
    (param $w i32) (param $g i32) (param $buf i32) (param $out i32) (param $n i32)
    (param $wd f32) (param $mom f32) (param $keep f32) (param $neglr f32) (param $nesterov i32)
    (local $o i32) (local $end i32)
    (local $kwd v128) (local $kmom v128) (local $kkeep v128) (local $kneglr v128)
    (local $wi v128) (local $d v128) (local $bi v128)
    (local.set $kwd (f32x4.splat (local.get $wd)))
    (local.set $kmom (f32x4.splat (local.get $mom)))
    (local.set $kkeep (f32x4.splat (local.get $keep)))
    (local.set $kneglr (f32x4.splat (local.get $neglr)))
    (local.set $end (i32.shl (local.get $n) (i32.const 2)))
    (local.set $o (i32.const 0))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $o) (local.get $end)))
        (local.set $wi (v128.load (i32.add (local.get $w) (local.get $o))))
        ;; d_p = d_p.add(param, alpha=weight_decay)
        (local.set $d (f32x4.add (v128.load (i32.add (local.get $g) (local.get $o)))
          (f32x4.mul (local.get $wi) (local.get $kwd))))
        ;; buf.mul_(momentum).add_(d_p, alpha=1 - dampening)
        (local.set $bi (f32x4.add
          (f32x4.mul (v128.load (i32.add (local.get $buf) (local.get $o))) (local.get $kmom))
          (f32x4.mul (local.get $d) (local.get $kkeep))))
        (v128.store (i32.add (local.get $buf) (local.get $o)) (local.get $bi))
        ;; nesterov: d_p = d_p.add(buf, alpha=momentum); else d_p = buf
        (local.set $d (if (result v128) (local.get $nesterov)
          (then (f32x4.add (local.get $d) (f32x4.mul (local.get $bi) (local.get $kmom))))
          (else (local.get $bi))))
        ;; param.add_(d_p, alpha=-lr)
        (v128.store (i32.add (local.get $out) (local.get $o))
          (f32x4.add (local.get $wi) (f32x4.mul (local.get $d) (local.get $kneglr))))
        (local.set $o (i32.add (local.get $o) (i32.const 16)))
        (br $next))))
)
