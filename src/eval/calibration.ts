/**
 * Temperature scaling (Guo, Pleiss, Sun, Weinberger, "On Calibration of Modern Neural Networks",
 * ICML 2017): one scalar T per method, fitted on the validation split by minimising the negative
 * log-likelihood of softmax(z / T). A temperature never changes a row's argmax, so top-1 is
 * unchanged; only the confidences move.
 *
 * Logits are read a block of rows at a time (a LogitBlocks walk, as eval/metrics.ts evaluates
 * them), so [n, C] never needs to exist whole. For NCM the "logits" are negative distances: a
 * fitted temperature turns them into probabilities like any other method's.
 *
 * Bias-corrected temperature scaling (BCTS; Alexandari, Kundaje, Shrikumar, "Maximum Likelihood
 * with Bias-Corrected Calibration is Hard-To-Beat at Label Shift Adaptation", ICML 2020) adds a
 * bias per class: softmax(z / T + b). A head trained on a long tail carries per-class offsets
 * (its logits lean towards the head classes); one temperature cannot remove them, and EM then
 * mistakes the offsets for prior shift. The biases can change a row's argmax.
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

/** Per-class biases added after the temperature (BCTS); null: none. */
export type ClassBias = ArrayLike<number> | null;

/** log sum_c exp(z_c / T + b_c) of row `o` (offset), computed stably in f64. */
function logSumExp(z: Float32Array, o: number, C: number, invT: number, b: ClassBias = null): number {
  let m = -Infinity;
  for (let c = 0; c < C; c++) m = Math.max(m, z[o + c]! * invT + (b ? b[c]! : 0));
  let s = 0;
  for (let c = 0; c < C; c++) s += Math.exp(z[o + c]! * invT + (b ? b[c]! : 0) - m);
  return m + Math.log(s);
}

/** Mean negative log-likelihood of softmax(z / T + b) at the labels (natural log). */
export function nllAt(
  blocks: LogitBlocks,
  labels: ArrayLike<number>,
  C: number,
  T = 1,
  bias: ClassBias = null,
): number {
  const invT = 1 / T;
  let sum = 0;
  let n = 0;
  blocks((z, start, m) => {
    for (let i = 0; i < m; i++) {
      const o = i * C;
      const y = labels[start + i]!;
      sum += logSumExp(z, o, C, invT, bias) - z[o + y]! * invT - (bias ? bias[y]! : 0);
    }
    n += m;
  });
  return n === 0 ? 0 : sum / n;
}

export interface CalibrationStats {
  nll: number;
  ece: number;
  /** Top-1 of the calibrated scores (differs from the raw argmax's only with biases). */
  accuracy: number;
}

/** NLL, ECE and top-1 of softmax(z / T + b), fed blocks of rows in order (e.g. from an evaluation's onBlock). */
export interface CalibrationAccumulator {
  add(z: Float32Array, start: number, m: number): void;
  result(): CalibrationStats;
}

export function calibrationAccumulator(
  labels: ArrayLike<number>,
  C: number,
  T = 1,
  bias: ClassBias = null,
): CalibrationAccumulator {
  const invT = 1 / T;
  const conf: number[] = [];
  const correct: boolean[] = [];
  let hits = 0;
  let sum = 0;
  const u = (z: Float32Array, k: number, c: number) => (bias ? z[k]! * invT + bias[c]! : z[k]!);
  return {
    add(z, start, m) {
      for (let i = 0; i < m; i++) {
        const o = i * C;
        const lse = logSumExp(z, o, C, invT, bias);
        const y = labels[start + i]!;
        sum += lse - z[o + y]! * invT - (bias ? bias[y]! : 0);
        // Without biases the raw argmax (a temperature keeps it); with them, the calibrated one.
        let best = 0;
        for (let c = 1; c < C; c++) if (u(z, o + c, c) > u(z, o + best, best)) best = c;
        conf.push(Math.exp(z[o + best]! * invT + (bias ? bias[best]! : 0) - lse));
        correct.push(best === y);
        if (best === y) hits++;
      }
    },
    result: () => ({
      nll: conf.length === 0 ? 0 : sum / conf.length,
      ece: expectedCalibrationError(conf, correct),
      accuracy: conf.length === 0 ? 0 : hits / conf.length,
    }),
  };
}

/** NLL, 15-bin ECE and top-1 of softmax(z / T + b): one walk over the blocks. */
export function calibrationStats(
  blocks: LogitBlocks,
  labels: ArrayLike<number>,
  C: number,
  T = 1,
  bias: ClassBias = null,
): CalibrationStats {
  const acc = calibrationAccumulator(labels, C, T, bias);
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

export interface BctsFit {
  temperature: number;
  /** b per class; the classes seen on validation sum to 0, an unseen class keeps 0 (their mean). */
  bias: number[];
  /** Validation NLL at T = 1, b = 0; at temperature scaling's T (the start); at the fit. */
  nllBefore: number;
  nllTemperature: number;
  nllAfter: number;
  /** L-BFGS iterations, and NLL-and-gradient walks over the logits (the temperature search's included). */
  iterations: number;
  evaluations: number;
  /** Largest |gradient| entry at the end (in a = 1/T and b). */
  gradNorm: number;
}

/**
 * The mean NLL of softmax(a z + b) and its gradient in (a, b), one walk over the blocks:
 * dNLL/da = mean_i (sum_c p_ic z_ic - z_iy), dNLL/db_c = mean_i (p_ic - [y_i = c]).
 */
function bctsObjective(
  blocks: LogitBlocks,
  labels: ArrayLike<number>,
  C: number,
  a: number,
  b: Float64Array,
  grad: Float64Array,
): number {
  grad.fill(0);
  const p = new Float64Array(C);
  let sum = 0;
  let n = 0;
  blocks((z, start, m) => {
    for (let i = 0; i < m; i++) {
      const o = i * C;
      const y = labels[start + i]!;
      let mx = -Infinity;
      for (let c = 0; c < C; c++) {
        const u = a * z[o + c]! + b[c]!;
        p[c] = u;
        if (u > mx) mx = u;
      }
      let s = 0;
      for (let c = 0; c < C; c++) {
        const e = Math.exp(p[c]! - mx);
        p[c] = e;
        s += e;
      }
      sum += mx + Math.log(s) - (a * z[o + y]! + b[y]!);
      let ez = 0;
      for (let c = 0; c < C; c++) {
        const q = p[c]! / s;
        ez += q * z[o + c]!;
        grad[1 + c]! += q;
      }
      grad[0]! += ez - z[o + y]!;
      grad[1 + y]! -= 1;
    }
    n += m;
  });
  for (let k = 0; k <= C; k++) grad[k]! /= n;
  return sum / n;
}

/**
 * Fits BCTS, softmax(z / T + b), on the validation logits by minimising the mean NLL. The NLL is
 * convex in (a = 1/T, b) (a log-sum-exp of linear functions minus a linear one), so L-BFGS with
 * an Armijo backtracking line search on (a, b) finds the global minimum; a stays above 0 (a step
 * that would cross it is shortened). It starts from temperature scaling's fit (a = 1/T_ts,
 * b = 0) and only ever lowers the NLL, so the validation NLL is never above temperature
 * scaling's. Adding a constant to every b changes nothing, so the gradient in b is projected to
 * sum 0 over the classes present on validation; a class absent from validation has no data for
 * its bias and keeps 0, the present classes' mean (its gradient would drive b to -infinity).
 * Stops when every gradient entry is below `gtol`, or the NLL stops decreasing.
 */
export function fitBcts(
  blocks: LogitBlocks,
  labels: ArrayLike<number>,
  C: number,
  opts: { gtol?: number; maxIter?: number; memory?: number } = {},
): BctsFit {
  if (labels.length === 0) throw new ConfigError('BCTS calibration needs a validation split with images');
  const gtol = opts.gtol ?? 1e-7;
  const maxIter = opts.maxIter ?? 500;
  const M = opts.memory ?? 10;
  const ts = fitTemperature(blocks, labels, C);
  let evaluations = ts.evaluations;
  const present = new Uint8Array(C);
  for (let i = 0; i < labels.length; i++) present[labels[i]!] = 1;
  let nPresent = 0;
  for (let c = 0; c < C; c++) nPresent += present[c]!;
  const K = C + 1;
  const x = new Float64Array(K);
  x[0] = 1 / ts.temperature;
  const g = new Float64Array(K);
  const evalAt = (xx: Float64Array, gg: Float64Array) => {
    evaluations++;
    const f = bctsObjective(blocks, labels, C, xx[0]!, xx.subarray(1), gg);
    let mean = 0;
    for (let c = 0; c < C; c++) if (present[c]) mean += gg[1 + c]!;
    mean /= nPresent;
    for (let c = 0; c < C; c++) gg[1 + c] = present[c] ? gg[1 + c]! - mean : 0;
    return f;
  };
  let f = evalAt(x, g);
  const nllTemperature = f;
  const maxAbs = (v: Float64Array) => v.reduce((m, e) => Math.max(m, Math.abs(e)), 0);
  const S: Float64Array[] = [];
  const Y: Float64Array[] = [];
  const rho: number[] = [];
  const dot = (u: Float64Array, v: Float64Array) => {
    let t = 0;
    for (let k = 0; k < K; k++) t += u[k]! * v[k]!;
    return t;
  };
  const xNew = new Float64Array(K);
  const gNew = new Float64Array(K);
  const d = new Float64Array(K);
  let iterations = 0;
  while (iterations < maxIter && maxAbs(g) > gtol) {
    iterations++;
    // Two-loop recursion: d = -H g, H0 scaled by s.y / y.y of the newest pair.
    d.set(g);
    const alpha = new Array<number>(S.length);
    for (let j = S.length - 1; j >= 0; j--) {
      alpha[j] = rho[j]! * dot(S[j]!, d);
      for (let k = 0; k < K; k++) d[k]! -= alpha[j]! * Y[j]![k]!;
    }
    const gamma =
      S.length > 0 ? dot(S.at(-1)!, Y.at(-1)!) / dot(Y.at(-1)!, Y.at(-1)!) : 1 / Math.max(1, maxAbs(g));
    for (let k = 0; k < K; k++) d[k]! *= gamma;
    for (let j = 0; j < S.length; j++) {
      const beta = rho[j]! * dot(Y[j]!, d);
      for (let k = 0; k < K; k++) d[k]! += S[j]![k]! * (alpha[j]! - beta);
    }
    for (let k = 0; k < K; k++) d[k] = -d[k]!;
    let slope = dot(g, d);
    if (!(slope < 0)) {
      // Not a descent direction (numerical trouble): restart from steepest descent.
      S.length = Y.length = rho.length = 0;
      for (let k = 0; k < K; k++) d[k] = -g[k]! / Math.max(1, maxAbs(g));
      slope = dot(g, d);
    }
    let t = 1;
    // a must stay positive: shorten a step that would reach 0 or below.
    if (x[0]! + d[0]! <= 0) t = (0.5 * x[0]!) / -d[0]!;
    let fNew = Number.POSITIVE_INFINITY;
    for (let ls = 0; ls < 60; ls++) {
      for (let k = 0; k < K; k++) xNew[k] = x[k]! + t * d[k]!;
      fNew = evalAt(xNew, gNew);
      if (fNew <= f + 1e-4 * t * slope) break;
      t *= 0.5;
    }
    if (!(fNew < f)) break; // no decrease left at double precision
    const s = new Float64Array(K);
    const y = new Float64Array(K);
    for (let k = 0; k < K; k++) {
      s[k] = xNew[k]! - x[k]!;
      y[k] = gNew[k]! - g[k]!;
    }
    const sy = dot(s, y);
    if (sy > 1e-16) {
      if (S.length === M) {
        S.shift();
        Y.shift();
        rho.shift();
      }
      S.push(s);
      Y.push(y);
      rho.push(1 / sy);
    }
    const fOld = f;
    x.set(xNew);
    g.set(gNew);
    f = fNew;
    if (fOld - f <= 1e-15 * Math.max(1, Math.abs(f))) break;
  }
  return {
    temperature: 1 / x[0]!,
    bias: Array.from(x.subarray(1)),
    nllBefore: ts.nllBefore,
    nllTemperature,
    nllAfter: f,
    iterations,
    evaluations,
    gradNorm: maxAbs(g),
  };
}

/** What a deployed head keeps of its calibration (deploy/folded.ts): T, b, the source prior, BBSE's validation counts. */
export interface DeployCalibration {
  temperature: number;
  /** BCTS's per-class biases (added after z / T); null for temperature scaling or none. */
  bias: number[] | null;
  /** Validation label frequencies; null without a validation split (then uniform is assumed). */
  sourcePrior: number[] | null;
  /** Validation counts of (predicted, true) pairs; null without a validation split or above the BBSE class limit (pipeline/stage2.ts). */
  valConfusion: SparseConfusion | null;
}

/**
 * Validation counts of (predicted, true) pairs, only the pairs that occur: what BBSE needs of the
 * validation split. A run keeps one per method until classifiers.npz and the report are written;
 * dense, that was C x C float64 a method (7.6 MiB at 1,000 classes), sparse it is at most two
 * int32 per validation image (160 KiB for 20,000 images).
 */
export interface SparseConfusion {
  classes: number;
  /** [index, count] pairs, index = pred * C + true ascending, count >= 1 (the live report's layout). */
  pairs: Int32Array;
}

/** The sparse counts of (valPred[k], valLabels[k]) (sorting n keys: no C x C array is made). */
export function sparseConfusion(
  valPred: ArrayLike<number>,
  valLabels: ArrayLike<number>,
  C: number,
): SparseConfusion {
  const n = valLabels.length;
  if (valPred.length !== n) throw new Error(`sparseConfusion: ${valPred.length} predictions for ${n} labels`);
  // pred * C + true must fit an int32 key.
  if (!(Number.isInteger(C) && C >= 1 && C * C <= 2 ** 31 - 1))
    throw new Error(`sparseConfusion: ${C} classes; expected 1 to 46340`);
  const keys = new Int32Array(n);
  for (let k = 0; k < n; k++) {
    const p = valPred[k]!;
    const t = valLabels[k]!;
    if (!(p >= 0 && p < C && t >= 0 && t < C && Number.isInteger(p) && Number.isInteger(t)))
      throw new Error(
        `sparseConfusion: row ${k} has prediction ${p} and label ${t}; expected integers in [0, ${C})`,
      );
    keys[k] = p * C + t;
  }
  keys.sort();
  let distinct = 0;
  for (let k = 0; k < n; k++) if (k === 0 || keys[k] !== keys[k - 1]) distinct++;
  const pairs = new Int32Array(2 * distinct);
  let j = -2;
  for (let k = 0; k < n; k++) {
    if (k === 0 || keys[k] !== keys[k - 1]) {
      j += 2;
      pairs[j] = keys[k]!;
    }
    pairs[j + 1]!++;
  }
  return { classes: C, pairs };
}

/** The dense counts[pred * C + true] of a SparseConfusion, as float64 (what BBSE solves with) or into `out`. */
export function denseConfusion<T extends Float32Array | Float64Array = Float64Array>(
  s: SparseConfusion,
  out?: T,
): T {
  const C = s.classes;
  const counts = out ?? (new Float64Array(C * C) as T);
  if (counts.length !== C * C) throw new Error(`denseConfusion: ${counts.length} entries for ${C} classes`);
  counts.fill(0);
  for (let i = 0; i + 1 < s.pairs.length; i += 2) counts[s.pairs[i]!] = s.pairs[i + 1]!;
  return counts;
}
