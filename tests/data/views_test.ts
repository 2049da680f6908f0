import assert from "node:assert/strict";
import { centerOffset, ttaViews } from "../../lib/data/views.ts";

Deno.test("centerOffset is torchvision's int(round((n - size) / 2)), half to even", () => {
  assert.deepEqual(
    [[48, 44], [48, 40], [48, 43], [48, 41], [5, 2], [7, 2], [3, 2], [6, 6]].map(([n, s]) =>
      centerOffset(n, s)
    ),
    [2, 4, 2, 4, 2, 2, 0, 0],
  );
});

Deno.test("ttaViews: offsets and flips of torchvision's five_crop / ten_crop, 44 of 48", () => {
  const five = [[0, 0], [0, 4], [4, 0], [4, 4], [2, 2]].map(([top, left]) => ({ top, left, flip: false }));
  assert.deepEqual(ttaViews("none", 48, 44), [five[4]]);
  assert.deepEqual(ttaViews("hflip", 48, 44), [five[4], { top: 2, left: 2, flip: true }]);
  assert.deepEqual(ttaViews("5crop", 48, 44), five);
  // ten_crop mirrors the whole image first: its top-left crop is the mirror of the original's top-right
  assert.deepEqual(ttaViews("10crop", 48, 44).slice(5), [
    { top: 0, left: 4, flip: true },
    { top: 0, left: 0, flip: true },
    { top: 4, left: 4, flip: true },
    { top: 4, left: 0, flip: true },
    { top: 2, left: 2, flip: true },
  ]);
  assert.throws(
    () => ttaViews("10crop", 44, 44),
    /needs crops smaller than the image \(crop 44 of 44\); use hflip/,
  );
  assert.throws(() => ttaViews("none", 40, 44), /crop 44 is larger than the image 40/);
});
