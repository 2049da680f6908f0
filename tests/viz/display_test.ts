import assert from "node:assert/strict";
import {
  displayCount,
  escapeHtml,
  figureAlt,
  finishNotebook,
  flushOutput,
  htmlText,
  inNotebook,
  jupyter,
  type JupyterApi,
  notebookProgress,
  paceMs,
  print,
  setJupyter,
  show,
  showHTML,
  showTable,
  showText,
  tableHTML,
  tableText,
} from "../../lib/viz/display.ts";

interface Call {
  type: string;
  obj: Record<string, string>;
  metadata: Record<string, unknown> & { fer?: { seq?: number; final?: number } };
  options?: { update?: boolean; display_id?: string };
  text?: string;
}

/**
 * Runs `fn` with a stub kernel API that records every broadcast. Like Deno 2.9's `Deno.jupyter.broadcast`, the
 * stub does not return a promise and only "sends" on a later macrotask, so a caller that does not wait for the
 * event loop loses the message (the cause of the lost outputs in notebooks 03/04).
 */
async function withKernel(fn: (calls: Call[]) => Promise<void>): Promise<void> {
  const calls: Call[] = [];
  const stub: JupyterApi = {
    broadcast(type, content) {
      const c = content as {
        data?: Record<string, string>;
        metadata?: Call["metadata"];
        transient?: { display_id?: string };
        text?: string;
      };
      setTimeout(() =>
        calls.push({
          type,
          obj: c.data ?? {},
          metadata: c.metadata ?? {},
          options: { update: type === "update_display_data", display_id: c.transient?.display_id },
          text: c.text,
        }), 0);
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
    assert.deepEqual(Object.keys(calls[0].obj).sort(), ["image/png", "image/svg+xml", "text/plain"]);
    assert.equal(calls[0].obj["image/svg+xml"], SVG);
    assert.equal(calls[0].obj["text/plain"], "[chart] Tiny");
    const png = Uint8Array.from(atob(calls[0].obj["image/png"]), (c) => c.charCodeAt(0));
    assert.deepEqual([...png.subarray(1, 4)], [80, 78, 71]); // "PNG"
    assert.deepEqual(calls[0].metadata["image/png"], { width: 10, height: 10 });
    // Every display carries its sequence number, in order.
    const seqs = calls.map((c) => c.metadata.fer?.seq ?? 0);
    assert.deepEqual(seqs.map((s) => s - seqs[0]), [0, 1, 2, 3]);
    assert.equal(calls[1].obj["text/html"], "<pre>a &lt; b &amp; c</pre>");
    assert.equal(calls[1].obj["text/plain"], "a < b & c");
    assert.deepEqual(calls[2].obj, { "text/html": "<i>hi</i>", "text/plain": "hi" });
    const html = calls[3].obj["text/html"];
    assert.equal((html.match(/<tr>/g) ?? []).length, 3);
    assert.ok(html.includes("<caption>Results</caption>"));
    assert.ok(html.includes("<td>&lt;vgg&gt;</td>"));
    assert.ok(html.includes('<td style="text-align:right">0.6812</td>'));
    assert.match(calls[3].obj["text/plain"], /^Results\nmodel +acc\n-+ +-+\n<vgg> +0\.6812\n/);
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
    // Updates keep the sequence number of the display they replace (nbclient replaces the stored metadata).
    assert.equal(new Set(calls.map((c) => c.metadata.fer?.seq)).size, 1);
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
    await flushOutput();
    // The first display was still queued when the later texts came: it goes out once, with the newest text.
    assert.deepEqual(calls.map((c) => c.obj["text/plain"]), ["step 50"]);
    assert.deepEqual(calls.map((c) => c.options?.update), [false]);
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

Deno.test("outputs sent in a burst all arrive, in order, before the call resolves", async () => {
  await withKernel(async (calls) => {
    const p = notebookProgress({ intervalMs: 0 });
    p.update("progress"); // fire-and-forget, as the training loop does
    for (let i = 0; i < 5; i++) await showText(`t${i}`);
    await print("final line");
    // Nothing is left pending when the last await resolves: the cell may end right here.
    assert.deepEqual(
      calls.map((c) => c.obj["text/plain"] ?? c.text),
      ["progress", "t0", "t1", "t2", "t3", "t4", "final line\n"],
    );
    assert.equal(calls[6].type, "stream");
  });
});

Deno.test("finishNotebook: a final marker with the number of displays before it", async () => {
  await withKernel(async (calls) => {
    await showText("a");
    const before = displayCount();
    await finishNotebook("2 s");
    const last = calls[calls.length - 1];
    assert.equal(last.metadata.fer?.final, before);
    assert.match(last.obj["text/plain"], new RegExp(`^notebook complete: ${before} outputs; 2 s$`));
  });
});

Deno.test("paceMs grows with the message size and is bounded", () => {
  assert.ok(paceMs(0) >= 1);
  assert.ok(paceMs(200_000) > paceMs(20_000));
  assert.equal(paceMs(1e9), 1000);
});

Deno.test("figureAlt and htmlText give readable plain text", () => {
  const svg = '<svg><title>A &amp; B</title><text class="fer-subtitle" x="1">n = 5</text></svg>';
  assert.equal(figureAlt(svg), "[chart] A & B — n = 5");
  assert.equal(htmlText("<p>x &lt; y</p><br>z"), "x < y\n\nz");
});

Deno.test("notebookProgress: updates queued during a synchronous stretch collapse into the newest one", async () => {
  await withKernel(async (calls) => {
    const p = notebookProgress({ intervalMs: 0 });
    await p.update("start");
    // A training epoch runs synchronously: the queue cannot send until it ends.
    for (let i = 1; i <= 200; i++) p.update(`batch ${i}`);
    await p.done("epoch done");
    assert.deepEqual(calls.map((c) => c.obj["text/plain"]), ["start", "epoch done"]);
  });
});
