/**
 * Evaluation of logits against labels: overall top-1, many / medium / few (mean of the split's
 * per-class accuracies, null when the split is empty), per-class accuracy (null for a class
 * absent from the evaluated set), confusion matrix, macro-F1 and expected calibration error.
 */
import { DEFAULT_THRESHOLDS, type ShotThresholds, shotSplits, splitMean } from './shot-splits.ts';

export interface Evaluation {
  /** Top-1 over all images, in [0, 1]. */
  overall: number;
  many: number | null;
  medium: number | null;
  few: number | null;
  /** Accuracy of each class; null when the class has no image in the evaluated set. */
  perClass: (number | null)[];
  /** confusion[true][predicted] counts. */
  confusion: number[][];
  /** Mean F1 over the classes present in the evaluated set. */
  macroF1: number;
  /** Expected calibration error of the softmax confidence, 15 equal-width bins. */
  ece: number;
  n: number;
}

/** Index of the largest logit of each row. logits [n, C] -> [n]. */
export function argmaxRows(logits: Float32Array, n: number, C: number): Int32Array {
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let best = 0;
    let bv = logits[i * C]!;
    for (let c = 1; c < C; c++) {
      const v = logits[i * C + c]!;
      if (v > bv) {
        bv = v;
        best = c;
      }
    }
    out[i] = best;
  }
  return out;
}

/** Softmax confidence (max probability) of each row. */
export function maxSoftmax(logits: Float32Array, n: number, C: number): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let m = -Infinity;
    for (let c = 0; c < C; c++) m = Math.max(m, logits[i * C + c]!);
    let s = 0;
    for (let c = 0; c < C; c++) s += Math.exp(logits[i * C + c]! - m);
    out[i] = 1 / s;
  }
  return out;
}

export function expectedCalibrationError(
  conf: ArrayLike<number>,
  correct: ArrayLike<boolean>,
  bins = 15,
): number {
  const n = conf.length;
  if (n === 0) return 0;
  const cnt = new Array<number>(bins).fill(0);
  const sumConf = new Array<number>(bins).fill(0);
  const sumAcc = new Array<number>(bins).fill(0);
  for (let i = 0; i < n; i++) {
    // Bins (k/B, (k+1)/B]; confidence 0 goes to the first.
    const b = Math.min(bins - 1, Math.max(0, Math.ceil(conf[i]! * bins) - 1));
    cnt[b]!++;
    sumConf[b]! += conf[i]!;
    sumAcc[b]! += correct[i] ? 1 : 0;
  }
  let ece = 0;
  for (let b = 0; b < bins; b++) if (cnt[b]! > 0) ece += Math.abs(sumAcc[b]! - sumConf[b]!) / n;
  return ece;
}

/** Evaluates predictions (and, for ECE, confidences) against labels. */
export function evaluatePredictions(
  pred: ArrayLike<number>,
  labels: ArrayLike<number>,
  numClasses: number,
  trainCounts: readonly number[],
  opts: { thresholds?: ShotThresholds; confidence?: ArrayLike<number> } = {},
): Evaluation {
  const n = labels.length;
  const confusion = Array.from({ length: numClasses }, () => new Array<number>(numClasses).fill(0));
  let correct = 0;
  const isCorrect = new Array<boolean>(n);
  for (let i = 0; i < n; i++) {
    const t = labels[i]!;
    const p = pred[i]!;
    confusion[t]![p]!++;
    isCorrect[i] = t === p;
    if (t === p) correct++;
  }
  const support = confusion.map((row) => row.reduce((a, b) => a + b, 0));
  const predicted = confusion[0]!.map((_, c) => confusion.reduce((a, row) => a + row[c]!, 0));
  const perClass = support.map((s, c) => (s === 0 ? null : confusion[c]![c]! / s));
  const f1s: number[] = [];
  support.forEach((s, c) => {
    if (s === 0) return;
    const tp = confusion[c]![c]!;
    const precision = predicted[c]! === 0 ? 0 : tp / predicted[c]!;
    const recall = tp / s;
    f1s.push(precision + recall === 0 ? 0 : (2 * precision * recall) / (precision + recall));
  });
  const splits = shotSplits(trainCounts, opts.thresholds ?? DEFAULT_THRESHOLDS);
  return {
    overall: n === 0 ? 0 : correct / n,
    many: splitMean(perClass, splits.many),
    medium: splitMean(perClass, splits.medium),
    few: splitMean(perClass, splits.few),
    perClass,
    confusion,
    macroF1: f1s.length === 0 ? 0 : f1s.reduce((a, b) => a + b, 0) / f1s.length,
    ece: opts.confidence ? expectedCalibrationError(opts.confidence, isCorrect) : 0,
    n,
  };
}

/**
 * Only overall and split accuracies (no confusion matrix): the cheap path for sweeps that
 * evaluate many predictions, e.g. tau-norm's 21 values of tau.
 */
export function splitAccuracies(
  pred: ArrayLike<number>,
  labels: ArrayLike<number>,
  numClasses: number,
  trainCounts: readonly number[],
  thresholds: ShotThresholds = DEFAULT_THRESHOLDS,
): { overall: number; many: number | null; medium: number | null; few: number | null } {
  const support = new Int32Array(numClasses);
  const hit = new Int32Array(numClasses);
  let correct = 0;
  for (let i = 0; i < labels.length; i++) {
    const t = labels[i]!;
    support[t]!++;
    if (pred[i] === t) {
      hit[t]!++;
      correct++;
    }
  }
  const perClass = Array.from(support, (n, c) => (n === 0 ? null : hit[c]! / n));
  const splits = shotSplits(trainCounts, thresholds);
  return {
    overall: labels.length === 0 ? 0 : correct / labels.length,
    many: splitMean(perClass, splits.many),
    medium: splitMean(perClass, splits.medium),
    few: splitMean(perClass, splits.few),
  };
}

/** Evaluates logits [n, C]. */
export function evaluateLogits(
  logits: Float32Array,
  labels: Int32Array,
  numClasses: number,
  trainCounts: readonly number[],
  thresholds?: ShotThresholds,
): Evaluation {
  const n = labels.length;
  return evaluatePredictions(argmaxRows(logits, n, numClasses), labels, numClasses, trainCounts, {
    ...(thresholds ? { thresholds } : {}),
    confidence: maxSoftmax(logits, n, numClasses),
  });
}
