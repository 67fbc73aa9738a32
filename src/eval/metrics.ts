/**
 * Evaluation of logits against labels: overall top-1, many / medium / few (mean of the split's
 * per-class accuracies, null when the split is empty), per-class accuracy (null for a class
 * absent from the evaluated set), confusion matrix (up to CONFUSION_MAX_CLASSES classes), macro-F1
 * and expected calibration error.
 *
 * Everything here needs only each row's argmax and softmax confidence, so logits can be
 * evaluated a block of rows at a time (LogitRows): [n, C] logits never need to exist whole
 * (24,426 x 8,142 f32 is 0.8 GB at iNaturalist size), and the result is the same to the bit.
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
  /** Precision of each class (hits / times predicted); null when the class was never predicted. */
  perClassPrecision: (number | null)[];
  /**
   * confusion[true][predicted] counts; [] above `confusionMaxClasses` classes (default
   * CONFUSION_MAX_CLASSES: 8,142 classes would be 66M entries).
   */
  confusion: number[][];
  /**
   * The most frequent errors, whatever the class count: (true, predicted) pairs by count (ties:
   * true class, then predicted, by index), at most CONFUSED_PAIRS_KEPT; `share` is count / the
   * true class's images.
   */
  confusedPairs: { true: number; predicted: number; count: number; share: number }[];
  /** Mean F1 over the classes present in the evaluated set. */
  macroF1: number;
  /** Expected calibration error of the softmax confidence, 15 equal-width bins. */
  ece: number;
  n: number;
}

/** Most-confused (true, predicted) pairs kept (results.json's `confusedPairs`). */
export const CONFUSED_PAIRS_KEPT = 30;

/** Largest class count for which a confusion matrix is kept (results.json's `confusion`). */
export const CONFUSION_MAX_CLASSES = 200;

/**
 * Floats in one block of rows (8 MiB of f32): what a block of logits [m, C], and of features
 * [m, d] copied or transformed on the way to them, may hold at most, so the working memory of
 * evaluation stays a few blocks next to the data (and the wasm heap, which never shrinks, small).
 */
export const BLOCK_FLOATS = 1 << 21;

/**
 * Rows per block when logits are evaluated block by block: BLOCK_FLOATS over the widest row
 * (C logits, or d features when a block of features is copied too).
 */
export function defaultChunkRows(numClasses: number, dim = 0): number {
  return Math.max(1, Math.floor(BLOCK_FLOATS / Math.max(1, numClasses, dim)));
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
  opts: { thresholds?: ShotThresholds; confidence?: ArrayLike<number>; confusionMaxClasses?: number } = {},
): Evaluation {
  const n = labels.length;
  const C = numClasses;
  const keep = C <= (opts.confusionMaxClasses ?? CONFUSION_MAX_CLASSES);
  // Counts per class: O(C), whatever the class count; the matrix only when it is kept.
  const confusion = keep ? Array.from({ length: C }, () => new Array<number>(C).fill(0)) : [];
  const support = new Array<number>(C).fill(0);
  const predicted = new Array<number>(C).fill(0);
  const hits = new Array<number>(C).fill(0);
  let correct = 0;
  const isCorrect = new Array<boolean>(n);
  // Errors only, keyed t * C + p: as many entries as distinct errors, never C^2.
  const errors = new Map<number, number>();
  for (let i = 0; i < n; i++) {
    const t = labels[i]!;
    const p = pred[i]!;
    if (keep) confusion[t]![p]!++;
    if (t !== p) errors.set(t * C + p, (errors.get(t * C + p) ?? 0) + 1);
    support[t]!++;
    predicted[p]!++;
    isCorrect[i] = t === p;
    if (t === p) {
      correct++;
      hits[t]!++;
    }
  }
  const perClass = support.map((s, c) => (s === 0 ? null : hits[c]! / s));
  const f1s: number[] = [];
  support.forEach((s, c) => {
    if (s === 0) return;
    const tp = hits[c]!;
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
    perClassPrecision: predicted.map((p, c) => (p === 0 ? null : hits[c]! / p)),
    confusion,
    confusedPairs: [...errors]
      .sort((a, b) => b[1] - a[1] || a[0] - b[0])
      .slice(0, CONFUSED_PAIRS_KEPT)
      .map(([key, count]) => {
        const t = Math.floor(key / C);
        return { true: t, predicted: key % C, count, share: count / support[t]! };
      }),
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

/**
 * Each row's argmax and softmax confidence, filled a block of rows at a time in order: all an
 * Evaluation needs of the logits. A block's values do not depend on the other rows, so any
 * split into blocks gives the same arrays.
 */
export class LogitRows {
  readonly pred: Int32Array;
  readonly confidence: Float64Array;
  private filled = 0;

  constructor(
    readonly n: number,
    readonly numClasses: number,
  ) {
    this.pred = new Int32Array(n);
    this.confidence = new Float64Array(n);
  }

  /** Rows filled so far. */
  get rows(): number {
    return this.filled;
  }

  /** Adds the next m rows: logits [m, C]. */
  add(logits: Float32Array, m: number): void {
    const C = this.numClasses;
    if (this.filled + m > this.n) throw new Error(`LogitRows: ${this.filled + m} rows for ${this.n}`);
    if (logits.length < m * C) throw new Error(`LogitRows: ${logits.length} logits for ${m} rows of ${C}`);
    this.pred.set(argmaxRows(logits, m, C), this.filled);
    this.confidence.set(maxSoftmax(logits, m, C), this.filled);
    this.filled += m;
  }

  evaluate(
    labels: ArrayLike<number>,
    trainCounts: readonly number[],
    opts: { thresholds?: ShotThresholds; confusionMaxClasses?: number } = {},
  ): Evaluation {
    if (this.filled !== this.n || labels.length !== this.n)
      throw new Error(`LogitRows: ${this.filled} of ${this.n} rows filled, ${labels.length} labels`);
    return evaluatePredictions(this.pred, labels, this.numClasses, trainCounts, {
      ...opts,
      confidence: this.confidence,
    });
  }
}

/**
 * Evaluates a split's logits block by block: `logitsOf(start, m)` gives rows [start, start + m)
 * as [m, C]; at most `chunkRows` rows at once (default defaultChunkRows(C)). `onBlock` sees each
 * block too (e.g. for the shifted-prior evaluation). Equals evaluateLogits of the whole [n, C].
 */
export function evaluateLogitBlocks(
  logitsOf: (start: number, m: number) => Float32Array,
  labels: Int32Array,
  numClasses: number,
  trainCounts: readonly number[],
  opts: {
    thresholds?: ShotThresholds;
    chunkRows?: number;
    onBlock?: (logits: Float32Array, start: number, m: number) => void;
  } = {},
): { evaluation: Evaluation; rows: LogitRows } {
  const n = labels.length;
  const step = Math.max(1, Math.floor(opts.chunkRows ?? defaultChunkRows(numClasses)));
  const rows = new LogitRows(n, numClasses);
  for (let s = 0; s < n; s += step) {
    const m = Math.min(step, n - s);
    const z = logitsOf(s, m); // [m, C]
    rows.add(z, m);
    opts.onBlock?.(z, s, m);
  }
  const evaluation = rows.evaluate(
    labels,
    trainCounts,
    opts.thresholds ? { thresholds: opts.thresholds } : {},
  );
  return { evaluation, rows };
}

/** Evaluates logits [n, C]. */
export function evaluateLogits(
  logits: Float32Array,
  labels: Int32Array,
  numClasses: number,
  trainCounts: readonly number[],
  thresholds?: ShotThresholds,
): Evaluation {
  const rows = new LogitRows(labels.length, numClasses);
  rows.add(logits, labels.length);
  return rows.evaluate(labels, trainCounts, thresholds ? { thresholds } : {});
}

/**
 * Summaries of per-class recall that the long-tail literature reports beside top-1 (e.g.
 * Narasimhan and Menon, "Training Over-parameterized Models with Non-decomposable Objectives",
 * NeurIPS 2021): the worst class's recall, and the harmonic and geometric means of the recalls.
 * Both means are 0 when any class has recall 0. Classes absent from the evaluated set (null) are
 * left out; null when no class is present.
 */
export function recallSummary(perClass: readonly (number | null)[]): {
  worstClass: number | null;
  hmeanRecall: number | null;
  gmeanRecall: number | null;
} {
  const r = perClass.filter((v): v is number => v !== null);
  if (r.length === 0) return { worstClass: null, hmeanRecall: null, gmeanRecall: null };
  const worst = Math.min(...r);
  if (worst === 0) return { worstClass: 0, hmeanRecall: 0, gmeanRecall: 0 };
  const inv = r.reduce((s, v) => s + 1 / v, 0);
  const logs = r.reduce((s, v) => s + Math.log(v), 0);
  return { worstClass: worst, hmeanRecall: r.length / inv, gmeanRecall: Math.exp(logs / r.length) };
}
