/**
 * A deployed head under another class prior: a target prior read from a file (or `uniform` /
 * `train`) folded into its bias, and the prior of a batch of unlabeled images estimated by EM or
 * BBSE (eval/label-shift.ts) with the adjusted predictions. The head's scores are calibrated
 * (deploy/folded.ts folds the temperature in) and refer to its source prior (the validation
 * split's), so both add log q - log p to them.
 */
import { readFileSync } from 'node:fs';
import type { FoldedLinear } from '../classifiers/types.ts';
import { ConfigError, DataError } from '../errors.ts';
import { adjustedPredictions, bbsePriorFromCounts, emPrior, softmaxRows } from '../eval/label-shift.ts';
import { argmaxRows } from '../eval/metrics.ts';
import { csvField } from '../io/display.ts';
import type { FoldedCalibration } from './folded.ts';
import {
  type FilePrediction,
  formatPredictions,
  type LoadedModel,
  type PredictionFormat,
} from './predict.ts';

/** Entries of a prior file must sum to 1 within this, unless normalised. */
export const PRIOR_SUM_TOLERANCE = 1e-6;
/** A zero prior entry is folded as this (log 0 would put -Infinity in the exported bias). */
export const PRIOR_FLOOR = 1e-12;

/**
 * Reads a target prior: a JSON array of C numbers in label order, or an object from class name to
 * number naming every class once. Negative entries, a wrong class count or names, and a sum other
 * than 1 (unless `normalize`) are refused naming the file.
 */
export function readPriorFile(
  path: string,
  classNames: readonly string[],
  opts: { normalize?: boolean } = {},
): number[] {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new DataError(`${path}: not a readable JSON prior (${(e as Error).message.split('\n')[0]})`);
  }
  const C = classNames.length;
  let q: number[];
  if (Array.isArray(raw)) {
    if (raw.length !== C)
      throw new DataError(`${path}: ${raw.length} prior entries, the model has ${C} classes`);
    q = raw as number[];
  } else if (raw !== null && typeof raw === 'object') {
    const o = raw as Record<string, unknown>;
    const unknown = Object.keys(o).filter((k) => !classNames.includes(k));
    if (unknown.length > 0)
      throw new DataError(
        `${path}: class ${JSON.stringify(unknown[0])} is not one of the model's classes (${classNames.slice(0, 5).join(', ')}${C > 5 ? ', ...' : ''})`,
      );
    const missing = classNames.filter((k) => !(k in o));
    if (missing.length > 0)
      throw new DataError(
        `${path}: no prior for class ${JSON.stringify(missing[0])} (the model has ${C} classes)`,
      );
    q = classNames.map((k) => o[k] as number);
  } else
    throw new DataError(
      `${path}: a prior must be a JSON array of ${C} numbers or an object from class name to number`,
    );
  for (const [c, v] of q.entries()) {
    if (typeof v !== 'number' || !Number.isFinite(v))
      throw new DataError(`${path}: prior of class ${JSON.stringify(classNames[c])} is not a number`);
    if (v < 0)
      throw new DataError(`${path}: prior of class ${JSON.stringify(classNames[c])} is negative (${v})`);
  }
  const sum = q.reduce((a, b) => a + b, 0);
  if (!(sum > 0)) throw new DataError(`${path}: the prior sums to 0`);
  if (Math.abs(sum - 1) > PRIOR_SUM_TOLERANCE && !opts.normalize)
    throw new DataError(`${path}: the prior sums to ${sum}, not 1 (pass --normalize-prior to rescale it)`);
  return q.map((v) => v / sum);
}

/** `uniform`, `train` (the training class frequencies) or a prior file. */
export function resolveTargetPrior(
  spec: string,
  classNames: readonly string[],
  trainCounts: readonly number[] | undefined,
  opts: { normalize?: boolean } = {},
): number[] {
  const C = classNames.length;
  if (spec === 'uniform') return new Array<number>(C).fill(1 / C);
  if (spec === 'train') {
    if (!trainCounts || trainCounts.length !== C)
      throw new ConfigError(
        '--target-prior train: this run does not record its training counts (re-run stage 2)',
      );
    const n = trainCounts.reduce((a, b) => a + b, 0);
    return trainCounts.map((k) => k / n);
  }
  return readPriorFile(spec, classNames, opts);
}

/** The layer with log q - log p added to its bias (the calibrated scores re-targeted to q). */
export function foldPrior(
  layer: FoldedLinear,
  target: readonly number[],
  source: readonly number[],
): FoldedLinear {
  const bias = layer.bias.map(
    (b, c) => b + Math.log(Math.max(target[c]!, PRIOR_FLOOR)) - Math.log(source[c]!),
  );
  return { ...layer, bias };
}

export type AdaptMethod = 'em' | 'bbse';

/** Why `--adapt-prior bbse` is refused on a head without BBSE's validation counts. */
export const BBSE_NEEDS_COUNTS =
  '--adapt-prior bbse needs validation counts (classifiers.npz <method>/val_confusion); this run had no validation split or more classes than BBSE solves for (use --adapt-prior em)';

export interface AdaptedPrior {
  method: AdaptMethod;
  prior: number[];
  /** Adjusted prediction of each image, and its probability under the estimated prior. */
  pred: Int32Array;
  probs: Float64Array;
  /** Predictions without adjustment, for comparison. */
  plainPred: Int32Array;
}

/**
 * Estimates the prior of n unlabeled images from their calibrated logits [n, C] (temperature
 * already folded in) and returns it with the adjusted predictions and probabilities.
 */
export function adaptPrior(
  logits: Float32Array,
  n: number,
  C: number,
  cal: FoldedCalibration,
  method: AdaptMethod,
): AdaptedPrior {
  if (n < C)
    throw new ConfigError(
      `--adapt-prior needs at least as many images as classes: ${n} images for ${C} classes`,
    );
  const source = cal.sourcePrior;
  const plainPred = argmaxRows(logits, n, C);
  let prior: number[];
  if (method === 'em') prior = emPrior(softmaxRows(logits, n, C), n, C, source).prior;
  else {
    if (!cal.valConfusion) throw new ConfigError(BBSE_NEEDS_COUNTS);
    prior = bbsePriorFromCounts(cal.valConfusion, plainPred, C).prior;
  }
  const floored = prior.map((q) => Math.max(q, PRIOR_FLOOR));
  const shift = floored.map((q, c) => Math.log(q) - Math.log(source[c]!));
  const adjusted = Float32Array.from(logits, (z, k) => z + shift[k % C]!);
  return {
    method,
    prior,
    pred: adjustedPredictions(logits, n, C, 1, floored, source),
    probs: softmaxRows(adjusted, n, C),
    plainPred,
  };
}

/** Images decoded and classified at once when adapting to a folder (bounds the decoded pixels held). */
export const ADAPT_BATCH = 256;

export interface AdaptedFiles {
  prior: { name: string; probability: number }[];
  predictions: (FilePrediction & { unadjusted: string })[];
}

/**
 * `predict --adapt-prior`: classifies image files, estimates their class prior with EM or BBSE,
 * and returns the prior with each file's top-k under it (and its unadjusted top class).
 */
export async function predictFilesAdapted(
  model: LoadedModel,
  paths: string[],
  method: AdaptMethod,
  topK = 5,
): Promise<AdaptedFiles> {
  const C = model.classNames.length;
  if (paths.length < C)
    throw new ConfigError(
      `--adapt-prior needs at least as many images as classes: ${paths.length} images for ${C} classes`,
    );
  const logits = new Float32Array(paths.length * C);
  for (let s = 0; s < paths.length; s += ADAPT_BATCH) {
    const part = paths.slice(s, s + ADAPT_BATCH);
    logits.set(await model.logitsOfFiles(part), s * C);
  }
  return adaptedFromLogits(model, paths, logits, method, topK);
}

/** As predictFilesAdapted, for files whose logits [n, C] (the folded head's) are already computed: no image decoded again. */
export function adaptedFromLogits(
  model: Pick<LoadedModel, 'classNames' | 'calibration'>,
  paths: string[],
  logits: Float32Array,
  method: AdaptMethod,
  topK = 5,
): AdaptedFiles {
  const C = model.classNames.length;
  const a = adaptPrior(logits, paths.length, C, model.calibration, method);
  const k = Math.max(1, Math.min(topK, C));
  const predictions = paths.map((file, i) => {
    const row = Array.from(a.probs.subarray(i * C, (i + 1) * C), (p, c) => ({
      index: c,
      name: model.classNames[c]!,
      probability: p,
    })).sort((x, y) => y.probability - x.probability || x.index - y.index);
    return { file, top: row.slice(0, k), unadjusted: model.classNames[a.plainPred[i]!]! };
  });
  return { prior: a.prior.map((p, c) => ({ name: model.classNames[c]!, probability: p })), predictions };
}

/**
 * `predict --adapt-prior --out FILE`: JSON as plain predict's plus `adaptPrior` and the estimated
 * `prior` (each prediction carries `unadjusted`, its top class without adaptation); CSV as plain
 * predict's plus an `unadjusted` column (the prior itself is only in the JSON and on the screen).
 */
export function formatAdaptedPredictions(
  format: PredictionFormat,
  r: AdaptedFiles,
  info: { run: string; method: string; topK: number; adaptPrior: AdaptMethod },
): string {
  if (format === 'json')
    return `${JSON.stringify({ run: info.run, method: info.method, adaptPrior: info.adaptPrior, prior: r.prior, predictions: r.predictions }, null, 2)}\n`;
  const lines = formatPredictions('csv', r.predictions, info).split('\r\n');
  return `${lines
    .slice(0, r.predictions.length + 1)
    .map((l, i) => `${l},${i === 0 ? 'unadjusted' : csvField(r.predictions[i - 1]!.unadjusted)}`)
    .join('\r\n')}\r\n`;
}
