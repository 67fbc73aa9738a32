/** The one stage-2 classifier contract: features [n, d] -> logits [n, C], plus per-class weight norms. */
import type { z } from 'zod';
import type { ShotThresholds } from '../eval/shot-splits.ts';
import type { FeatureSet, LinearWeights } from '../features/feature-set.ts';

/** How features are transformed before the folded linear layer. */
export type FeatureTransform = { kind: 'none' } | { kind: 'l2n' } | { kind: 'cl2n'; mean: Float32Array };

/**
 * Every stage-2 classifier as deployed: logits = T(f) W^T + b, exactly the method's logits. NCM's
 * l2 score is not linear: with `distance`, logits = b - scale ||T(f) - w_c|| (rows of W are the
 * centroids), computed as sqrt(max(0, ||x||^2 - 2 x.w_c + ||w_c||^2)) by every deployment.
 */
export interface FoldedLinear extends LinearWeights {
  transform: FeatureTransform;
  /** NCM's l2 score: `sqNorms` [C] = ||w_c||^2, `scale` = 1 / temperature (1 before calibration). */
  distance?: { sqNorms: Float32Array; scale: number };
}

/**
 * A method's logits as data, exactly (unlike `folded`, which for NCM only ranks alike):
 * z = T(f) W^T + b, and with `sqDistance` NCM's l2 score -sqrt(max(0, ||x||^2 - 2 z + ||c||^2))
 * of x = T(f). Evaluation computes such logits a block of rows at a time on several threads
 * (classifiers/sharded/logit-threads.ts) with the same bits as `logits`.
 */
export interface LinearLogits {
  transform: FeatureTransform;
  /** [C, d] */
  weight: Float32Array;
  /** [C], or null for none. */
  bias: Float32Array | null;
  /** [C] ||c||^2 of the weight's rows: the logits are negative distances -||x - c|| (NCM's l2 score; no bias then). */
  sqDistance?: Float32Array | null;
}

export interface Stage2Classifier {
  readonly method: string;
  readonly numClasses: number;
  readonly dim: number;
  /** features [n, d] -> logits [n, C]. */
  logits(features: Float32Array, n: number): Float32Array;
  /** The same logits as data, when they have that form (every built-in method): evaluation splits them over threads. */
  linear?: LinearLogits;
  /** ||w_i|| per class of the effective classifier (the paper's weight-norm figure). */
  weightNorms(): number[];
  folded(): FoldedLinear;
  /** The parameter chosen on the validation set and its whole sweep (methods with `tuning`). */
  tuned?: TunedParam;
  /** What was chosen or learned, for the results (epochs, mode, losses, ...). */
  details: Record<string, unknown>;
}

/** Accuracy (fractions) overall and per split; null for a split with no class. */
export interface SplitAccuracy {
  overall: number;
  many: number | null;
  medium: number | null;
  few: number | null;
}

/** One value of a tuned parameter: accuracy on the validation set (null without one) and the test set. */
export interface SweepPoint {
  value: number;
  val: SplitAccuracy | null;
  test: SplitAccuracy;
}

export interface TunedParam {
  /** The parameter's name, e.g. `tau`. */
  param: string;
  value: number;
  /** `given` by the user, chosen on `val`, or the `default` when there is no validation set. */
  chosenOn: 'given' | 'val' | 'default';
  sweep: SweepPoint[];
}

/** A parameter a method chooses on the balanced validation set (never on the test set). */
export interface TuningSpec {
  param: string;
  grid: readonly number[];
  /** Used when there is no validation set (with a warning). */
  fallback: number;
}

/** A Vega-Lite spec with its data inline (the report renders it). */
export type ChartSpec = Record<string, unknown> & { data: { values: Record<string, unknown>[] } };

/** What the report knows of one method's result (a subset of results.json's method entry). */
export interface MethodReportInput {
  method: string;
  label: string;
  tuned: TunedParam | null;
  weightNorms: number[];
  details: Record<string, unknown>;
}

/**
 * One stage-2 method, whole: the registry (registry.ts) holds one of these per method, and the CLI,
 * configuration, results schema, report, study, predict and export derive from it.
 */
export interface MethodEntry<S extends z.ZodRawShape = z.ZodRawShape> {
  /** The name on the command line and in results.json. */
  name: string;
  /** The name in tables and charts. */
  label: string;
  description: string;
  /** Table order, smaller first (the paper's four: 10-50; later baselines: 60 on). */
  order: number;
  /**
   * Its colour in every chart, table swatch and live view (`#rrggbb`). Without one, a method gets
   * a colour from report/palette.ts's spare list by a hash of its name.
   */
  colour?: string;
  /** Needs the stage-1 classifier (classifier_weight / classifier_bias); skipped by `all` without it. */
  needsClassifier: boolean;
  /** Trains on batches of training features (follows --mode, --stage2-lr, --stage2-batch-size, --threads). */
  trains: boolean;
  /**
   * The method's settings, as flat keys of the stage-2 configuration (config file, results.json);
   * each a zod schema with its default and a `.describe()` text, from which the CLI flags derive
   * (`crtEpochs` -> `--crt-epochs`). Keys are unique across the registry.
   */
  options: z.ZodObject<S>;
  /** The parameter chosen on validation, if any (the report charts its sweep). */
  tuning?: TuningSpec;
  /** Builds the classifier; `options` are already validated by `options`. */
  create(ctx: Stage2Context, options: z.output<z.ZodObject<S>>): Stage2Classifier;
  /** Charts the method adds to the report beyond the common ones (and its sweep), by file name. */
  charts?(result: MethodReportInput): Record<string, ChartSpec>;
}

/** Trains a classifier on a batch source of training features. */
export interface TrainFeatureSource {
  /** `features`: cached, un-augmented features; `augmented`: through the frozen backbone with training augmentation. */
  mode: 'features' | 'augmented';
  /**
   * Features [indices.length, d] of the training images at `indices`, for this epoch. The array
   * is the caller's until the next call only (a source may reuse it).
   */
  batch(indices: ArrayLike<number>, epoch: number, step: number): Float32Array;
}

export interface Stage2Context {
  features: FeatureSet;
  /** Where the trained methods (cRT, LWS) draw training batches from; default cached features. */
  source?: TrainFeatureSource;
  seed?: number;
  /** Threads to split the trained heads' classes over (cRT, LWS); default 1. Results do not depend on it. */
  threads?: number;
  /** Training settings every trained head follows unless its own options say otherwise (batch size, LR, weight decay, ...). */
  head?: HeadSettings;
  /** Shot-split thresholds of the sweeps on validation. */
  thresholds?: ShotThresholds;
  /** Where a method reports a fallback (e.g. no validation set to tune on). */
  warn?: (message: string) => void;
  onProgress?: (method: string, done: number, total: number) => void;
}

/**
 * The shared stage-2 training settings. Unset, a head takes the optimiser's defaults
 * (optim/settings.ts: SGD_DEFAULTS), the context's seed and its method's own epochs.
 */
export interface HeadSettings {
  epochs?: number;
  batchSize?: number;
  lr?: number;
  weightDecay?: number;
  momentum?: number;
  /** The class-aware sampler's own setting (images per class in a row; its entry's default, 4). */
  classAwarePerClass?: number;
  seed?: number;
}

/** A method entry with its options' type inferred (an identity: `create` sees the parsed options). */
export function defineMethod<S extends z.ZodRawShape>(entry: MethodEntry<S>): MethodEntry<S> {
  return entry;
}
