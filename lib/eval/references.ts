/**
 * Results measured or published elsewhere that the from-scratch notebook (06) compares against — kept here, in
 * one place, so that no notebook cell types a number. The study's own published numbers are in
 * lib/eval/study.ts; `deno task peers` re-measures the JS models here (lib/peers/, checkpoints/peers/).
 */

/** A result measured outside this toolkit, with where it comes from. */
export type ExternalResult = {
  model: string;
  accuracy: number;
  macroF1: number | null;
  source: string;
};

/**
 * The facial-expression models JavaScript applications use today, on the same 7,178 FER2013 test images, as
 * measured with their npm packages and reported in issue 11 ("From-scratch accuracy"); not re-measured here.
 */
export const JS_MODEL_RESULTS: ExternalResult[] = [
  {
    model: "@vladmandic/human emotion",
    accuracy: 0.660,
    macroF1: 0.653,
    source: "measured with its npm package on the FER2013 test split, as reported in issue 11",
  },
  {
    model: "face-api.js expressions",
    accuracy: 0.586,
    macroF1: 0.534,
    source:
      "accuracy as reported in issue 11; macro-F1 from `deno task peers` (@vladmandic/face-api 1.7.15, " +
      "README, 2026-11-30), both on the FER2013 test split",
  },
];

/** The targets for this toolkit's own from-scratch models (test accuracy). */
export const TARGETS = { single: 0.70, ensemble: 0.73 } as const;
