/**
 * Stage 2 on a FeatureSet: build each asked method, evaluate it on the test set, and collect
 * the paper's table plus everything the report draws (per-class accuracy, weight norms, the tau
 * sweep, confusion matrices, calibration).
 */
import { createClassifier, type MethodName, methodEntry } from '../classifiers/registry.ts';
import type { Stage2Classifier, Stage2Context, TunedParam } from '../classifiers/types.ts';
import { defaultChunkRows, evaluateLogitBlocks, LogitRows, splitAccuracies } from '../eval/metrics.ts';
import { priorName, SHIFTED_PRIORS, shiftedPrior, shiftedTestIndices } from '../eval/shifted-priors.ts';
import type { ShotThresholds } from '../eval/shot-splits.ts';
import type { FeatureSet, FeatureSplit } from '../features/feature-set.ts';

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
}

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
    next: number;
  }[];

  constructor(
    private readonly fs: Pick<FeatureSet, 'numClasses' | 'trainCounts' | 'test'>,
    private readonly seed: number,
  ) {
    const C = fs.numClasses;
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
            return {
              prior,
              idx,
              logPrior: shiftedPrior(fs.trainCounts, perClass, prior).map(Math.log),
              knownPred: new Int32Array(idx.length),
              next: 0,
            };
          });
  }

  /** Test logits [m, C] of rows [start, start + m), blocks in order. */
  add(logits: Float32Array, start: number, m: number): void {
    const C = this.fs.numClasses;
    for (const set of this.sets) {
      const { idx, logPrior, knownPred } = set;
      while (set.next < idx.length && idx[set.next]! < start + m) {
        const o = (idx[set.next]! - start) * C;
        let best = 0;
        let bv = Math.fround(logits[o]! + logPrior[0]!);
        for (let c = 1; c < C; c++) {
          const v = Math.fround(logits[o + c]! + logPrior[c]!);
          if (v > bv) {
            bv = v;
            best = c;
          }
        }
        knownPred[set.next++] = best;
      }
    }
  }

  /** The results, once every test row was added; `rows` holds every test row's argmax. */
  results(rows: LogitRows, thresholds?: ShotThresholds): ShiftedResult[] {
    const C = this.fs.numClasses;
    const labels = this.fs.test.labels;
    return this.sets.map(({ prior: p, idx, knownPred, next }) => {
      if (next !== idx.length) throw new Error(`shifted evaluation: ${next} of ${idx.length} rows seen`);
      const subLabels = Int32Array.from(idx, (i) => labels[i]!);
      const subPred = Int32Array.from(idx, (i) => rows.pred[i]!);
      const e = splitAccuracies(subPred, subLabels, C, this.fs.trainCounts, thresholds);
      let correct = 0;
      for (let k = 0; k < idx.length; k++) if (knownPred[k] === subLabels[k]) correct++;
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
  thresholds?: ShotThresholds;
  /** Called after each method, e.g. to print a line. */
  onMethod?: (r: MethodResult) => void;
  /**
   * Rows evaluated at once (default: eval/metrics.ts defaultChunkRows(C, d), 8 MiB of logits or
   * features a block).
   */
  chunkRows?: number;
}

/**
 * Evaluates a classifier on the test set (and validation, if any), `chunkRows` rows of logits at a
 * time (the result does not depend on it).
 */
export function evaluateClassifier(
  clf: Stage2Classifier,
  ctx: Stage2Context,
  seconds: number,
  thresholds?: ShotThresholds,
  chunkRows?: number,
): MethodResult {
  const fs = ctx.features;
  const d = fs.dim;
  const on = (sp: FeatureSplit) => (s: number, m: number) =>
    clf.logits(sp.features.subarray(s * d, (s + m) * d), m); // [m, C]
  const shifted = new ShiftedEvaluator(fs, ctx.seed ?? 0);
  // The block bounds both the logits [m, C] and the features a method copies or transforms [m, d].
  const blockOpts = {
    ...(thresholds ? { thresholds } : {}),
    chunkRows: chunkRows ?? defaultChunkRows(fs.numClasses, d),
  };
  const test = evaluateLogitBlocks(on(fs.test), fs.test.labels, fs.numClasses, fs.trainCounts, {
    ...blockOpts,
    onBlock: (z, s, m) => shifted.add(z, s, m),
  });
  const e = test.evaluation;
  const v = fs.val
    ? evaluateLogitBlocks(on(fs.val), fs.val.labels, fs.numClasses, fs.trainCounts, blockOpts).evaluation
    : null;
  const method = clf.method;
  const mode = (clf.details.mode as MethodResult['mode']) ?? null;
  return {
    method,
    label: methodEntry(method).label,
    overall: pct(e.overall)!,
    many: pct(e.many),
    medium: pct(e.medium),
    few: pct(e.few),
    macroF1: Math.round(e.macroF1 * 10000) / 10000,
    ece: Math.round(e.ece * 10000) / 10000,
    valOverall: v ? pct(v.overall) : null,
    perClass: e.perClass,
    perClassPrecision: e.perClassPrecision,
    confusion: e.confusion,
    weightNorms: clf.weightNorms(),
    tuned: clf.tuned ?? null,
    shifted: shifted.results(test.rows, thresholds),
    mode,
    seconds: Math.round(seconds * 100) / 100,
    details: clf.details,
  };
}

export interface Stage2Output {
  results: MethodResult[];
  classifiers: Map<MethodName, Stage2Classifier>;
}

export function runStage2(ctx: Stage2Context, methods: MethodName[], opts: Stage2Options = {}): Stage2Output {
  const results: MethodResult[] = [];
  const classifiers = new Map<MethodName, Stage2Classifier>();
  for (const m of methods) {
    const t = performance.now();
    const clf = createClassifier(
      m,
      { ...(opts.thresholds ? { thresholds: opts.thresholds } : {}), ...ctx },
      opts.settings,
    );
    const r = evaluateClassifier(clf, ctx, (performance.now() - t) / 1000, opts.thresholds, opts.chunkRows);
    classifiers.set(m, clf);
    results.push(r);
    opts.onMethod?.(r);
  }
  return { results, classifiers };
}
