import assert from "node:assert/strict";
import { averageViews } from "../../lib/eval/combine.ts";

Deno.test("averageViews: mean of probabilities vs softmax of mean logits, by hand", () => {
  // view 1: logits (0, ln 9) -> (0.1, 0.9); view 2: (0, 0) -> (0.5, 0.5)
  const views = [Float32Array.from([0, Math.log(9)]), Float32Array.from([0, 0])];
  const p = averageViews(views, 2, "prob");
  assert.ok(Math.abs(p[0] - 0.3) < 1e-7 && Math.abs(p[1] - 0.7) < 1e-7, `${p}`);
  // mean logits (0, ln 3) -> (0.25, 0.75)
  const l = averageViews(views, 2, "logit");
  assert.ok(Math.abs(l[0] - 0.25) < 1e-7 && Math.abs(l[1] - 0.75) < 1e-7, `${l}`);
  // two images of three classes: rows are independent
  const two = averageViews([Float32Array.from([0, 0, 0, 5, 0, 0])], 3, "prob");
  assert.ok(Math.abs(two[0] - 1 / 3) < 1e-7 && two[3] > 0.98);
  assert.throws(() => averageViews([], 2, "prob"), /no views/);
});
