import assert from "node:assert/strict";
import {
  escapeHtml,
  inNotebook,
  jupyter,
  type JupyterDisplay,
  notebookProgress,
  setJupyter,
  show,
  showHTML,
  showTable,
  showText,
  tableHTML,
  tableText,
} from "../../lib/viz/display.ts";

interface Call {
  obj: Record<string, string>;
  options?: { raw?: boolean; update?: boolean; display_id?: string };
}

/** Runs `fn` with a stub kernel API that records every display call. */
async function withKernel(fn: (calls: Call[]) => Promise<void>): Promise<void> {
  const calls: Call[] = [];
  const stub: JupyterDisplay = {
    display(obj, options) {
      calls.push({ obj: obj as Record<string, string>, options });
      return Promise.resolve();
    },
  };
  setJupyter(stub);
  try {
    await fn(calls);
  } finally {
    setJupyter(undefined);
  }
}

/** Captures console.log / console.error output while `fn` runs. */
async function captureConsole(fn: () => Promise<void>): Promise<{ log: string[]; error: string[] }> {
  const out = { log: [] as string[], error: [] as string[] };
  const { log, error } = console;
  console.log = (...args: unknown[]) => out.log.push(args.join(" "));
  console.error = (...args: unknown[]) => out.error.push(args.join(" "));
  try {
    await fn();
  } finally {
    console.log = log;
    console.error = error;
  }
  return out;
}

const SVG = '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><title>Tiny</title></svg>';

Deno.test("outside the kernel: no Jupyter API, short console fallbacks", async () => {
  // `deno test` is not `deno jupyter`: reading Deno.jupyter throws there, which must mean "not in a kernel".
  assert.equal(jupyter(), undefined);
  assert.equal(inNotebook(), false);
  const out = await captureConsole(async () => {
    await show(SVG);
    await show(SVG, { quiet: true });
    await showText("line 1\nline 2");
    await showHTML("<b>x</b>");
    await showTable([{ a: 1, b: "x" }], { caption: "T" });
  });
  assert.equal(out.log.length, 4);
  assert.match(out.log[0], /^\[figure "Tiny": 0\.1 KiB SVG; not in a notebook/);
  assert.equal(out.log[1], "line 1\nline 2");
  assert.match(out.log[2], /^\[html: 8 chars/);
  assert.equal(out.log[3], "T\na  b\n-  -\n1  x");
});

Deno.test("setJupyter(null) forces the non-kernel path", () => {
  setJupyter(null);
  try {
    assert.equal(inNotebook(), false);
  } finally {
    setJupyter(undefined);
  }
});

Deno.test("show/showText/showHTML/showTable send raw MIME bundles in the kernel", async () => {
  await withKernel(async (calls) => {
    assert.equal(inNotebook(), true);
    const out = await captureConsole(async () => {
      await show(SVG);
      await showText("a < b & c");
      await showHTML("<i>hi</i>");
      await showTable([{ model: "<vgg>", acc: 0.68123456 }, { model: "cnn", acc: 1 }], {
        caption: "Results",
      });
    });
    assert.deepEqual(out, { log: [], error: [] });
    assert.equal(calls.length, 4);
    for (const c of calls) assert.equal(c.options?.raw, true);
    assert.deepEqual(calls[0].obj, { "image/svg+xml": SVG });
    assert.equal(calls[1].obj["text/html"], "<pre>a &lt; b &amp; c</pre>");
    assert.equal(calls[1].obj["text/plain"], "a < b & c");
    assert.deepEqual(calls[2].obj, { "text/html": "<i>hi</i>" });
    const html = calls[3].obj["text/html"];
    assert.equal((html.match(/<tr>/g) ?? []).length, 3);
    assert.ok(html.includes("<caption>Results</caption>"));
    assert.ok(html.includes("<td>&lt;vgg&gt;</td>"));
    assert.ok(html.includes('<td style="text-align:right">0.6812</td>'));
    assert.match(calls[3].obj["text/plain"], /^model +acc\n-+ +-+\n<vgg> +0\.6812\n/);
  });
});

Deno.test("tableText / tableHTML: columns, alignment, digits, escaping", () => {
  const rows = [{ name: "happy", f1: 0.8512, n: 1774 }, { name: "disgust", f1: 0.5, n: 111, extra: true }];
  assert.equal(
    tableText(rows, { digits: 2 }),
    [
      "name       f1     n  extra",
      "-------  ----  ----  -----",
      "happy    0.85  1774",
      "disgust  0.50   111  true",
    ].join("\n"),
  );
  const html = tableHTML(rows, { columns: ["n", "name"] });
  assert.ok(html.startsWith("<table><thead><tr><th>n</th><th>name</th></tr></thead>"));
  assert.ok(!html.includes("f1"));
  assert.equal(escapeHtml(`<a href="x">'&'</a>`), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
});

Deno.test("notebookProgress: one display_id, then update_display_data for it", async () => {
  await withKernel(async (calls) => {
    const p = notebookProgress({ intervalMs: 0 });
    await p.update("epoch 1/3");
    await p.update("epoch 2 <b>/3");
    await p.done("finished");
    await p.update("ignored after done");
    await p.done();
    assert.equal(calls.length, 3);
    const id = calls[0].options?.display_id;
    assert.match(id ?? "", /^fer-progress-/);
    assert.deepEqual(calls.map((c) => c.options?.display_id), [id, id, id]);
    assert.deepEqual(calls.map((c) => c.options?.update), [false, true, true]);
    assert.deepEqual(calls.map((c) => c.obj["text/plain"]), ["epoch 1/3", "epoch 2 <b>/3", "finished"]);
    assert.equal(calls[1].obj["text/html"], "<pre>epoch 2 &lt;b&gt;/3</pre>");
    // A second progress display gets its own id.
    const q = notebookProgress({ intervalMs: 0 });
    await q.update("x");
    assert.notEqual(calls[3].options?.display_id, id);
    assert.equal(calls[3].options?.update, false);
  });
});

Deno.test("notebookProgress: throttles updates but done() shows the latest text", async () => {
  await withKernel(async (calls) => {
    const p = notebookProgress({ intervalMs: 60_000 });
    for (let i = 1; i <= 50; i++) p.update(`step ${i}`); // not awaited, as in a training loop
    await p.done();
    assert.deepEqual(calls.map((c) => c.obj["text/plain"]), ["step 1", "step 50"]);
    assert.deepEqual(calls.map((c) => c.options?.update), [false, true]);
  });
});

Deno.test("notebookProgress outside the kernel does not throw", async () => {
  setJupyter(null);
  try {
    const out = await captureConsole(async () => {
      const p = notebookProgress({ intervalMs: 0 });
      await p.update("a");
      await p.done("b");
    });
    // On a terminal the line is rewritten on stderr directly; otherwise each update is one console.error line.
    if (!Deno.stderr.isTerminal()) assert.deepEqual(out.error, ["a", "b"]);
  } finally {
    setJupyter(undefined);
  }
});
