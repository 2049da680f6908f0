/**
 * The original study's published numbers — the one place they are written down. Every notebook, chart and
 * comparison that shows "the study" reads them from here. Each entry quotes its source: the seed notebooks'
 * own result lines (restated in the headers of notebooks/02–04 and in issue 10).
 *
 * What the seed text says about the setting, and nothing more: PyTorch + timm, ImageNet-pretrained weights,
 * 224 px inputs, the full FER2013 training folder, at most 20 epochs with early stopping — on the test set
 * (there was no validation split), so its numbers are optimistic by construction.
 */

/** One published result of the study. */
export interface StudyResult {
  /** Our experiment name (lib/train/experiments.ts). */
  experiment: string;
  /** The study's name for the run. */
  title: string;
  /** Test accuracy. */
  accuracy: number;
  /** Macro-averaged F1 over the 7 classes. */
  macroF1: number;
  /** Per-class F1, where the study published it. */
  perClassF1?: Record<string, number>;
  /** Where the numbers come from (seed text). */
  source: string;
}

/** The study's setting, as the seed text states it (what "comparable" is measured against). */
export const STUDY_SETTING = {
  inputSize: 224,
  pretrained: true,
  maxEpochs: 20,
  /** The full FER2013 training folder. */
  trainImages: 28709,
  testImages: 7178,
  earlyStoppedOn: "test",
} as const;

/** The study's published test results, in the study's order. */
export const STUDY_RESULTS: readonly StudyResult[] = [
  {
    experiment: "efficientnet_b3",
    title: "EfficientNet-B3 (baseline)",
    accuracy: 0.704,
    macroF1: 0.69,
    source:
      "seed notebook 1, EfficientNet-B3 fine-tuned with cross-entropy: test accuracy 0.704, macro-F1 0.69",
  },
  {
    experiment: "efficientnet_b3_label_smoothing",
    title: "EfficientNet-B3, dropout head + label smoothing",
    accuracy: 0.697,
    macroF1: 0.69,
    source:
      "seed notebook 2, the rerun with dropout 0.3 and label smoothing 0.1: test accuracy 0.697, macro-F1 0.69",
  },
  {
    experiment: "convnext_tiny",
    title: "ConvNeXt-Tiny (ImageNet-22k)",
    accuracy: 0.723,
    macroF1: 0.71,
    perClassF1: {
      angry: 0.65,
      disgust: 0.73,
      fear: 0.59,
      happy: 0.90,
      neutral: 0.69,
      sad: 0.60,
      surprise: 0.83,
    },
    source: "seed notebook 3, ConvNeXt-Tiny: test accuracy 0.723, macro-F1 0.71; per-class F1 angry .65, " +
      "disgust .73, fear .59, happy .90, neutral .69, sad .60, surprise .83",
  },
];

/** How charts and tables name a published result: `study: <its title>` ({@link isReferenceModel} keys on it). */
export function studyLabel(s: StudyResult): string {
  return `study: ${s.title}`;
}

/** The study's result for an experiment, or undefined when the study has no such run (e.g. fer_cnn). */
export function studyResult(experiment: string): StudyResult | undefined {
  return STUDY_RESULTS.find((s) => s.experiment === experiment);
}
