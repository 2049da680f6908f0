import assert from "node:assert/strict";

const CLI = new URL("../../lib/cli/models.ts", import.meta.url).pathname;

async function run(...args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CLI, ...args],
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  return {
    code: out.code,
    stdout: new TextDecoder().decode(out.stdout),
    stderr: new TextDecoder().decode(out.stderr),
  };
}

Deno.test("cli models --json lists every model with params and input", async () => {
  const r = await run("--json");
  assert.equal(r.code, 0, r.stderr);
  const { models } = JSON.parse(r.stdout.trim().split("\n").at(-1)!);
  const b3 = models.find((m: { name: string }) => m.name === "efficientnet_b3");
  assert.deepEqual(b3, { name: "efficientnet_b3", params: 10_706_991, input: [224, 224, 3] });
  assert.equal(models.find((m: { name: string }) => m.name === "convnext_tiny").params, 27_825_511);
  assert.ok(models.some((m: { name: string }) => m.name === "fer_cnn_small"));
});

Deno.test("cli models: unknown model and bad numbers are clear errors (exit status 2, the usage)", async () => {
  const r = await run("--step", "resnet9");
  assert.equal(r.code, 2);
  assert.match(r.stderr, /unknown model "resnet9"; registered: [\s\S]*usage: deno task models/);
  const r2 = await run("--step", "fer_cnn_small", "--batch", "0");
  assert.equal(r2.code, 2);
  assert.match(r2.stderr, /--batch must be an integer between 1 and 4096, got "0"/);
  const r3 = await run("--step", "fer_cnn_small", "--batch", "4096", "--size", "2048");
  assert.equal(r3.code, 2);
  assert.match(r3.stderr, /--batch 4096 at --size 2048 needs about \d+\.\d GiB, .* GiB is available/);
});
