/**
 * The live report's arithmetic, written once: Node (src/pipeline/live-report-data.ts, the tests) and the page
 * (page.ts, bundled into report.html) both use it. No DOM, no Node API.
 *
 * Evaluation follows src/eval/metrics.ts (top-1, many / medium / few as the mean of the split's
 * per-class accuracies, macro-F1 over the classes present, ECE of the softmax confidence in 15
 * equal-width bins), with one generalisation: each row carries the weight q_t / k_t of its class t
 * (q the target class prior, k_t the class's embedded rows), so the numbers are the expectation
 * under the prior q. With q the test set's own class shares and every test row embedded, every
 * weight is 1 / n and the numbers are exactly the CLI's.
 */
import { bbsePriorFromCounts, emPrior, priorShift, softmaxRows } from '../../eval/label-shift.ts';
import { type ShiftedPrior, shiftedPrior } from '../../eval/shifted-priors.ts';
import { type ShotThresholds, type Split, splitOf } from '../../eval/shot-splits.ts';
import type { LiveCalibration } from './data.ts';

// ---------------------------------------------------------------------------------------------
// float16

const F32 = new Float32Array(1);
const U32 = new Uint32Array(F32.buffer);
/** The largest finite half. */
export const HALF_MAX = 65504;

/** IEEE 754 half-precision bits of x, rounded to nearest (ties to even), like NumPy's astype(float16). */
export function toHalf(x: number): number {
  F32[0] = x;
  const b = U32[0]!;
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  let mant = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 112; // rebias 127 -> 15
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // Subnormal half: m * 2^-24 with m = (1.mant) * 2^(e - 14 + 23) / 2^23.
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let h = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && (h & 1) === 1)) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1) === 1)) h++; // a carry into the exponent is right
  return sign | h;
}

export function fromHalf(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >>> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? Number.NaN : s * Number.POSITIVE_INFINITY;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

let HALF_TABLE: Float32Array | null = null;
/** fromHalf of all 65536 bit patterns (decoding by lookup). */
export function halfTable(): Float32Array {
  if (!HALF_TABLE) {
    HALF_TABLE = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) HALF_TABLE[h] = fromHalf(h);
  }
  return HALF_TABLE;
}

/**
 * Rows [k, C] as offset (each row's max, float32) + float16 residuals (<= 0; clamped at -HALF_MAX,
 * far below anything a softmax or an argmax sees).
 */
export function encodeRows(
  logits: Float32Array,
  k: number,
  C: number,
): { offsets: Float32Array; halves: Uint16Array } {
  const offsets = new Float32Array(k);
  const halves = new Uint16Array(k * C);
  for (let i = 0; i < k; i++) {
    let m = -Infinity;
    for (let c = 0; c < C; c++) m = Math.max(m, logits[i * C + c]!);
    if (!Number.isFinite(m)) m = 0;
    offsets[i] = m;
    const off = offsets[i]!;
    for (let c = 0; c < C; c++) halves[i * C + c] = toHalf(Math.max(-HALF_MAX, logits[i * C + c]! - off));
  }
  return { offsets, halves };
}

/** The inverse of encodeRows: [k, C]. */
export function decodeRows(offsets: Float32Array, halves: Uint16Array, k: number, C: number): Float32Array {
  const t = halfTable();
  const out = new Float32Array(k * C);
  for (let i = 0; i < k; i++) {
    const off = offsets[i]!;
    for (let c = 0; c < C; c++) out[i * C + c] = off + t[halves[i * C + c]!]!;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// the post-hoc knobs

/** tau-norm's column scale ||w_c||^-tau (a zero row stays as it is, as classifiers/tau-norm.ts). */
export function tauScale(norms: readonly number[], tau: number): Float32Array {
  return Float32Array.from(norms, (v) => (v === 0 ? 1 : v ** -tau));
}

/** logits[:, c] * scale[c] + shift[c], a new array. [k, C] -> [k, C]. */
export function columnMap(
  z: Float32Array,
  k: number,
  C: number,
  scale: ArrayLike<number> | null,
  shift: ArrayLike<number> | null,
): Float32Array {
  const out = new Float32Array(k * C);
  for (let i = 0; i < k; i++)
    for (let c = 0; c < C; c++) {
      let v = z[i * C + c]!;
      if (scale) v *= scale[c]!;
      if (shift) v += shift[c]!;
      out[i * C + c] = v;
    }
  return out;
}

// ---------------------------------------------------------------------------------------------
// target priors

/**
 * The prior grid of the page's slider: forward long tails (most skewed first), the test set as it
 * is, backward long tails. Ratios 2, 10 and 50 are the CLI's shifted columns.
 */
export const PRIOR_RATIOS = [50, 30, 20, 10, 5, 3, 2, 1.5] as const;

export function priorGrid(): ShiftedPrior[] {
  return [
    ...PRIOR_RATIOS.map((ratio) => ({ ratio, direction: 'forward' as const })),
    { ratio: 1, direction: 'uniform' as const },
    ...[...PRIOR_RATIOS].reverse().map((ratio) => ({ ratio, direction: 'backward' as const })),
  ];
}

/**
 * The class prior q [C] at a setting of the page's prior slider: the test set's own class shares
 * for `uniform` (the CLI's main numbers; uniform for a balanced test set), else the shifted
 * prior of src/eval/shifted-priors.ts (ranks by training count, sizes
 * floor(m * ratio^(-rank / (C - 1))), m the smallest per-class test count), so the page's priors
 * are the CLI's shifted sets' priors.
 */
export function sliderPrior(trainCounts: readonly number[], testCounts: readonly number[], p: ShiftedPrior) {
  if (p.direction === 'uniform') {
    const n = testCounts.reduce((a, b) => a + b, 0);
    return Float64Array.from(testCounts, (v) => (n === 0 ? 0 : v / n));
  }
  return Float64Array.from(shiftedPrior(trainCounts, Math.min(...testCounts), p));
}

/** Weight of one row of each class: q_t / k_t (0 for a class with no embedded row). */
export function classWeights(prior: ArrayLike<number>, rowCounts: ArrayLike<number>): Float64Array {
  return Float64Array.from({ length: prior.length }, (_, c) =>
    rowCounts[c]! === 0 ? 0 : prior[c]! / rowCounts[c]!,
  );
}

export function countLabels(labels: ArrayLike<number>, C: number): Int32Array {
  const out = new Int32Array(C);
  for (let i = 0; i < labels.length; i++) out[labels[i]!]!++;
  return out;
}

// ---------------------------------------------------------------------------------------------
// evaluation

export const ECE_BINS = 15;

export interface LiveBin {
  /** Total weight of the rows in the bin (fraction of all), their mean confidence and accuracy. */
  weight: number;
  confidence: number;
  accuracy: number;
}

export interface LiveEval {
  overall: number;
  many: number | null;
  medium: number | null;
  few: number | null;
  macroF1: number;
  ece: number;
  /** Per class (null: no embedded row of the class). */
  perClass: (number | null)[];
  bins: LiveBin[];
  /** Weighted confusion [C * C] (true row, predicted column), when asked for. */
  confusion: Float64Array | null;
}

/** Splits of the classes by training count (eval/shot-splits.ts). */
export function classSplits(trainCounts: readonly number[], t: ShotThresholds): Split[] {
  return trainCounts.map((n) => splitOf(n, t));
}

const meanOf = (v: readonly (number | null)[], classes: readonly number[]): number | null => {
  const x = classes.map((c) => v[c]).filter((a): a is number => a !== null && a !== undefined);
  return x.length === 0 ? null : x.reduce((a, b) => a + b, 0) / x.length;
};

/**
 * Evaluates logits [k, C] (plus, if given, a column shift such as log q for the known-prior
 * correction) against labels, each row weighted by its class's weight. With a `temperature` T the
 * scores are z / T + shift in f64, exactly as eval/label-shift.ts's adjustedPredictions takes its
 * argmax (the shift then holds log q - log p + b: priorShift); without, z + shift in float32.
 */
export function evaluateLive(
  logits: Float32Array,
  labels: Int32Array,
  C: number,
  weights: Float64Array,
  splits: readonly Split[],
  opts: { shift?: ArrayLike<number> | null; temperature?: number; confusion?: boolean } = {},
): LiveEval {
  const k = labels.length;
  const shift = opts.shift ?? null;
  const T = opts.temperature;
  const hits = new Int32Array(C);
  const rows = new Int32Array(C);
  const tpW = new Float64Array(C);
  const rowW = new Float64Array(C);
  const colW = new Float64Array(C);
  const confusion = opts.confusion ? new Float64Array(C * C) : null;
  const bw = new Float64Array(ECE_BINS);
  const bConf = new Float64Array(ECE_BINS);
  const bAcc = new Float64Array(ECE_BINS);
  const row = new Float64Array(C);
  let totalW = 0;
  let correctW = 0;
  for (let i = 0; i < k; i++) {
    const t = labels[i]!;
    // argmax (first maximum, as metrics.ts) and softmax confidence 1 / sum exp(l - max)
    let best = 0;
    let bv = -Infinity;
    for (let c = 0; c < C; c++) {
      const v = !shift
        ? logits[i * C + c]!
        : T === undefined
          ? Math.fround(logits[i * C + c]! + shift[c]!)
          : logits[i * C + c]! / T + shift[c]!;
      row[c] = v;
      if (c === 0 || v > bv) {
        bv = v;
        best = c;
      }
    }
    let s = 0;
    for (let c = 0; c < C; c++) s += Math.exp(row[c]! - bv);
    const conf = 1 / s;
    const w = weights[t]!;
    const ok = best === t;
    rows[t]!++;
    if (ok) hits[t]!++;
    totalW += w;
    rowW[t]! += w;
    colW[best]! += w;
    if (ok) {
      tpW[t]! += w;
      correctW += w;
    }
    if (confusion) confusion[t * C + best]! += w;
    const b = Math.min(ECE_BINS - 1, Math.max(0, Math.ceil(conf * ECE_BINS) - 1));
    bw[b]! += w;
    bConf[b]! += w * conf;
    if (ok) bAcc[b]! += w;
  }
  const perClass = Array.from(rows, (n, c) => (n === 0 ? null : hits[c]! / n));
  const f1s: number[] = [];
  for (let c = 0; c < C; c++) {
    if (rows[c] === 0 || rowW[c] === 0) continue;
    const precision = colW[c] === 0 ? 0 : tpW[c]! / colW[c]!;
    const recall = tpW[c]! / rowW[c]!;
    f1s.push(precision + recall === 0 ? 0 : (2 * precision * recall) / (precision + recall));
  }
  let ece = 0;
  const bins: LiveBin[] = [];
  for (let b = 0; b < ECE_BINS; b++) {
    if (totalW > 0 && bw[b]! > 0) ece += Math.abs(bAcc[b]! - bConf[b]!) / totalW;
    bins.push({
      weight: totalW === 0 ? 0 : bw[b]! / totalW,
      confidence: bw[b]! === 0 ? 0 : bConf[b]! / bw[b]!,
      accuracy: bw[b]! === 0 ? 0 : bAcc[b]! / bw[b]!,
    });
  }
  const by = (s: Split) => splits.flatMap((x, c) => (x === s ? [c] : []));
  return {
    overall: totalW === 0 ? 0 : correctW / totalW,
    many: meanOf(perClass, by('many')),
    medium: meanOf(perClass, by('medium')),
    few: meanOf(perClass, by('few')),
    macroF1: f1s.length === 0 ? 0 : f1s.reduce((a, b) => a + b, 0) / f1s.length,
    ece,
    perClass,
    bins,
    confusion,
  };
}

// ---------------------------------------------------------------------------------------------
// prior corrections: known, or estimated from the rows (eval/label-shift.ts, the CLI's code)

/**
 * What the page adds to a method's scores under a target prior: nothing; the known target prior
 * (the oracle); or the prior estimated from the prior-weighted rows themselves, unlabeled, by EM
 * (Saerens et al. 2002) or BBSE (Lipton et al. 2018), as the CLI's shifted columns do.
 */
export type Correction = 'none' | 'known' | 'em' | 'bbse';

/** Each row's weight, its class's: [k]. */
export function rowWeights(labels: ArrayLike<number>, classW: ArrayLike<number>): Float64Array {
  return Float64Array.from({ length: labels.length }, (_, i) => classW[labels[i]!]!);
}

/**
 * BBSE's validation counts [C * C] (f64, as eval/label-shift.ts's validationConfusion) from the
 * (pred * C + true, count) pairs the run stores (eval/calibration.ts's sparseConfusion).
 */
export function confusionCounts(pairs: ArrayLike<number>, C: number): Float64Array {
  const counts = new Float64Array(C * C);
  for (let i = 0; i + 1 < pairs.length; i += 2) counts[pairs[i]!] = pairs[i + 1]!;
  return counts;
}

/** The source prior p the calibrated scores refer to: the validation shares, else uniform. */
export function sourceOf(sourcePrior: readonly number[] | null | undefined, C: number): number[] {
  return sourcePrior ? [...sourcePrior] : new Array<number>(C).fill(1 / C);
}

/** Calibrated posteriors softmax(z / T + b) [k, C] of a method's rows (what EM reads). */
export function livePosteriors(
  logits: Float32Array,
  k: number,
  C: number,
  cal: LiveCalibration,
): Float64Array {
  return softmaxRows(logits, k, C, cal.temperature, cal.bias);
}

/** The calibrated argmax of each row (first maximum; the deployed head's, BBSE's black box) [k]. */
export function livePredictions(
  logits: Float32Array,
  k: number,
  C: number,
  cal: LiveCalibration,
): Int32Array {
  const T = cal.temperature;
  const b = cal.bias;
  const out = new Int32Array(k);
  for (let i = 0; i < k; i++) {
    const o = i * C;
    let best = 0;
    let bv = logits[o]! / T + (b ? b[0]! : 0);
    for (let c = 1; c < C; c++) {
      const v = logits[o + c]! / T + (b ? b[c]! : 0);
      if (v > bv) {
        bv = v;
        best = c;
      }
    }
    out[i] = best;
  }
  return out;
}

/**
 * The target prior estimated from k unlabeled rows weighted by `weights` [k] (rowWeights: the
 * test rows re-weighted to the slider's prior): EM on the calibrated posteriors `probs`
 * (livePosteriors), or BBSE on the calibrated predictions `pred` (livePredictions) against the
 * validation counts. The library's own functions, so the page's estimate is the CLI's on the same
 * rows.
 */
export function estimateLivePrior(
  how: 'em' | 'bbse',
  rows: { probs?: Float64Array; pred?: Int32Array },
  k: number,
  C: number,
  weights: Float64Array,
  source: readonly number[],
  valCounts: Float64Array | null = null,
): number[] {
  if (how === 'em') return emPrior(rows.probs!, k, C, source, { weights }).prior;
  if (!valCounts) throw new Error('BBSE needs the validation counts');
  return bbsePriorFromCounts(valCounts, rows.pred!, C, { weights }).prior;
}

/** The shift evaluateLive adds after z / T under a target prior q: log q - log p + b (priorShift). */
export function correctionShift(
  q: readonly number[],
  source: readonly number[],
  cal: LiveCalibration,
): number[] {
  return priorShift(q, source, cal.bias);
}

/** A fraction as the results' percent (two decimals, results.json) shown with one (results.md). */
export function pctText(v: number | null): string {
  return v === null ? '-' : (Math.round(v * 10000) / 100).toFixed(1);
}

/** macro-F1 and ECE as results.md shows them (4 decimals of the fraction). */
export function fractionText(v: number): string {
  return (Math.round(v * 10000) / 10000).toFixed(4);
}

/** Classes from the head to the tail: by training count, largest first (ties by index). */
export function headToTail(trainCounts: readonly number[]): number[] {
  return trainCounts
    .map((n, c) => [n, c] as const)
    .sort((a, b) => b[0] - a[0] || a[1] - b[1])
    .map(([, c]) => c);
}
