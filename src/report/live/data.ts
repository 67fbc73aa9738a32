/**
 * What a report page carries for its live section (src/pipeline/live-report-data.ts builds it, html.ts embeds
 * it as JSON, page.ts reads it). Arrays of numbers travel as base64 of little-endian typed arrays.
 */

/**
 * Logits [k, C] of k test rows, compactly: each row as a float32 offset (the row's maximum) plus
 * float16 residuals (logit - offset). Near the top of a row, where the argmax is decided, the
 * residuals are small and float16 is fine-grained there, so near-ties keep their order.
 */
/** Fewest test images per class, on average, for the live per-class views to be shown. */
export const MIN_LIVE_ROWS_PER_CLASS = 10;

/**
 * Rows embedded at most when the per-class views are hidden: the table and the reliability diagram
 * are all that is left, and an accuracy over 1,200 images has a binomial standard error of at most
 * 1.45 points (at 50%). More rows would only grow the page.
 */
export const LIVE_ROWS_WITHOUT_PER_CLASS = 1200;

export interface LiveArray {
  /** base64 of Float32Array [k]. */
  offsets: string;
  /** base64 of Uint16Array [k * C]: IEEE half-precision bits. */
  halves: string;
}

/**
 * How the page gets a method's logits: its own stored ones, or from the stage-1 classifier's base
 * logits z = f . W^T (no bias), as the CLI computes the post-hoc methods:
 * joint z + b; tau-norm z[:, c] / ||w_c||^tau; logit adjustment z + b - tau log(n_c / N).
 */
export type LiveKind = 'stored' | 'joint' | 'tau-norm' | 'logit-adjust';

export interface LiveMethod {
  method: string;
  label: string;
  colour: string;
  kind: LiveKind;
  /** The run's tau (tau-norm, logit adjustment), the sliders' starting value; null otherwise. */
  tau: number | null;
  /** `stored` only. */
  logits: LiveArray | null;
}

export interface LiveBase {
  /** z = f . W^T of the stage-1 classifier, without its bias. */
  z: LiveArray;
  /** The stage-1 bias b [C]. */
  bias: number[];
  /** ||w_c|| [C] (0 kept: tau-norm leaves a zero row as it is). */
  norms: number[];
  /** log(n_c / N) [C] of the training counts (float32, as classifiers/logit-adjust.ts uses). */
  logPrior: number[] | null;
}

export interface LiveData {
  version: 1;
  numClasses: number;
  classNames: string[];
  trainCounts: number[];
  /** Test images per class in the whole test set (not only the embedded rows). */
  testCounts: number[];
  thresholds: { many: number; few: number };
  /** Test images in all, and how many rows are embedded (k < nTest: a stratified subsample). */
  nTest: number;
  k: number;
  /** base64 of Int32Array [k]: the embedded rows' labels. */
  labels: string;
  base: LiveBase | null;
  methods: LiveMethod[];
}
