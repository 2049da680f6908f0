import assert from "node:assert/strict";
import { cpSync, existsSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import {
  averageMembers,
  checkMemberClasses,
  chooseThenTestEnsemble,
  ensembleMembers,
  evaluateEnsemble,
  selectMembers,
} from "../../lib/eval/ensemble.ts";
import { readPredictionsCsv, writePredictionsCsv } from "../../lib/eval/predictions.ts";
import { predictionsPath, runPaths } from "../../lib/runs/runs.ts";
import { predictRunTta } from "../../lib/eval/tta.ts";
import { trainTinyRun } from "../helpers/tiny_model.ts";
import { DEFAULT_CONFIG } from "../../lib/train/config.ts";
import { withSeed } from "../../lib/train/experiments.ts";

await tf.setBackend("cpu");

Deno.test("averageMembers: per-image mean of probabilities matched by path, argmax, clear errors", () => {
  const a = {
    name: "a",
    rows: [
      { path: "x.png", label: 0, pred: 0, probs: [0.6, 0.4, 0] },
      { path: "y.png", label: 2, pred: 1, probs: [0.1, 0.5, 0.4] },
    ],
  };
  // b lists the images in the other order
  const b = {
    name: "b",
    rows: [
      { path: "y.png", label: 2, pred: 2, probs: [0.1, 0.2, 0.7] },
      { path: "x.png", label: 0, pred: 1, probs: [0.2, 0.8, 0] },
    ],
  };
  const m = averageMembers([a, b]);
  assert.deepEqual(m.map((r) => [r.path, r.label, r.pred]), [["x.png", 0, 1], ["y.png", 2, 2]]);
  const want = [[0.4, 0.6, 0], [0.1, 0.35, 0.55]];
  m.forEach((r, i) => r.probs!.forEach((p, k) => assert.ok(Math.abs(p - want[i][k]) < 1e-12)));
  assert.throws(() => averageMembers([a, { name: "c", rows: [b.rows[0]] }]), /c predicts 1 images, a 2/);
  assert.throws(
    () => averageMembers([a, { name: "d", rows: [{ ...b.rows[0], label: 1 }, b.rows[1]] }]),
    /d labels y.png differently from a/,
  );
  assert.throws(
    () => averageMembers([a, { name: "e", rows: [{ ...b.rows[0], path: "z.png" }, b.rows[1]] }]),
    /e has no prediction for y.png/,
  );
  assert.throws(() => averageMembers([]), /at least one member/);
});

Deno.test("checkMemberClasses: members must share their class names, in order; the error names both", () => {
  const first = { name: "a", classes: ["x", "y"] };
  checkMemberClasses(first, { name: "b", classes: ["x", "y"] });
  assert.throws(
    () => checkMemberClasses(first, { name: "b", classes: ["y", "x"] }),
    /^RangeError: b has classes y, x, the first member a x, y$/,
  );
});

Deno.test("selectMembers: the most accurate subset on the rows given; ties to fewer members, then earlier ones", () => {
  // three images of classes 0, 1, 2; each member gets a different pair right
  const row = (path: string, label: number, probs: number[]) => ({ path, label, pred: 0, probs });
  const a = {
    name: "a",
    rows: [row("x", 0, [0.9, 0.1, 0]), row("y", 1, [0.1, 0.9, 0]), row("z", 2, [0.6, 0, 0.4])],
  };
  const b = {
    name: "b",
    rows: [row("x", 0, [0.9, 0.1, 0]), row("y", 1, [0.6, 0.4, 0]), row("z", 2, [0, 0.1, 0.9])],
  };
  const c = {
    name: "c",
    rows: [row("x", 0, [0.4, 0.6, 0]), row("y", 1, [0, 0.9, 0.1]), row("z", 2, [0, 0.1, 0.9])],
  };
  // a+b, a+c, b+c and a+b+c are each right on all three images: the tie goes to a pair, the earliest (a, b)
  const all = selectMembers([a, b, c]);
  assert.deepEqual(all.chosen, ["a", "b"]);
  assert.equal(all.accuracy, 1);
  assert.equal(all.tried.length, 4);
  assert.deepEqual(all.tried.map((t) => t.members.join("+")), ["a+b", "a+c", "b+c", "a+b+c"]);
  // c sure of the wrong class on z, listed first: c+a and c+b lose z, the triple ties a+b with one member more
  const c2 = { name: "c", rows: [c.rows[0], c.rows[1], row("z", 2, [0, 1, 0])] };
  const sel = selectMembers([c2, a, b]);
  assert.deepEqual(sel.tried.map((t) => [t.members.join("+"), t.accuracy.toFixed(3)]), [
    ["a+b", "1.000"],
    ["c+a+b", "1.000"],
    ["c+a", "0.667"],
    ["c+b", "0.667"],
  ]);
  assert.deepEqual(sel.chosen, ["a", "b"]);
  // with minMembers 1 the single best member may win; a alone is 2/3, so the pair still wins
  assert.deepEqual(selectMembers([a, b], { minMembers: 1 }).chosen, ["a", "b"]);
  assert.throws(() => selectMembers([a]), /at least 2 needs as many candidates, got 1/);
});

Deno.test("evaluateEnsemble: two runs with TTA -> a run-like folder naming its members; probabilities are the members' mean", async () => {
  const outDir = mkdtempSync(join(tmpdir(), "fer-ens-"));
  // same seed (the capped test subset depends on it), different learning rates -> different members
  const trainRun = (run: string, lr: number) => trainTinyRun(outDir, run, { lr });
  try {
    const r1 = await trainRun("m1", 1e-3);
    const r2 = await trainRun("m2", 1e-2);
    const tta = { mode: "hflip" as const, average: "prob" as const };
    const res = await evaluateEnsemble([r1.runDir, r2.runDir], { tta, name: "pair", outDir });
    assert.equal(res.dir, join(outDir, "ensemble-pair"));
    for (const f of ["config.json", "predictions.csv", "test_report.json", "test_report.txt"]) {
      assert.ok(existsSync(join(res.dir, f)), f);
    }
    const cfg = JSON.parse(readFileSync(join(res.dir, "config.json"), "utf8"));
    assert.deepEqual(cfg.members.map((m: { run: string }) => m.run), ["m1", "m2"]);
    // member folders recorded relative to the ensemble's; found again from a copy elsewhere (a clone)
    assert.deepEqual(cfg.members.map((m: { dir: string }) => m.dir), ["../m1", "../m2"]);
    assert.deepEqual(ensembleMembers(res.dir).map((m) => m.dir), [r1.runDir, r2.runDir]);
    const clone = mkdtempSync(join(tmpdir(), "fer-ens-clone-"));
    try {
      cpSync(outDir, clone, { recursive: true });
      const there = join(clone, "ensemble-pair");
      assert.deepEqual(ensembleMembers(there).map((m) => m.dir), [join(clone, "m1"), join(clone, "m2")]);
      // an older folder recorded absolute paths: where they no longer exist, the run beside the ensemble is used
      const old = {
        ...cfg,
        members: cfg.members.map((m: { run: string }) => ({ ...m, dir: `/gone/${m.run}` })),
      };
      writeFileSync(join(there, "config.json"), JSON.stringify(old));
      assert.deepEqual(ensembleMembers(there).map((m) => m.dir), [join(clone, "m1"), join(clone, "m2")]);
      rmSync(join(clone, "m2"), { recursive: true });
      assert.throws(() => ensembleMembers(there), /member m2 of .*ensemble-pair\/config\.json not found/);
      assert.throws(() => ensembleMembers(join(clone, "m1")), /m1\/config\.json is not an ensemble's config/);
    } finally {
      rmSync(clone, { recursive: true, force: true });
    }
    assert.deepEqual(cfg.tta, tta);
    assert.match(
      readFileSync(join(res.dir, "test_report.txt"), "utf8"),
      /2 members: m1, m2; TTA hflip \(probabilities averaged over 2 views\)/,
    );
    const p1 = (await predictRunTta(r1.runDir, "test", tta)).rows;
    const p2 = (await predictRunTta(r2.runDir, "test", tta)).rows;
    const csv = readPredictionsCsv(join(res.dir, "predictions.csv")).rows;
    assert.equal(csv.length, 20);
    csv.forEach((r, i) => {
      assert.equal(r.path, p1[i].path);
      r.probs!.forEach((p, k) => assert.ok(Math.abs(p - (p1[i].probs![k] + p2[i].probs![k]) / 2) < 1e-5));
    });
    const rep = JSON.parse(readFileSync(join(res.dir, "test_report.json"), "utf8"));
    assert.equal(rep.test_accuracy, res.accuracy);
    await assert.rejects(evaluateEnsemble([r1.runDir], { tta, outDir }), /at least two runs/);

    // members chosen on validation: every subset scored on val, test predicted once with the chosen members
    const r3 = await trainRun("m3", 3e-2);
    const runs = [r1.runDir, r2.runDir, r3.runDir];
    const pick = await chooseThenTestEnsemble(runs, { tta, name: "picked", outDir });
    const val = await Promise.all(runs.map(async (d, i) => ({
      name: `m${i + 1}`,
      rows: (await predictRunTta(d, "val", tta)).rows,
    })));
    const want = selectMembers(val);
    assert.deepEqual(pick.tried, want.tried);
    assert.deepEqual(pick.chosen.map((d) => d.split("/").pop()), want.chosen);
    assert.equal(pick.val.accuracy, want.accuracy);
    const dir = join(outDir, "ensemble-picked");
    assert.equal(pick.test.dir, dir);
    const pcfg = JSON.parse(readFileSync(join(dir, "config.json"), "utf8"));
    assert.deepEqual(pcfg.members.map((m: { run: string }) => m.run), want.chosen);
    assert.equal(pcfg.members_chosen_on_val.length, 4);
    for (const f of ["val_report.json", "predictions_val.csv", "test_report.json", "predictions.csv"]) {
      assert.ok(existsSync(join(dir, f)), f);
    }
    const chosenTest = await Promise.all(
      pick.chosen.map(async (d) => (await predictRunTta(d, "test", tta)).rows),
    );
    const ptest = readPredictionsCsv(join(dir, "predictions.csv")).rows;
    ptest.forEach((r, i) => {
      r.probs!.forEach((p, k) => {
        const mean = chosenTest.reduce((s, rows) => s + rows[i].probs![k], 0) / chosenTest.length;
        assert.ok(Math.abs(p - mean) < 1e-5);
      });
    });

    // `auto`: each member's own TTA chosen on validation. m1's hflip predictions on val are made perfect, so
    // m1 chooses hflip; m2 has no TTA evaluated, so it keeps none
    const m1Val = predictionsPath(runPaths(r1.runDir), "val", "hflip");
    const perfect = (await predictRunTta(r1.runDir, "val", tta)).rows.map((r) => ({
      ...r,
      pred: r.label,
      probs: r.probs!.map((_, k) => (k === r.label ? 1 : 0)),
    }));
    writePredictionsCsv(m1Val, perfect);
    const auto = await evaluateEnsemble([r1.runDir, r2.runDir], {
      tta: "auto",
      split: "val",
      name: "auto",
      outDir,
    });
    const acfg = JSON.parse(readFileSync(join(auto.dir, "config.json"), "utf8"));
    assert.equal(acfg.tta, "auto");
    assert.deepEqual(acfg.members.map((m: { tta: { mode: string } }) => m.tta.mode), ["hflip", "none"]);
    assert.match(acfg.tta_description, /each member's own, chosen on validation \(m1: hflip, m2: none\)/);
    const m2Val = (await predictRunTta(r2.runDir, "val", { mode: "none", average: "prob" })).rows;
    auto.rows.forEach((r, i) => {
      assert.equal(r.path, perfect[i].path);
      r.probs!.forEach((p, k) =>
        assert.ok(Math.abs(p - (perfect[i].probs![k] + m2Val[i].probs![k]) / 2) < 1e-5)
      );
    });
    // the members' files now hold what the ensemble needs: it re-forms without their weights (a fresh clone)
    for (const r of [r1, r2]) renameSync(join(r.runDir, "best"), join(r.runDir, "best-away"));
    const again = await evaluateEnsemble([r1.runDir, r2.runDir], {
      tta: "auto",
      split: "val",
      name: "auto2",
      outDir,
    });
    assert.deepEqual(again.rows, auto.rows);
    // a prediction no file holds needs the model: a clear error that says how to get it back
    await assert.rejects(
      evaluateEnsemble([r1.runDir, r2.runDir], {
        tta: { mode: "none", average: "prob" },
        split: "val",
        outDir,
      }),
      /m1 has finished \(test accuracy .*\) but its weights are not here .*train its recipe again: deno task train /,
    );
  } finally {
    rmSync(outDir, { recursive: true, force: true });
  }
});

Deno.test("ensembles on validation: a run reseeded like `train --seed` joins; one split with another seed is refused first", async () => {
  const outDir = mkdtempSync(join(tmpdir(), "fer-ens-seed-"));
  try {
    const base = await trainTinyRun(outDir, "base"); // seed 42
    // `train --seed 5` (withSeed): a new seed, the split of the config's seed
    const { seed, splitSeed } = withSeed({ ...DEFAULT_CONFIG }, 5);
    const reseeded = await trainTinyRun(outDir, "reseeded", { seed, splitSeed });
    const other = await trainTinyRun(outDir, "other", { seed: 5 }); // an old-style run: its split has seed 5
    const none = { mode: "none" as const, average: "prob" as const };
    const ok = await evaluateEnsemble([base.runDir, reseeded.runDir], {
      tta: none,
      split: "val",
      name: "ok",
      outDir,
    });
    assert.deepEqual(
      ok.rows.map((r) => r.path),
      (await predictRunTta(base.runDir, "val", none)).rows.map((r) => r.path),
    );
    let calls = 0;
    await assert.rejects(
      evaluateEnsemble([base.runDir, other.runDir], {
        tta: none,
        split: "val",
        outDir,
        log: () => calls++,
      }),
      new RegExp(
        "^RangeError: other validates on other images than base \\(.*other/config\\.json: 10 % of train, split " +
          "seed 5, capped at 20 images; base: 10 % of train, split seed 42, capped at 20 images\\): ensemble " +
          "members must share one validation split; train another seed of a recipe with `deno task train " +
          "<experiment> --seed N`",
      ),
    );
    assert.equal(calls, 0); // refused before any member was predicted
  } finally {
    rmSync(outDir, { recursive: true, force: true });
  }
});
