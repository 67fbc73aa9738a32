/**
 * Stage 2 on a FeatureSet: build each asked method, evaluate it on the test set, and collect
 * the paper's table plus everything the report draws (per-class accuracy, weight norms, the tau
 * sweep, confusion matrices, calibration).
 */
import { createClassifier, type MethodName, methodEntry } from '../classifiers/registry.ts';
import type { Stage2Classifier, Stage2Context, TunedParam } from '../classifiers/types.ts';
import { argmaxRows, evaluateLogits } from '../eval/metrics.ts';
import { priorName, SHIFTED_PRIORS, shiftedPrior, shiftedTestIndices } from '../eval/shifted-priors.ts';
import type { ShotThresholds } from '../eval/shot-splits.ts';
import type { FeatureSet } from '../features/feature-set.ts';

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

/** Evaluates test logits [n, C] on every shifted test prior (uniform excluded: it is the main result). */
export function evaluateShifted(
  logits: Float32Array,
  fs: FeatureSet,
  seed: number,
  thresholds?: ShotThresholds,
): ShiftedResult[] {
  const C = fs.numClasses;
  const labels = fs.test.labels;
  const counts = new Array<number>(C).fill(0);
  for (const l of labels) counts[l]!++;
  const perClass = Math.min(...counts);
  if (perClass === 0) return []; // a class absent from the test set: no shifted sets
  return SHIFTED_PRIORS.filter((p) => p.direction !== 'uniform').map((p) => {
    const idx = shiftedTestIndices(labels, fs.trainCounts, p, seed);
    const sub = new Float32Array(idx.length * C); // [n', C]
    const subLabels = new Int32Array(idx.length);
    idx.forEach((i, k) => {
      sub.set(logits.subarray(i * C, (i + 1) * C), k * C);
      subLabels[k] = labels[i]!;
    });
    const e = evaluateLogits(sub, subLabels, C, fs.trainCounts, thresholds);
    const logPrior = shiftedPrior(fs.trainCounts, perClass, p).map(Math.log);
    for (let k = 0; k < idx.length; k++) for (let c = 0; c < C; c++) sub[k * C + c]! += logPrior[c]!;
    const pred = argmaxRows(sub, idx.length, C);
    let correct = 0;
    for (let k = 0; k < idx.length; k++) if (pred[k] === subLabels[k]) correct++;
    return {
      prior: priorName(p),
      ratio: p.ratio,
      direction: p.direction,
      n: idx.length,
      seed,
      overall: pct(e.overall)!,
      many: pct(e.many),
      medium: pct(e.medium),
      few: pct(e.few),
      knownPrior: pct(correct / idx.length)!,
    };
  });
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
}

export function evaluateClassifier(
  clf: Stage2Classifier,
  ctx: Stage2Context,
  seconds: number,
  thresholds?: ShotThresholds,
): MethodResult {
  const fs = ctx.features;
  const testLogits = clf.logits(fs.test.features, fs.test.labels.length); // [n, C]
  const e = evaluateLogits(testLogits, fs.test.labels, fs.numClasses, fs.trainCounts, thresholds);
  const v = fs.val
    ? evaluateLogits(
        clf.logits(fs.val.features, fs.val.labels.length),
        fs.val.labels,
        fs.numClasses,
        fs.trainCounts,
        thresholds,
      )
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
    confusion: e.confusion,
    weightNorms: clf.weightNorms(),
    tuned: clf.tuned ?? null,
    shifted: evaluateShifted(testLogits, fs, ctx.seed ?? 0, thresholds),
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
    const r = evaluateClassifier(clf, ctx, (performance.now() - t) / 1000, opts.thresholds);
    classifiers.set(m, clf);
    results.push(r);
    opts.onMethod?.(r);
  }
  return { results, classifiers };
}
