import assert from "node:assert/strict";
import { checkNotebook, type NotebookJson, storedCharts } from "../../lib/viz/notebook_check.ts";

const chart = (seq: number) => ({
  output_type: "display_data",
  data: { "image/png": "iVBOR", "image/svg+xml": "<svg/>", "text/plain": "[chart] x" },
  metadata: { fer: { seq } },
});
const table = (seq: number) => ({
  output_type: "display_data",
  data: { "text/html": "<table/>", "text/plain": "t" },
  metadata: { fer: { seq } },
});
const stream = (t: string) => ({ output_type: "stream", name: "stdout", text: [t] });
const marker = (n: number) => ({
  output_type: "display_data",
  data: { "text/plain": `notebook complete: ${n} outputs` },
  metadata: { fer: { final: n } },
});

function notebook(...cells: NotebookJson["cells"][number]["outputs"][]): NotebookJson {
  return {
    cells: [
      { cell_type: "markdown", source: ["# title"] },
      ...cells.map((outputs, i) => ({ cell_type: "code", source: [`await step${i}();\n`, "more"], outputs })),
    ],
  };
}

Deno.test("checkNotebook: a complete notebook passes", () => {
  const nb = notebook([stream("data: 10 images\n"), table(1), chart(2)], [
    chart(3),
    stream("done\n"),
    marker(3),
  ]);
  assert.deepEqual(checkNotebook(nb), []);
  assert.equal(storedCharts(nb), 2);
});

Deno.test("checkNotebook: lost outputs at the end of a cell are found and located", () => {
  // As in notebooks 03/04 before the fix: the last cell kept its first outputs, lost the rest.
  const lostTail = notebook([table(1), chart(2)], [chart(3), chart(4)]);
  assert.deepEqual(checkNotebook(lostTail), [
    'cell 2 ("await step1();"): the last output is not the final "notebook complete" marker (outputs at the ' +
    "end of the notebook were lost, or it does not call finishNotebook())",
  ]);
  const lostMiddle = notebook([table(1), chart(2)], [chart(4), marker(4)]);
  assert.deepEqual(checkNotebook(lostMiddle), [
    '1 of 4 displays missing: #3 (after cell 1 ("await step0();"))',
  ]);
});

Deno.test("checkNotebook: errors, charts without PNG and absolute paths are problems", () => {
  const svgOnly = {
    output_type: "display_data",
    data: { "image/svg+xml": "<svg/>" },
    metadata: { fer: { seq: 1 } },
  };
  const error = { output_type: "error", ename: "TypeError", evalue: "boom" };
  const nb = notebook([svgOnly, stream("run folder: /home/me/fer/checkpoints/x\n")], [error, marker(1)]);
  assert.deepEqual(checkNotebook(nb, { forbidden: ["/home/me/fer", "/"] }), [
    'cell 1 ("await step0();"): a chart without its image/png fallback (invisible when untrusted)',
    'cell 1 ("await step0();"): output shows the absolute path /home/me/fer',
    'cell 2 ("await step1();"): error output TypeError: boom',
  ]);
});
