/**
 * Temperature scaling (Guo, Pleiss, Sun, Weinberger, "On Calibration of Modern Neural Networks",
 * ICML 2017): one scalar T per method, fitted on the validation split by minimising the negative
 * log-likelihood of softmax(z / T). A temperature never changes a row's argmax, so top-1 is
 * unchanged; only the confidences move.
 *
 * Logits are read a block of rows at a time (a LogitBlocks walk, as eval/metrics.ts evaluates
 * them), so [n, C] never needs to exist whole. For NCM the "logits" are negative distances: a
 * fitted temperature turns them into probabilities like any other method's.
 */
import { ConfigError } from '../errors.ts';
import { expectedCalibrationError } from './metrics.ts';

/** Walks every row's logits once, in order: calls `visit(z [m, C], start, m)` per block. */
export type LogitBlocks = (visit: (z: Float32Array, start: number, m: number) => void) => void;

/** Blocks of one in-memory array of logits [n, C], `rows` rows at a time. */
export function arrayBlocks(logits: Float32Array, n: number, C: number, rows = n): LogitBlocks {
  const step = Math.max(1, rows);
  return (visit) => {
    for (let s = 0; s < n; s += step) {
      const m = Math.min(step, n - s);
      visit(logits.subarray(s * C, (s + m) * C), s, m);
    }
  };
}

/** log sum_c exp(z_c / T) of row `o` (offset), computed stably in f64. */
function logSumExp(z: Float32Array, o: number, C: number, invT: number): number {
  let m = -Infinity;
  for (let c = 0; c < C; c++) m = Math.max(m, z[o + c]! * invT);
  let s = 0;
  for (let c = 0; c < C; c++) s += Math.exp(z[o + c]! * invT - m);
  return m + Math.log(s);
}

/** Mean negative log-likelihood of softmax(z / T) at the labels (natural log). */
export function nllAt(blocks: LogitBlocks, labels: ArrayLike<number>, C: number, T = 1): number {
  const invT = 1 / T;
  let sum = 0;
  let n = 0;
  blocks((z, start, m) => {
    for (let i = 0; i < m; i++) {
      const o = i * C;
      sum += logSumExp(z, o, C, invT) - z[o + labels[start + i]!]! * invT;
    }
    n += m;
  });
  return n === 0 ? 0 : sum / n;
}

export interface CalibrationStats {
  nll: number;
  ece: number;
}

/** NLL and ECE of softmax(z / T), fed blocks of rows in order (e.g. from an evaluation's onBlock). */
export interface CalibrationAccumulator {
  add(z: Float32Array, start: number, m: number): void;
  result(): CalibrationStats;
}

export function calibrationAccumulator(labels: ArrayLike<number>, C: number, T = 1): CalibrationAccumulator {
  const invT = 1 / T;
  const conf: number[] = [];
  const correct: boolean[] = [];
  let sum = 0;
  return {
    add(z, start, m) {
      for (let i = 0; i < m; i++) {
        const o = i * C;
        const lse = logSumExp(z, o, C, invT);
        const y = labels[start + i]!;
        sum += lse - z[o + y]! * invT;
        let best = 0;
        for (let c = 1; c < C; c++) if (z[o + c]! > z[o + best]!) best = c;
        conf.push(Math.exp(z[o + best]! * invT - lse));
        correct.push(best === y);
      }
    },
    result: () => ({
      nll: conf.length === 0 ? 0 : sum / conf.length,
      ece: expectedCalibrationError(conf, correct),
    }),
  };
}

/** NLL and 15-bin ECE of softmax(z / T): one walk over the blocks. */
export function calibrationStats(
  blocks: LogitBlocks,
  labels: ArrayLike<number>,
  C: number,
  T = 1,
): CalibrationStats {
  const acc = calibrationAccumulator(labels, C, T);
  blocks((z, start, m) => acc.add(z, start, m));
  return acc.result();
}

export interface TemperatureFit {
  temperature: number;
  nllBefore: number;
  nllAfter: number;
  /** NLL evaluations (walks over the logits) the search took. */
  evaluations: number;
}

/** The search range of T; wide enough for NCM's distances (small T) and saturated logits (large T). */
export const TEMPERATURE_RANGE = [1e-3, 1e3] as const;

/**
 * Fits T by golden-section search on log T over TEMPERATURE_RANGE. The NLL is convex in 1/T (a
 * log-sum-exp of linear functions minus a linear one), hence unimodal in log T, so the search
 * finds the global minimum; it stops when the bracket is below `tol` in log T. The result is
 * never worse than T = 1 (kept when the search's minimum is not lower).
 */
export function fitTemperature(
  blocks: LogitBlocks,
  labels: ArrayLike<number>,
  C: number,
  opts: { tol?: number } = {},
): TemperatureFit {
  if (labels.length === 0) throw new ConfigError('temperature scaling needs a validation split with images');
  const tol = opts.tol ?? 1e-5;
  let evaluations = 0;
  const f = (logT: number) => {
    evaluations++;
    return nllAt(blocks, labels, C, Math.exp(logT));
  };
  const g = (Math.sqrt(5) - 1) / 2;
  let a = Math.log(TEMPERATURE_RANGE[0]);
  let b = Math.log(TEMPERATURE_RANGE[1]);
  let x1 = b - g * (b - a);
  let x2 = a + g * (b - a);
  let f1 = f(x1);
  let f2 = f(x2);
  while (b - a > tol) {
    if (f1 <= f2) {
      b = x2;
      x2 = x1;
      f2 = f1;
      x1 = b - g * (b - a);
      f1 = f(x1);
    } else {
      a = x1;
      x1 = x2;
      f1 = f2;
      x2 = a + g * (b - a);
      f2 = f(x2);
    }
  }
  const logT = (a + b) / 2;
  const nllBefore = f(0);
  const nllAfter = f(logT);
  return nllAfter <= nllBefore
    ? { temperature: Math.exp(logT), nllBefore, nllAfter, evaluations }
    : { temperature: 1, nllBefore, nllAfter: nllBefore, evaluations };
}

/** What a deployed head keeps of its calibration (deploy/folded.ts): T, the source prior, BBSE's validation counts. */
export interface DeployCalibration {
  temperature: number;
  /** Validation label frequencies; null without a validation split (then uniform is assumed). */
  sourcePrior: number[] | null;
  /** Validation counts[pred * C + true]; null without a validation split or above the BBSE class limit (pipeline/stage2.ts). */
  valConfusion: Float64Array | null;
}
