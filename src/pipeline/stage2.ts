/**
 * Stage 2 on a FeatureSet: build each asked method, evaluate it on the test set, and collect
 * the paper's table plus everything the report draws (per-class accuracy, weight norms, the tau
 * sweep, confusion matrices, calibration).
 */
import { closeSync, mkdtempSync, openSync, readSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { specLogits } from '../classifiers/linear-ops.ts';
import { createClassifier, type MethodName, methodEntry } from '../classifiers/registry.ts';
import { logitSession } from '../classifiers/sharded/logit-threads.ts';
import type {
  FeatureTransform,
  FoldedLinear,
  LinearLogits,
  Stage2Classifier,
  Stage2Context,
  TunedParam,
} from '../classifiers/types.ts';
import { ConfigError } from '../errors.ts';
import {
  calibrationAccumulator,
  type DeployCalibration,
  fitBcts,
  fitTemperature,
  type LogitBlocks,
  sparseConfusion,
} from '../eval/calibration.ts';
import {
  adjustedPredictions,
  bbsePrior,
  emPrior,
  labelPrior,
  softmaxRows,
  tvDistance,
} from '../eval/label-shift.ts';
import {
  BLOCK_FLOATS,
  defaultChunkRows,
  evaluateLogitBlocks,
  LogitRows,
  recallSummary,
  splitAccuracies,
} from '../eval/metrics.ts';
import { priorName, SHIFTED_PRIORS, shiftedPrior, shiftedTestIndices } from '../eval/shifted-priors.ts';
import type { ShotThresholds } from '../eval/shot-splits.ts';
import { type FeatureSet, type FeatureSplit, featureRows } from '../features/feature-set.ts';

const pct = (v: number | null) => (v === null ? null : Math.round(v * 10000) / 100);

export interface MethodResult {
  method: MethodName;
  label: string;
  /** Percent, two decimals; null for an absent split. */
  overall: number;
  many: number | null;
  medium: number | null;
  few: number | null;
  macroF1: number;
  ece: number;
  /** Validation overall accuracy in percent, when there is a validation set. */
  valOverall: number | null;
  perClass: (number | null)[];
  /** Test precision of each class; null when never predicted. */
  perClassPrecision: (number | null)[];
  /** [true][predicted] test counts; [] above CONFUSION_MAX_CLASSES (200) classes. */
  confusion: number[][];
  /** The most frequent test errors (eval/metrics.ts: confusedPairs). */
  confusedPairs: { true: number; predicted: number; count: number; share: number }[];
  weightNorms: number[];
  /** The parameter a method chose on validation (tau-norm's tau, ...) and its sweep; null for the others. */
  tuned: TunedParam | null;
  /**
   * The same classifier on test sets re-sampled to shifted class priors (forward / backward long
   * tails, ratios 2, 10, 50; eval/shifted-priors.ts): test-agnostic, the method does not know
   * the prior. `knownPrior`: overall accuracy with log p_target added to the logits (the
   * known-prior correction of PC softmax / LADE), in percent.
   */
  shifted: ShiftedResult[];
  /** Temperature scaling and its effect (eval/calibration.ts); absent in results written before it. */
  calibration?: CalibrationResult;
  /** Test metrics the long-tail literature reports beside top-1 (fractions; NLL of the calibrated scores). */
  recall?: { worstClass: number | null; hmeanRecall: number | null; gmeanRecall: number | null; nll: number };
  /** Trained methods: `features` (cached) or `augmented` (through the frozen backbone); null for the others. */
  mode: 'features' | 'augmented' | null;
  seconds: number;
  details: Record<string, unknown>;
}

export interface ShiftedResult {
  prior: string;
  ratio: number;
  direction: 'forward' | 'backward' | 'uniform';
  /** Images in the re-sampled test set, and the seed of the draw. */
  n: number;
  seed: number;
  overall: number;
  many: number | null;
  medium: number | null;
  few: number | null;
  knownPrior: number;
  /**
   * Accuracy (percent) of the calibrated scores z / T + b with no prior adjustment: the deployed
   * head as is, the baseline of what `predict --adapt-prior` adds (`overall` is the raw head's).
   * null without calibration; absent in results written before it.
   */
  calibrated?: number | null;
  /**
   * Accuracy (percent) with the prior estimated from the set's own unlabeled images by EM
   * (Saerens et al. 2002) and by BBSE (Lipton et al. 2018), and each estimate's total-variation
   * distance to the set's true prior; null where not estimated (see calibration.note).
   */
  em?: number | null;
  bbse?: number | null;
  emTv?: number | null;
  bbseTv?: number | null;
}

export type CalibrateMode = 'none' | 'temperature' | 'bcts';

/**
 * Validation images a class BCTS needs on average before it is the default. Its C + 1 parameters
 * are fitted by L-BFGS over the whole validation split: with a few images a class the biases
 * fit noise, and at many classes the fit is slow (every iteration is a pass over [n, C] validation
 * logits; docs/benchmarks.md); a temperature is then the better default.
 */
export const BCTS_MIN_VAL_PER_CLASS = 10;

/** The calibration when none is asked for: none without validation, BCTS with enough of it, else a temperature. */
export function defaultCalibrate(valImages: number, classes: number): CalibrateMode {
  if (valImages === 0) return 'none';
  return valImages >= BCTS_MIN_VAL_PER_CLASS * classes ? 'bcts' : 'temperature';
}

export interface CalibrationResult {
  /**
   * `temperature`: softmax(z / T) with T fitted on validation; `bcts`: softmax(z / T + b) with T
   * and a bias per class fitted on validation; `none`: T = 1.
   */
  method: CalibrateMode;
  temperature: number;
  /** BCTS's per-class biases (4 decimals); absent for the other modes. */
  bias?: number[];
  /** Validation NLL at T = 1 and at the fit (null without a validation split). */
  valNllBefore: number | null;
  valNllAfter: number | null;
  /** BCTS: validation NLL of temperature scaling alone, its starting point. */
  valNllTemperature?: number;
  /** Test top-1 (fraction) of the calibrated scores: BCTS's biases can move the argmax, unlike T. */
  accuracyAfter?: number;
  /** Test ECE (15 bins) and NLL before (T = 1) and after calibration. */
  eceBefore: number;
  eceAfter: number;
  nllBefore: number;
  nllAfter: number;
  /** The prior the calibrated scores refer to, the one the prior corrections divide out. */
  sourcePrior: 'validation' | 'uniform';
  /** Why a quantity is not meaningful for this method (NCM without calibration), else null. */
  notApplicable: string | null;
  /** What was not estimated and why (no validation split for BBSE, too many rows or classes), else null. */
  note: string | null;
}

/** Options of the prior corrections on shifted sets (defaults: T = 1, uniform source prior, no estimation). */
export interface ShiftedOptions {
  temperature?: number;
  /** BCTS's per-class biases, added after z / T; the estimators then also use the calibrated argmax. */
  bias?: readonly number[] | null;
  sourcePrior?: readonly number[];
  /** Report each set's accuracy of the calibrated scores (`ShiftedResult.calibrated`): true when T (and b) were fitted, false for null. */
  calibrated?: boolean;
  /** Estimate the prior by EM (and BBSE when `val` is given) on each set. */
  estimate?: boolean;
  /** The validation split's plain predictions and labels, for BBSE. */
  val?: { pred: Int32Array; labels: Int32Array } | null;
}

/** Floats of kept shifted-set logits above which EM / BBSE are skipped (with a note). */
export const ESTIMATION_MAX_FLOATS = 4 * BLOCK_FLOATS;
/** Classes above which BBSE's C x C solve is skipped (O(C^3)). */
export const BBSE_MAX_CLASSES = 2000;

/**
 * The shifted-prior evaluation of one classifier, fed the test logits block by block (rows in
 * order): each shifted set is a list of test indices, never a copy of logits. The plain accuracy
 * reuses each row's argmax (LogitRows); the known-prior one takes the argmax of z + log p_target
 * (in f32, as logits are) for the rows of the set only.
 */
export class ShiftedEvaluator {
  private readonly sets: {
    prior: (typeof SHIFTED_PRIORS)[number];
    idx: Int32Array;
    logPrior: number[];
    knownPred: Int32Array;
    /** The argmax of the calibrated scores (BBSE's black box) when there are biases; else the raw one is used. */
    calPred: Int32Array | null;
    /** The set's rows' logits [idx.length, C], kept for EM / BBSE. */
    kept: Float32Array | null;
    next: number;
  }[];
  private readonly T: number;
  private readonly bias: number[] | null;
  private readonly source: number[];
  /** Why EM / BBSE were not run, if they were asked for. */
  readonly note: string | null;

  constructor(
    private readonly fs: Pick<FeatureSet, 'numClasses' | 'trainCounts' | 'test'>,
    private readonly seed: number,
    private readonly opts: ShiftedOptions = {},
  ) {
    const C = fs.numClasses;
    this.T = opts.temperature ?? 1;
    this.bias = opts.bias ? [...opts.bias] : null;
    this.source = opts.sourcePrior ? [...opts.sourcePrior] : new Array<number>(C).fill(1 / C);
    const uniformSource = this.source.every((v) => v === this.source[0]);
    const labels = fs.test.labels;
    const counts = new Array<number>(C).fill(0);
    for (const l of labels) counts[l]!++;
    const perClass = Math.min(...counts);
    // A class absent from the test set: no shifted sets.
    this.sets =
      perClass === 0
        ? []
        : SHIFTED_PRIORS.filter((p) => p.direction !== 'uniform').map((prior) => {
            const idx = shiftedTestIndices(labels, fs.trainCounts, prior, seed);
            const target = shiftedPrior(fs.trainCounts, perClass, prior);
            return {
              prior,
              idx,
              // log q - log p (+ b); with a uniform source the constant is left out (same argmax).
              logPrior: target.map(
                (q, c) =>
                  Math.log(q) -
                  (uniformSource ? 0 : Math.log(this.source[c]!)) +
                  (this.bias ? this.bias[c]! : 0),
              ),
              knownPred: new Int32Array(idx.length),
              calPred: this.bias ? new Int32Array(idx.length) : null,
              kept: null as Float32Array | null,
              next: 0,
            };
          });
    const keptFloats = this.sets.reduce((a, st) => a + st.idx.length * C, 0);
    const estimate = opts.estimate === true && this.sets.length > 0;
    this.note = !estimate
      ? null
      : keptFloats > ESTIMATION_MAX_FLOATS
        ? `EM and BBSE skipped: the shifted sets hold ${keptFloats} logits, above ${ESTIMATION_MAX_FLOATS}`
        : null;
    if (estimate && this.note === null)
      for (const st of this.sets) st.kept = new Float32Array(st.idx.length * C);
  }

  /** Test logits [m, C] of rows [start, start + m), blocks in order. */
  add(logits: Float32Array, start: number, m: number): void {
    const C = this.fs.numClasses;
    for (const set of this.sets) {
      const { idx, logPrior, knownPred, calPred, kept } = set;
      const invT = 1 / this.T;
      const b = this.bias;
      while (set.next < idx.length && idx[set.next]! < start + m) {
        const o = (idx[set.next]! - start) * C;
        kept?.set(logits.subarray(o, o + C), set.next * C);
        let best = 0;
        let bv = Math.fround(logits[o]! * invT + logPrior[0]!);
        for (let c = 1; c < C; c++) {
          const v = Math.fround(logits[o + c]! * invT + logPrior[c]!);
          if (v > bv) {
            bv = v;
            best = c;
          }
        }
        if (calPred && b) {
          let cb = 0;
          let cv = logits[o]! * invT + b[0]!;
          for (let c = 1; c < C; c++) {
            const v = logits[o + c]! * invT + b[c]!;
            if (v > cv) {
              cv = v;
              cb = c;
            }
          }
          calPred[set.next] = cb;
        }
        knownPred[set.next++] = best;
      }
    }
  }

  /** The results, once every test row was added; `rows` holds every test row's argmax. */
  results(rows: LogitRows, thresholds?: ShotThresholds): ShiftedResult[] {
    const C = this.fs.numClasses;
    const labels = this.fs.test.labels;
    const acc = (pred: Int32Array, lab: Int32Array) => {
      let h = 0;
      for (let k = 0; k < lab.length; k++) if (pred[k] === lab[k]) h++;
      return pct(h / lab.length)!;
    };
    return this.sets.map(({ prior: p, idx, knownPred, calPred, kept, next }) => {
      if (next !== idx.length) throw new Error(`shifted evaluation: ${next} of ${idx.length} rows seen`);
      const subLabels = Int32Array.from(idx, (i) => labels[i]!);
      const subPred = Int32Array.from(idx, (i) => rows.pred[i]!);
      const e = splitAccuracies(subPred, subLabels, C, this.fs.trainCounts, thresholds);
      let correct = 0;
      for (let k = 0; k < idx.length; k++) if (knownPred[k] === subLabels[k]) correct++;
      const est: Pick<ShiftedResult, 'calibrated' | 'em' | 'bbse' | 'emTv' | 'bbseTv'> = {};
      // Without biases the calibrated argmax is the raw one (z / T keeps the order).
      if (this.opts.calibrated !== undefined)
        est.calibrated = this.opts.calibrated ? acc(calPred ?? subPred, subLabels) : null;
      if (kept) {
        const n = idx.length;
        const truth = labelPrior(subLabels, C);
        const em = emPrior(softmaxRows(kept, n, C, this.T, this.bias), n, C, this.source).prior;
        est.em = acc(adjustedPredictions(kept, n, C, this.T, em, this.source, this.bias), subLabels);
        est.emTv = Math.round(tvDistance(em, truth) * 1e4) / 1e4;
        const val = this.opts.val;
        if (val && C <= BBSE_MAX_CLASSES) {
          const bb = bbsePrior(val.pred, val.labels, calPred ?? subPred, C).prior;
          est.bbse = acc(adjustedPredictions(kept, n, C, this.T, bb, this.source, this.bias), subLabels);
          est.bbseTv = Math.round(tvDistance(bb, truth) * 1e4) / 1e4;
        } else {
          est.bbse = null;
          est.bbseTv = null;
        }
      }
      return {
        prior: priorName(p),
        ratio: p.ratio,
        direction: p.direction,
        n: idx.length,
        seed: this.seed,
        overall: pct(e.overall)!,
        many: pct(e.many),
        medium: pct(e.medium),
        few: pct(e.few),
        knownPrior: pct(correct / idx.length)!,
        ...est,
      };
    });
  }
}

/** Evaluates test logits [n, C] on every shifted test prior (uniform excluded: it is the main result). */
export function evaluateShifted(
  logits: Float32Array,
  fs: FeatureSet,
  seed: number,
  thresholds?: ShotThresholds,
): ShiftedResult[] {
  const n = fs.test.labels.length;
  const rows = new LogitRows(n, fs.numClasses);
  rows.add(logits, n);
  const sh = new ShiftedEvaluator(fs, seed);
  sh.add(logits, 0, n);
  return sh.results(rows, thresholds);
}

export interface Stage2Options {
  /**
   * Methods' settings as flat keys of the stage-2 configuration (`crtEpochs`, `tau`, ...), and
   * `methodOptions: { name: { ... } }` for any method; each method takes its own, validated.
   */
  settings?: Record<string, unknown>;
  /** Each method's options already parsed by its schema (the pipeline's plan); `settings` are then not read. */
  options?: ReadonlyMap<MethodName, Record<string, unknown>>;
  thresholds?: ShotThresholds;
  /** Called after each method, e.g. to print a line. */
  onMethod?: (r: MethodResult) => void;
  /**
   * Rows evaluated at once (default: eval/metrics.ts defaultChunkRows(C, d), 8 MiB of logits or
   * features a block).
   */
  chunkRows?: number;
  /** Calibration (default: defaultCalibrate: bcts with 10+ validation images a class, temperature with fewer, none without). */
  calibrate?: CalibrateMode;
}

/** Why NCM's ECE and known-prior correction mean nothing without calibration (issue 27). */
export const NCM_UNCALIBRATED =
  "NCM's scores are negative distances, not logits: ECE and the known-prior correction need --calibrate temperature or bcts";

/**
 * Validation logits kept in memory for the temperature search up to `floats`; above, spilled to
 * a file (tests lower it to reach that path on tiny data).
 */
export const VALIDATION_CACHE = { floats: 4 * BLOCK_FLOATS };

/**
 * Logits [n, C] written block by block to a temporary file and read back by blocks: each step
 * of the temperature search (about 30) then costs a read from the page cache instead of the
 * validation set's whole matrix product, and no resident memory. The values are the very
 * float32 logits, so the fitted temperature is the same as recomputing them.
 */
class LogitSpill {
  private readonly dir: string;
  private readonly fd: number;
  private buf = new Float32Array(0);

  constructor(private readonly C: number) {
    this.dir = mkdtempSync(join(tmpdir(), 'longtail-val-logits-'));
    try {
      this.fd = openSync(join(this.dir, 'logits.f32'), 'w+');
    } catch (e) {
      rmSync(this.dir, { recursive: true, force: true });
      throw e;
    }
  }

  write(z: Float32Array, start: number, m: number): void {
    const n = m * this.C;
    const bytes = new Uint8Array(z.buffer, z.byteOffset, n * 4);
    for (let done = 0; done < bytes.length; )
      done += writeSync(this.fd, bytes, done, bytes.length - done, start * this.C * 4 + done);
  }

  /** Rows [start, start + m), valid until the next read. */
  read(start: number, m: number): Float32Array {
    const n = m * this.C;
    if (this.buf.length < n) this.buf = new Float32Array(n);
    const bytes = new Uint8Array(this.buf.buffer, 0, n * 4);
    for (let got = 0; got < bytes.length; ) {
      const k = readSync(this.fd, bytes, got, bytes.length - got, start * this.C * 4 + got);
      if (k === 0) throw new Error('validation logits: the temporary file ended early');
      got += k;
    }
    return this.buf.subarray(0, n);
  }

  close(): void {
    closeSync(this.fd);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A spill file for logits, or null where none can be made (the logits are then recomputed). */
function trySpill(C: number): LogitSpill | null {
  try {
    return new LogitSpill(C);
  } catch {
    return null;
  }
}

/**
 * Evaluates a classifier on the test set (and validation, if any), `chunkRows` rows of logits at a
 * time (the result does not depend on it). With `calibrate` = `temperature` a temperature, with
 * `bcts` (the default when there is a validation split) a temperature and a bias per class are
 * fitted on validation first; the prior corrections on the shifted sets then work on the
 * calibrated scores z / T + b, and EM / BBSE estimate each shifted set's prior from its own
 * images (BBSE's black box being the calibrated argmax, as in a deployed head).
 */
export function evaluateClassifier(
  clf: Stage2Classifier,
  ctx: Stage2Context,
  seconds: number,
  thresholds?: ShotThresholds,
  chunkRows?: number,
  calibrate?: CalibrateMode,
  deploy?: (d: DeployCalibration) => void,
): MethodResult {
  const fs = ctx.features;
  const d = fs.dim;
  const C = fs.numClasses;
  // The logits split over ctx.threads by rows, the weight packed once (the same bits as clf.logits).
  const session = clf.linear ? logitSession(clf.linear, C, d, ctx.threads ?? 1) : null;
  try {
    return evaluateWith(
      clf,
      ctx,
      (sp) => (s, m) => {
        const f = featureRows(sp, d, s, m);
        return session ? session.logits(f, m) : clf.logits(f, m); // [m, C]
      },
      seconds,
      thresholds,
      chunkRows,
      calibrate,
      deploy,
    );
  } finally {
    session?.close();
  }
}

function evaluateWith(
  clf: Stage2Classifier,
  ctx: Stage2Context,
  on: (sp: FeatureSplit) => (s: number, m: number) => Float32Array,
  seconds: number,
  thresholds?: ShotThresholds,
  chunkRows?: number,
  calibrate?: CalibrateMode,
  deploy?: (d: DeployCalibration) => void,
): MethodResult {
  const fs = ctx.features;
  const d = fs.dim;
  const C = fs.numClasses;
  // The block bounds both the logits [m, C] and the features a method copies or transforms [m, d].
  const step = chunkRows ?? defaultChunkRows(C, d);
  const blockOpts = { ...(thresholds ? { thresholds } : {}), chunkRows: step };
  const val = fs.val && fs.val.labels.length > 0 ? fs.val : null;
  const mode: CalibrateMode = calibrate ?? defaultCalibrate(val?.labels.length ?? 0, C);
  if (mode !== 'none' && !val)
    throw new ConfigError(
      `--calibrate ${mode} needs a validation split (this data has none); use --calibrate none`,
    );
  // Validation: accuracy and plain predictions (for BBSE), and its logits kept for the calibration
  // fit: in memory if small, else in a temporary file (recomputed only if no file can be made).
  const fitting = (mode === 'temperature' || mode === 'bcts') && val !== null;
  let valCache: Float32Array | null =
    fitting && val.labels.length * C <= VALIDATION_CACHE.floats
      ? new Float32Array(val.labels.length * C)
      : null;
  let spill = fitting && valCache === null ? trySpill(C) : null;
  let v: ReturnType<typeof evaluateLogitBlocks> | null = null;
  let tsFit: ReturnType<typeof fitTemperature> | null = null;
  let bcFit: ReturnType<typeof fitBcts> | null = null;
  let valPred: Int32Array | null = null;
  try {
    v = val
      ? evaluateLogitBlocks(on(val), val.labels, C, fs.trainCounts, {
          ...blockOpts,
          onBlock: (z, s, m) => {
            valCache?.set(z.subarray(0, m * C), s * C);
            spill?.write(z, s, m);
          },
        })
      : null;
    const valBlocks: LogitBlocks | null = val
      ? (visit) => {
          const n = val.labels.length;
          for (let s = 0; s < n; s += step) {
            const m = Math.min(step, n - s);
            visit(
              valCache ? valCache.subarray(s * C, (s + m) * C) : spill ? spill.read(s, m) : on(val)(s, m),
              s,
              m,
            );
          }
        }
      : null;
    tsFit = mode === 'temperature' && valBlocks && val ? fitTemperature(valBlocks, val.labels, C) : null;
    bcFit = mode === 'bcts' && valBlocks && val ? fitBcts(valBlocks, val.labels, C) : null;
    // BBSE's black box is the calibrated argmax (the deployed head's): with biases it differs from the raw one.
    valPred = v?.rows.pred ?? null;
    const bc = bcFit;
    if (bc?.bias && valBlocks) {
      const Tb = bc.temperature;
      const bb = bc.bias;
      const vp = new Int32Array(val!.labels.length);
      valBlocks((z, s, m) => {
        for (let i = 0; i < m; i++) {
          let best = 0;
          for (let c = 1; c < C; c++)
            if (z[i * C + c]! / Tb + bb[c]! > z[i * C + best]! / Tb + bb[best]!) best = c;
          vp[s + i] = best;
        }
      });
      valPred = vp;
    }
  } finally {
    spill?.close();
    spill = null;
  }
  const fit = tsFit ?? bcFit;
  const T = fit?.temperature ?? 1;
  const bias = bcFit?.bias ?? null;
  valCache = null;
  const sourcePrior = val ? labelPrior(val.labels, C) : null;
  const shifted = new ShiftedEvaluator(fs, ctx.seed ?? 0, {
    temperature: T,
    bias,
    ...(sourcePrior ? { sourcePrior } : {}),
    estimate: true,
    calibrated: fit !== null,
    val: valPred && val ? { pred: valPred, labels: val.labels } : null,
  });
  const before = calibrationAccumulator(fs.test.labels, C, 1);
  const after = calibrationAccumulator(fs.test.labels, C, T, bias);
  const test = evaluateLogitBlocks(on(fs.test), fs.test.labels, C, fs.trainCounts, {
    ...blockOpts,
    onBlock: (z, s, m) => {
      shifted.add(z, s, m);
      before.add(z, s, m);
      if (T !== 1 || bias) after.add(z, s, m);
    },
  });
  const e = test.evaluation;
  const cb = before.result();
  const ca = T !== 1 || bias ? after.result() : cb;
  const method = clf.method;
  const r4 = (x: number) => Math.round(x * 10000) / 10000;
  const notes = [
    shifted.note,
    !val
      ? 'BBSE skipped: no validation split'
      : C > BBSE_MAX_CLASSES
        ? `BBSE skipped: above ${BBSE_MAX_CLASSES} classes`
        : null,
  ].filter((x): x is string => x !== null);
  const calibration: CalibrationResult = {
    method: mode,
    temperature: T,
    ...(bias ? { bias: bias.map(r4) } : {}),
    valNllBefore: fit ? r4(fit.nllBefore) : null,
    valNllAfter: fit ? r4(fit.nllAfter) : null,
    ...(bcFit ? { valNllTemperature: r4(bcFit.nllTemperature) } : {}),
    accuracyAfter: r4(ca.accuracy),
    eceBefore: r4(cb.ece),
    eceAfter: r4(ca.ece),
    nllBefore: r4(cb.nll),
    nllAfter: r4(ca.nll),
    sourcePrior: sourcePrior ? 'validation' : 'uniform',
    notApplicable: mode === 'none' && method === 'ncm' ? NCM_UNCALIBRATED : null,
    note: notes.length > 0 ? notes.join('; ') : null,
  };
  deploy?.({
    temperature: T,
    bias,
    sourcePrior,
    valConfusion: valPred && val && C <= BBSE_MAX_CLASSES ? sparseConfusion(valPred, val.labels, C) : null,
  });
  const rs = recallSummary(e.perClass);
  const clfMode = (clf.details.mode as MethodResult['mode']) ?? null;
  return {
    method,
    label: methodEntry(method).label,
    overall: pct(e.overall)!,
    many: pct(e.many),
    medium: pct(e.medium),
    few: pct(e.few),
    macroF1: r4(e.macroF1),
    ece: r4(e.ece),
    valOverall: v ? pct(v.evaluation.overall) : null,
    perClass: e.perClass,
    perClassPrecision: e.perClassPrecision,
    confusion: e.confusion,
    confusedPairs: e.confusedPairs,
    weightNorms: clf.weightNorms(),
    tuned: clf.tuned ?? null,
    shifted: shifted.results(test.rows, thresholds),
    calibration,
    recall: {
      worstClass: rs.worstClass === null ? null : r4(rs.worstClass),
      hmeanRecall: rs.hmeanRecall === null ? null : r4(rs.hmeanRecall),
      gmeanRecall: rs.gmeanRecall === null ? null : r4(rs.gmeanRecall),
      nll: r4(ca.nll),
    },
    mode: clfMode,
    seconds: Math.round(seconds * 100) / 100,
    details: clf.details,
  };
}

export interface Stage2Output {
  results: MethodResult[];
  classifiers: Map<MethodName, Stage2Classifier>;
  calibrations: Map<MethodName, DeployCalibration>;
  /**
   * Removes the temporary file of parked classifiers (Stage2Options.park); their arrays can no
   * longer be read after it. A no-op without parking.
   */
  release(): void;
}

/** Arrays of at least `minFloats` are parked (tests lower it to reach the file on tiny data). */
export const PARKING = { minFloats: 1 << 18 };

/**
 * A temporary file holding the large arrays (weights, [C, d]) of the classifiers a run keeps for
 * classifiers.npz and the report. Each method's classifier waits there from the end of its
 * evaluation to the run's end, instead of in memory beside the later methods' training, where
 * the run's memory peaks (8 MiB a method at 1,000 x 2,048; docs/benchmarks.md). Read back as the
 * very float32 values, on each use.
 */
export class ClassifierPark {
  private readonly dir: string;
  private readonly fd: number;
  private end = 0;
  private closed = false;

  constructor() {
    this.dir = mkdtempSync(join(tmpdir(), 'longtail-classifiers-'));
    try {
      this.fd = openSync(join(this.dir, 'arrays.f32'), 'w+');
    } catch (e) {
      rmSync(this.dir, { recursive: true, force: true });
      throw e;
    }
  }

  /** Writes `a` and returns a reader of a fresh copy of it. */
  put(a: Float32Array): () => Float32Array {
    const at = this.end;
    const n = a.length;
    const bytes = new Uint8Array(a.buffer, a.byteOffset, n * 4);
    for (let done = 0; done < bytes.length; )
      done += writeSync(this.fd, bytes, done, bytes.length - done, at + done);
    this.end += n * 4;
    return () => {
      if (this.closed) throw new Error('stage 2: a parked classifier was read after its release');
      const out = new Float32Array(n);
      const b = new Uint8Array(out.buffer);
      for (let got = 0; got < b.length; ) {
        const k = readSync(this.fd, b, got, b.length - got, at + got);
        if (k === 0) throw new Error('stage 2: the parked classifiers file ended early');
        got += k;
      }
      return out;
    };
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    closeSync(this.fd);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A reader of `v` made outside any other function's scope, so that it holds `v` and nothing else. */
const constant =
  <T>(v: T): (() => T) =>
  () =>
    v;

/** A reader of `a`: from `park` (written once per array), or `a` itself when kept or small. */
function parkArray(
  a: Float32Array,
  park: ClassifierPark,
  keep: ReadonlySet<Float32Array>,
  readers: Map<Float32Array, () => Float32Array>,
): () => Float32Array {
  if (a.length < PARKING.minFloats || keep.has(a)) return constant(a);
  let r = readers.get(a);
  if (!r) {
    r = park.put(a);
    readers.set(a, r);
  }
  return r;
}

/** A reader of a transform whose mean, if any, is read by `mean`. */
function transformReader(t: FeatureTransform, mean: (() => Float32Array) | null): () => FeatureTransform {
  if (t.kind !== 'cl2n' || mean === null) return constant(t);
  return () => ({ kind: 'cl2n', mean: mean() });
}

interface ParkedArrays {
  transform: () => FeatureTransform;
  weight: () => Float32Array;
  bias: () => Float32Array | null;
}

/**
 * The classifier seen through its readers. Made in a scope of its own: a closure keeps every
 * variable its enclosing functions' closures use, so built inside parkClassifier these methods
 * kept the original arrays alive (about 8 MiB a method at 1000 x 2048) and parking saved nothing.
 */
function parkedView(
  head: Pick<Stage2Classifier, 'method' | 'numClasses' | 'dim' | 'tuned' | 'details'>,
  linear: ParkedArrays & { sqDistance: (() => Float32Array | null) | null },
  folded: Omit<ParkedArrays, 'bias'> & { bias: () => Float32Array },
  distance: FoldedLinear['distance'],
  norms: readonly number[],
): Stage2Classifier {
  const readLinear = (): LinearLogits => ({
    transform: linear.transform(),
    weight: linear.weight(),
    bias: linear.bias(),
    ...(linear.sqDistance !== null ? { sqDistance: linear.sqDistance() } : {}),
  });
  const C = head.numClasses;
  const d = head.dim;
  return {
    method: head.method,
    numClasses: C,
    dim: d,
    logits: (x, n) => specLogits(readLinear(), x, n, d, C),
    get linear() {
      return readLinear();
    },
    weightNorms: () => [...norms],
    folded: (): FoldedLinear => ({
      transform: folded.transform(),
      weight: folded.weight(),
      bias: folded.bias(),
      ...(distance ? { distance } : {}),
    }),
    ...(head.tuned ? { tuned: head.tuned } : {}),
    details: head.details,
  };
}

/**
 * `clf` with its large arrays in `park`: the same logits (from its `linear` data, which by
 * contract gives its logits), folded layer and weight norms, read back on each use. Arrays in
 * `keep` (the FeatureSet's own classifier, which stays in memory anyway) and small ones stay.
 * A classifier without `linear` is returned as it is. The closures made here end with the call
 * (what outlives it is made by the functions above: see parkedView).
 */
export function parkClassifier(
  clf: Stage2Classifier,
  park: ClassifierPark,
  keep: ReadonlySet<Float32Array>,
  norms: number[],
): Stage2Classifier {
  const lin = clf.linear;
  if (!lin) return clf;
  const readers = new Map<Float32Array, () => Float32Array>();
  const f = clf.folded();
  const meanOf = (t: FeatureTransform) => (t.kind === 'cl2n' ? parkArray(t.mean, park, keep, readers) : null);
  const orNull = (a: Float32Array | null | undefined) =>
    a ? parkArray(a, park, keep, readers) : constant(null);
  return parkedView(
    clf,
    {
      transform: transformReader(lin.transform, meanOf(lin.transform)),
      weight: parkArray(lin.weight, park, keep, readers),
      bias: orNull(lin.bias),
      sqDistance: lin.sqDistance !== undefined ? orNull(lin.sqDistance) : null,
    },
    {
      transform: transformReader(f.transform, meanOf(f.transform)),
      weight: parkArray(f.weight, park, keep, readers),
      bias: parkArray(f.bias, park, keep, readers),
    },
    f.distance,
    norms,
  );
}

export function runStage2(
  ctx: Stage2Context,
  methods: MethodName[],
  opts: Stage2Options & {
    /**
     * Park each method's classifier in a temporary file once it is evaluated (ClassifierPark):
     * the caller then calls `release()` when done with the classifiers.
     */
    park?: boolean;
  } = {},
): Stage2Output {
  const results: MethodResult[] = [];
  const classifiers = new Map<MethodName, Stage2Classifier>();
  const calibrations = new Map<MethodName, DeployCalibration>();
  let park: ClassifierPark | null = null;
  if (opts.park) {
    try {
      park = new ClassifierPark();
    } catch {
      park = null; // no temporary folder: the classifiers stay in memory
    }
  }
  const own = ctx.features.classifier;
  const keep = new Set<Float32Array>(own ? [own.weight, own.bias] : []);
  try {
    for (const m of methods) {
      const t = performance.now();
      const c = { ...(opts.thresholds ? { thresholds: opts.thresholds } : {}), ...ctx };
      const parsed = opts.options?.get(m);
      const clf =
        parsed !== undefined ? methodEntry(m).create(c, parsed) : createClassifier(m, c, opts.settings);
      const r = evaluateClassifier(
        clf,
        ctx,
        (performance.now() - t) / 1000,
        opts.thresholds,
        opts.chunkRows,
        opts.calibrate,
        (d) => calibrations.set(m, d),
      );
      classifiers.set(m, park ? parkClassifier(clf, park, keep, r.weightNorms) : clf);
      results.push(r);
      opts.onMethod?.(r);
    }
  } catch (e) {
    park?.close();
    throw e;
  }
  return { results, classifiers, calibrations, release: () => park?.close() };
}
