/** `deno task serve` argument errors (the demo itself is tested in tests/web/demo_test.ts). */
import assert from "node:assert/strict";

const SERVE = new URL("../../lib/cli/serve.ts", import.meta.url).pathname;

Deno.test("serve: --tta with an existing export (--model) is refused, naming why", async () => {
  for (const extra of [["--tta", "none"], ["--tta-average", "logit"]]) {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", SERVE, "--model", Deno.cwd(), ...extra],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const err = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 2, err);
    assert.match(err, /--tta is chosen when a run is exported; an existing export \(--model\) keeps its own/);
  }
});
