/**
 * tools/train_queue.sh against a fake `deno` on PATH (records its arguments, writes the files a run leaves):
 * finished runs are skipped, stopped ones resumed, new ones started, a failure stops the queue.
 */
import assert from "node:assert/strict";
import { join } from "node:path";

const SCRIPT = new URL("../../tools/train_queue.sh", import.meta.url).pathname;

/** A scratch project: tools/train_queue.sh, a checkpoints/ folder and a fake deno that logs its calls. */
async function project(
  fakeBody: string,
): Promise<{ root: string; calls: () => string[]; env: Record<string, string> }> {
  const root = await Deno.makeTempDir();
  await Deno.mkdir(join(root, "tools"));
  await Deno.copyFile(SCRIPT, join(root, "tools", "train_queue.sh"));
  await Deno.mkdir(join(root, "bin"));
  const fake = join(root, "bin", "deno");
  await Deno.writeTextFile(
    fake,
    `#!/bin/sh\necho "$*" >> "${root}/calls.txt"\ncat > /dev/null\n${fakeBody}\n`,
  );
  await Deno.chmod(fake, 0o755);
  const calls = () => {
    try {
      return Deno.readTextFileSync(join(root, "calls.txt")).trim().split("\n");
    } catch {
      return [];
    }
  };
  return { root, calls, env: { PATH: `${root}/bin:${Deno.env.get("PATH")}` } };
}

async function runQueue(root: string, env: Record<string, string>, queue: string) {
  await Deno.writeTextFile(join(root, "queue.txt"), queue);
  const out = await new Deno.Command("sh", {
    args: [join(root, "tools", "train_queue.sh"), join(root, "queue.txt")],
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  return {
    code: out.code,
    text: new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr),
  };
}

Deno.test("train_queue.sh: skips finished runs, resumes stopped ones, starts new ones, in order", async () => {
  // The fake trainer "finishes" every run it is given: it writes test_report.json into the run folder.
  const { root, calls, env } = await project(
    'run=""; prev=""; for a in "$@"; do [ "$prev" = "--run" ] || [ "$prev" = "--resume" ] && run="$a"; prev="$a"; done\n' +
      'mkdir -p "checkpoints/$run" && echo {} > "checkpoints/$run/test_report.json"',
  );
  await Deno.mkdir(join(root, "checkpoints", "done"), { recursive: true });
  await Deno.writeTextFile(join(root, "checkpoints", "done", "test_report.json"), "{}");
  await Deno.mkdir(join(root, "checkpoints", "half"), { recursive: true });
  await Deno.writeTextFile(join(root, "checkpoints", "half", "config.json"), "{}");
  await Deno.writeTextFile(join(root, "checkpoints", "half", "last.safetensors"), "");
  // killed during its first epoch: config.json but no last.safetensors, so it is resumed too (train starts it
  // from epoch 1 with the saved config; starting it afresh would be refused because the folder exists)
  await Deno.mkdir(join(root, "checkpoints", "first"), { recursive: true });
  await Deno.writeTextFile(join(root, "checkpoints", "first", "config.json"), "{}");
  const r = await runQueue(
    root,
    env,
    "# comment\ndone fer_cnn cpu\n\nhalf vgg_fer cpu\nfirst vgg_fer cpu\nnew resnet_fer scratch\n" +
      "seeded vgg_fer cpu --seed 7 --epochs 30\n",
  );
  assert.equal(r.code, 0, r.text);
  assert.deepEqual(calls(), [
    "task train --resume half",
    "task train --resume first",
    "task train resnet_fer --preset scratch --run new",
    "task train vgg_fer --preset cpu --run seeded --seed 7 --epochs 30",
  ]);
  assert.match(r.text, /seeded: starting vgg_fer --preset cpu --seed 7 --epochs 30\n/);
  assert.match(r.text, /done: finished, skipped/);
  // Run again: everything is finished now, nothing is called.
  const again = await runQueue(
    root,
    env,
    "done fer_cnn cpu\nhalf vgg_fer cpu\nfirst vgg_fer cpu\nnew resnet_fer scratch\nseeded vgg_fer cpu --seed 7\n",
  );
  assert.equal(again.code, 0);
  assert.equal(calls().length, 4);
  await Deno.remove(root, { recursive: true });
});

Deno.test("train_queue.sh: a failing run stops the queue with status 1", async () => {
  const { root, calls, env } = await project("exit 3");
  const r = await runQueue(root, env, "a fer_cnn cpu\nb fer_cnn cpu\n");
  assert.equal(r.code, 1);
  assert.deepEqual(calls(), ["task train fer_cnn --preset cpu --run a"]);
  assert.match(r.text, /a: exit status 3 .*queue stopped/);
  await Deno.remove(root, { recursive: true });
});

Deno.test("train_queue.sh: where deno is not installed (a fresh machine) it trains through npx -y deno@2", async () => {
  const { root, calls } = await project("");
  // a PATH with the tools the script uses and a fake npx, but no deno
  await Deno.remove(join(root, "bin", "deno"));
  for (const tool of ["sh", "dirname", "mkdir", "grep", "date"]) {
    const which = await new Deno.Command("sh", { args: ["-c", `command -v ${tool}`], stdout: "piped" })
      .output();
    await Deno.symlink(new TextDecoder().decode(which.stdout).trim(), join(root, "bin", tool));
  }
  await Deno.writeTextFile(join(root, "bin", "npx"), `#!/bin/sh\necho "npx $*" >> "${root}/calls.txt"\n`);
  await Deno.chmod(join(root, "bin", "npx"), 0o755);
  const r = await runQueue(root, { PATH: join(root, "bin") }, "a fer_cnn cpu --seed 2\n");
  assert.equal(r.code, 0, r.text);
  assert.deepEqual(calls(), ["npx -y deno@2 task train fer_cnn --preset cpu --run a --seed 2"]);
  await Deno.remove(root, { recursive: true });
});
