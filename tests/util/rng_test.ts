import assert from "node:assert/strict";
import { mulberry32, RunRandom } from "../../lib/util/rng.ts";

Deno.test("mulberry32: seeded, and a generator made from a state() continues the stream exactly", () => {
  const a = mulberry32(42);
  const first = Array.from({ length: 5 }, a);
  assert.deepEqual(Array.from({ length: 5 }, mulberry32(42)), first);
  assert.notDeepEqual(Array.from({ length: 5 }, mulberry32(43)), first);
  const resumed = mulberry32(a.state());
  assert.deepEqual(Array.from({ length: 100 }, resumed), Array.from({ length: 100 }, a));
  for (const v of first) assert.ok(v >= 0 && v < 1);
});

Deno.test("RunRandom.steps: an epoch's stream by (seed, epoch), continued from a saved state", () => {
  const rng = new RunRandom(7);
  const s = rng.steps(3);
  s();
  s();
  const later = rng.steps(3, s.state());
  assert.equal(later(), s());
  assert.notEqual(rng.steps(4)(), rng.steps(3)());
});
