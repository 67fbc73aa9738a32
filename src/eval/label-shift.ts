/**
 * The class prior of an unlabeled target set, estimated under label shift (p(x | y) fixed, p(y)
 * changed), and predictions adjusted to it.
 *
 * - EM (Saerens, Latinne, Decaestecker, "Adjusting the Outputs of a Classifier to New a Priori
 *   Probabilities: A Simple Procedure", Neural Computation 2002): maximum likelihood of the target
 *   prior from calibrated posteriors, by alternating the Bayes re-weighting of each posterior and
 *   the mean of the re-weighted posteriors.
 * - BBSE (Lipton, Wang, Smola, "Detecting and Correcting for Label Shift with Black Box
 *   Predictors", ICML 2018): solve C w = mu, C[i][j] = P_source(yhat = i, y = j) from the labeled
 *   validation split, mu[i] = P_target(yhat = i), w = q / p. A small validation split makes C
 *   noisy, so we solve the ridge problem regularised towards "no shift" (w = 1), as RLLS does
 *   (Azizzadenesheli, Liu, Yang, Anandkumar, "Regularized Learning for Domain Adaptation under
 *   Label Shifts", ICLR 2019): min ||C w - mu||^2 + lambda ||w - 1||^2, then clip w to >= 0 and
 *   renormalise q = w p.
 *
 * "Source prior" p is the prior the calibrated posteriors refer to: the class mix of the split
 * the temperature was fitted on (the validation split), not the training counts; the
 * adjustment adds log q - log p to the calibrated logits z / T.
 */
import { ConfigError } from '../errors.ts';
import { solveLinear } from './linear-solve.ts';

/** softmax(z / T + b) of each row, in f64 (b: BCTS's per-class biases, or none). logits [n, C] -> [n, C]. */
export function softmaxRows(
  logits: ArrayLike<number>,
  n: number,
  C: number,
  T = 1,
  bias: ArrayLike<number> | null = null,
): Float64Array {
  const out = new Float64Array(n * C);
  for (let i = 0; i < n; i++) {
    const o = i * C;
    let m = -Infinity;
    for (let c = 0; c < C; c++) m = Math.max(m, logits[o + c]! / T + (bias ? bias[c]! : 0));
    let s = 0;
    for (let c = 0; c < C; c++) {
      const e = Math.exp(logits[o + c]! / T + (bias ? bias[c]! : 0) - m);
      out[o + c] = e;
      s += e;
    }
    for (let c = 0; c < C; c++) out[o + c]! /= s;
  }
  return out;
}

/** Class frequencies of labels (sums to 1). */
export function labelPrior(labels: ArrayLike<number>, C: number): number[] {
  const p = new Array<number>(C).fill(0);
  for (let i = 0; i < labels.length; i++) p[labels[i]!]! += 1 / labels.length;
  return p;
}

/** Total-variation distance: half the L1 distance of two priors. */
export function tvDistance(a: readonly number[], b: readonly number[]): number {
  let s = 0;
  for (let c = 0; c < a.length; c++) s += Math.abs(a[c]! - b[c]!);
  return s / 2;
}

export interface PriorEstimate {
  prior: number[];
  /** EM iterations, or 1 for BBSE's one solve. */
  iterations: number;
}

/**
 * One EM step from prior q: the mean of the posteriors re-weighted by w = q / p, and the
 * log-likelihood of q, sum_i log sum_c probs[i][c] w[c] (the same pass computes both). With row
 * weights r_i both are weighted: a row of weight 2 counts as that row twice.
 */
function emStep(
  probs: Float64Array,
  n: number,
  C: number,
  sourcePrior: readonly number[],
  q: readonly number[],
  rowWeights: ArrayLike<number> | null,
): { next: number[]; logLik: number } {
  const w = new Float64Array(C);
  for (let c = 0; c < C; c++) w[c] = sourcePrior[c]! > 0 ? q[c]! / sourcePrior[c]! : 0;
  const acc = new Float64Array(C);
  let logLik = 0;
  for (let i = 0; i < n; i++) {
    const r = rowWeights ? rowWeights[i]! : 1;
    if (r === 0) continue;
    const o = i * C;
    let s = 0;
    for (let c = 0; c < C; c++) s += probs[o + c]! * w[c]!;
    if (!(s > 0)) continue;
    logLik += r * Math.log(s);
    const inv = r / s;
    for (let c = 0; c < C; c++) acc[c]! += probs[o + c]! * w[c]! * inv;
  }
  let total = 0;
  for (let c = 0; c < C; c++) total += acc[c]!;
  return { next: Array.from(acc, (v) => v / total), logLik };
}

const maxChange = (a: readonly number[], b: readonly number[]) =>
  a.reduce((m, v, c) => Math.max(m, Math.abs(v - b[c]!)), 0);

/**
 * EM estimate of the target prior from calibrated posteriors probs [n, C] (rows sum to 1) that
 * refer to `sourcePrior`. Stops when an EM step moves no class's prior by more than `tol`.
 *
 * Plain EM converges linearly, and slowly when the likelihood is flat or a class's prior heads for
 * 0 (on the demo's shifted test sets, hundreds to thousands of steps: docs/benchmarks.md). The
 * steps are therefore accelerated with SQUAREM (Varadhan and Roland, "Simple and Globally Convergent
 * Methods for Accelerating the Convergence of Any EM Algorithm", Scand. J. Statist. 2008, scheme
 * S3): from q0, two EM steps q1, q2 give r = q1 - q0 and v = q2 - 2 q1 + q0, and the extrapolation
 * q0 - 2 a r + a^2 v with a = -|r| / |v| (at most -1) is taken when it is a valid prior whose
 * likelihood is not below q0's; otherwise a is halved towards -1, where the extrapolation is q2
 * itself (plain EM, whose likelihood never falls). Each accepted point is followed by one EM step.
 * The fixed point is EM's; `iterations` counts EM steps.
 *
 * `weights` (one a row, >= 0, default 1) make the target a weighted set of rows: the live report
 * estimates the prior of its test rows re-weighted to a target prior this way.
 */
export function emPrior(
  probs: Float64Array,
  n: number,
  C: number,
  sourcePrior: readonly number[],
  opts: { tol?: number; maxIter?: number; weights?: ArrayLike<number> } = {},
): PriorEstimate {
  if (n === 0) throw new ConfigError('EM prior estimation needs at least one image');
  const weights = opts.weights ?? null;
  if (weights && weights.length !== n) throw new Error(`emPrior: ${weights.length} weights for ${n} rows`);
  const tol = opts.tol ?? 1e-12;
  const maxIter = opts.maxIter ?? 10000;
  let q0 = [...sourcePrior];
  let it = 0;
  const step = (q: readonly number[]) => {
    it++;
    return emStep(probs, n, C, sourcePrior, q, weights);
  };
  while (it < maxIter) {
    const s1 = step(q0);
    const q1 = s1.next;
    if (maxChange(q1, q0) < tol || it >= maxIter) return { prior: q1, iterations: it };
    const q2 = step(q1).next;
    if (maxChange(q2, q1) < tol || it >= maxIter) return { prior: q2, iterations: it };
    let rr = 0;
    let vv = 0;
    for (let c = 0; c < C; c++) {
      const r = q1[c]! - q0[c]!;
      const v = q2[c]! - 2 * q1[c]! + q0[c]!;
      rr += r * r;
      vv += v * v;
    }
    let a = vv > 0 ? Math.min(-Math.sqrt(rr / vv), -1) : -1;
    let next = q2;
    while (a < -1) {
      const cand = q0.map((v0, c) => v0 - 2 * a * (q1[c]! - v0) + a * a * (q2[c]! - 2 * q1[c]! + v0));
      const sum = cand.reduce((t, v) => t + v, 0);
      // A class at 0 (no source prior, so no weight) stays at 0; every other must stay above it.
      if (cand.every((v, c) => Number.isFinite(v) && (v > 0 || (v === 0 && q0[c] === 0)))) {
        const prior = cand.map((v) => v / sum);
        const e = step(prior);
        if (e.logLik >= s1.logLik) {
          next = e.next; // the EM step after the accepted extrapolation
          break;
        }
      }
      a = (a - 1) / 2;
      if (a > -1 - 1e-3) a = -1;
    }
    q0 = next;
  }
  return { prior: q0, iterations: it };
}

/**
 * BBSE estimate of the target prior from hard predictions. `valPred`/`valLabels`: the labeled
 * source (validation) split; `targetPred`: the unlabeled target set.
 */
export function bbsePrior(
  valPred: ArrayLike<number>,
  valLabels: ArrayLike<number>,
  targetPred: ArrayLike<number>,
  C: number,
  opts: { lambda?: number; weights?: ArrayLike<number> } = {},
): PriorEstimate & { lambda: number } {
  if (valLabels.length === 0) throw new ConfigError('BBSE needs a validation split with images');
  return bbsePriorFromCounts(validationConfusion(valPred, valLabels, C), targetPred, C, opts);
}

/** Validation counts[pred * C + true] (f64), what BBSE needs of the validation split (kept with a deployed head). */
export function validationConfusion(
  valPred: ArrayLike<number>,
  valLabels: ArrayLike<number>,
  C: number,
): Float64Array {
  const counts = new Float64Array(C * C);
  for (let k = 0; k < valLabels.length; k++) counts[valPred[k]! * C + valLabels[k]!]! += 1;
  return counts;
}

/**
 * BBSE from validation counts[pred * C + true]. `lambda` defaults to trace(C^T C) / n_val, i.e.
 * a ridge of 1 / (validation images per class) relative to the mean diagonal of C^T C: it
 * vanishes as the validation split grows. `weights` (one a target row, >= 0, default 1): the
 * target's prediction shares mu are weighted, as emPrior's rows.
 */
export function bbsePriorFromCounts(
  counts: ArrayLike<number>,
  targetPred: ArrayLike<number>,
  C: number,
  opts: { lambda?: number; weights?: ArrayLike<number> } = {},
): PriorEstimate & { lambda: number } {
  let nv = 0;
  for (let k = 0; k < C * C; k++) nv += counts[k]!;
  if (nv === 0) throw new ConfigError('BBSE needs a validation split with images');
  if (targetPred.length === 0) throw new ConfigError('BBSE needs at least one target image');
  const Cm = Float64Array.from({ length: C * C }, (_, k) => counts[k]! / nv); // Cm[i][j] = P(yhat = i, y = j)
  const p = new Array<number>(C).fill(0);
  for (let i = 0; i < C; i++) for (let j = 0; j < C; j++) p[j]! += Cm[i * C + j]!;
  const mu = new Float64Array(C);
  const tw = opts.weights ?? null;
  if (tw && tw.length !== targetPred.length)
    throw new Error(`bbsePrior: ${tw.length} weights for ${targetPred.length} target rows`);
  let wsum = 0;
  for (let k = 0; k < targetPred.length; k++) wsum += tw ? tw[k]! : 1;
  if (!(wsum > 0)) throw new ConfigError('BBSE needs at least one target image of positive weight');
  for (let k = 0; k < targetPred.length; k++) mu[targetPred[k]!]! += (tw ? tw[k]! : 1) / wsum;
  // Normal equations of min ||Cm w - mu||^2 + lambda ||w - 1||^2 in d = w - 1:
  // (Cm^T Cm + lambda I) d = Cm^T (mu - Cm 1).
  const CtC = new Float64Array(C * C);
  for (let a = 0; a < C; a++)
    for (let b = 0; b < C; b++) {
      let s = 0;
      for (let i = 0; i < C; i++) s += Cm[i * C + a]! * Cm[i * C + b]!;
      CtC[a * C + b] = s;
    }
  let trace = 0;
  for (let a = 0; a < C; a++) trace += CtC[a * C + a]!;
  const lambda = opts.lambda ?? trace / nv;
  for (let a = 0; a < C; a++) CtC[a * C + a]! += lambda;
  const r = new Float64Array(C); // mu - Cm 1 (= mu - P(yhat))
  for (let i = 0; i < C; i++) {
    let s = 0;
    for (let j = 0; j < C; j++) s += Cm[i * C + j]!;
    r[i] = mu[i]! - s;
  }
  const rhs = new Float64Array(C);
  for (let a = 0; a < C; a++) {
    let s = 0;
    for (let i = 0; i < C; i++) s += Cm[i * C + a]! * r[i]!;
    rhs[a] = s;
  }
  const d = solveLinear(CtC, rhs, C);
  const q = Array.from(d, (v, j) => Math.max(0, 1 + v) * p[j]!);
  const total = q.reduce((x, y) => x + y, 0);
  // Every weight clipped to 0 (never seen in practice): fall back to the source prior.
  return { prior: total > 0 ? q.map((v) => v / total) : [...p], iterations: 1, lambda };
}

/**
 * The column shift log q - log p + b that turns calibrated scores z / T into scores under the
 * target prior q (b: BCTS's biases, if any). A class with q = 0 gets -Infinity.
 */
export function priorShift(
  target: readonly number[],
  source: readonly number[],
  bias: ArrayLike<number> | null = null,
): number[] {
  return target.map((q, c) => Math.log(q) - Math.log(source[c]!) + (bias ? bias[c]! : 0));
}

/**
 * Argmax of z / T + b + log q - log p for each row: the Bayes-optimal prediction under the target
 * prior q for posteriors calibrated (temperature T, BCTS biases b if any) to the source prior p.
 * A class with q = 0 is never predicted.
 */
export function adjustedPredictions(
  logits: ArrayLike<number>,
  n: number,
  C: number,
  T: number,
  target: readonly number[],
  source: readonly number[],
  bias: ArrayLike<number> | null = null,
): Int32Array {
  const shift = priorShift(target, source, bias);
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const o = i * C;
    let best = 0;
    let bv = -Infinity;
    for (let c = 0; c < C; c++) {
      const v = logits[o + c]! / T + shift[c]!;
      if (v > bv) {
        bv = v;
        best = c;
      }
    }
    out[i] = best;
  }
  return out;
}
