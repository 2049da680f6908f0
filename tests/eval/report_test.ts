import assert from "node:assert/strict";
import { join } from "node:path";
import { historyTable, runMarkdown } from "../../lib/eval/report.ts";

const row = (epoch: number, valAcc: number) => ({
  epoch,
  train_loss: 1.5,
  train_acc: 0.4,
  val_loss: 1.25,
  val_acc: valAcc,
  lr: 1e-3,
  seconds: 90,
  img_s: 287.4,
});

Deno.test("historyTable: one Markdown row per epoch with fixed digits", () => {
  const t = historyTable([row(1, 0.41234), row(2, 0.5)]).split("\n");
  assert.equal(t.length, 4);
  assert.equal(t[2], "| 1 | 1.5000 | 0.4000 | 1.2500 | 0.4123 | 1.00e-3 | 90 | 287 |");
});

Deno.test("runMarkdown: config line, history, report text and totals; missing files are named", async () => {
  const dir = await Deno.makeTempDir({ prefix: "fer-report-" });
  try {
    Deno.writeTextFileSync(
      join(dir, "config.json"),
      JSON.stringify({
        experiment: "fer_cnn",
        model: "fer_cnn_small",
        preset: "cpu",
        epochs: 8,
        inputSize: 48,
      }),
    );
    Deno.writeTextFileSync(join(dir, "history.json"), JSON.stringify([row(1, 0.4), row(2, 0.5)]));
    assert.throws(() => runMarkdown(dir), (e: Error) => e.message.includes(join(dir, "test_report.json")));
    Deno.writeTextFileSync(
      join(dir, "test_report.json"),
      JSON.stringify({
        best_epoch: 2,
        stopped: "completed",
        test_accuracy: 0.55,
        report: { macro_avg: { f1: 0.45 } },
      }),
    );
    Deno.writeTextFileSync(join(dir, "test_report.txt"), "REPORT TEXT\n");
    const md = runMarkdown(dir);
    assert.match(md, /^fer_cnn \(fer_cnn_small, cpu preset\): 48×48×/);
    assert.match(md, /```\nREPORT TEXT\n```/);
    assert.match(
      md,
      /completed; 2 epochs, sum of epoch times 3\.0 min; best epoch 2; test accuracy 0\.5500, macro-F1 0\.4500$/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
