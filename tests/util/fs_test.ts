import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isTempName, removeTempsIn, tempPathFor, writeAtomic, writeAtomicSync } from "../../lib/util/fs.ts";
import { listFiles } from "../runs/helpers.ts";

Deno.test("atomic writes: temp names, clean-up of stale temps only", async () => {
  const dir = mkdtempSync(join(tmpdir(), "fer-fs-"));
  try {
    const p = join(dir, "last.safetensors");
    const tmp = tempPathFor(p);
    assert.match(tmp, /last\.safetensors\.\d+-[0-9a-f]+\.tmp$/);
    assert.ok(isTempName(tmp.split("/").pop()!));
    assert.ok(!isTempName("last.safetensors") && !isTempName("notes.tmp"));
    await writeAtomic(p, "one");
    writeAtomicSync(join(dir, "b.json"), new TextEncoder().encode("two"));
    assert.equal(Deno.readTextFileSync(p), "one");
    writeFileSync(tmp, "partial");
    writeFileSync(join(dir, "notes.tmp"), "not ours");
    assert.deepEqual(removeTempsIn(dir), [tmp]);
    assert.deepEqual(listFiles(dir), ["b.json", "last.safetensors", "notes.tmp"]);
    // a failed write leaves the old file and no temp
    await assert.rejects(writeAtomic(join(dir, "missing", "x"), "y"));
    assert.deepEqual(listFiles(dir), ["b.json", "last.safetensors", "notes.tmp"]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
