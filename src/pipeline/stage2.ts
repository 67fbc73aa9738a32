/**
 * Stage 2 on a FeatureSet: build each asked method, evaluate it on the test set, and collect
 * the paper's table plus everything the report draws (per-class accuracy, weight norms, the tau
 * sweep, confusion matrices, calibration).
 */
import { createClassifier, type MethodName, methodEntry } from '../classifiers/registry.ts';
import type { Stage2Classifier, Stage2Context, TunedParam } from '../classifiers/types.ts';
import { evaluateLogits } from '../eval/metrics.ts';
import type { ShotThresholds } from '../eval/shot-splits.ts';

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
  /** Trained methods: `features` (cached) or `augmented` (through the frozen backbone); null for the others. */
  mode: 'features' | 'augmented' | null;
  seconds: number;
  details: Record<string, unknown>;
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
  const e = evaluateLogits(
    clf.logits(fs.test.features, fs.test.labels.length),
    fs.test.labels,
    fs.numClasses,
    fs.trainCounts,
    thresholds,
  );
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
