/**
 * Nearest class mean. Centroids are the class means of the (transformed) training features, as
 * the official code: 'cl2n' (default) centres by the training mean then L2-normalises, 'l2n'
 * only normalises, 'raw' leaves features as they are. Scores: 'l2' = -||x - c|| (the official
 * code's distance), 'cos' = cosine similarity between x and c.
 *
 * Why the distance and not -||x - c||^2 / 2 (= x.c - ||c||^2 / 2 up to a per-row constant, a
 * linear layer): both rank the classes alike, but their softmax differs, and the square calibrates
 * far worse even with its own fitted temperature and BCTS biases (softmax ignores the per-row
 * constant, so that is what the linear score measured): demo, 3 seeds, NCM's ECE after BCTS 0.130
 * against 0.045, backward-50 known-prior accuracy 63.6 against 76.2 % (docs/results.md). The
 * deployed head therefore computes the distance itself
 * (FoldedLinear.distance: deploy/folded.ts, the ONNX and tfjs exports), so the temperature and
 * BCTS biases fitted here hold for every deployment.
 */
import { z } from 'zod';
import { headKernels } from '../backend/native-head.ts';
import { ConfigError } from '../errors.ts';
import type { FeatureSet } from '../features/feature-set.ts';
import { rowNorms, specLogits, transformFeatures } from './linear-ops.ts';
import { defineMethod, type FeatureTransform, type LinearLogits, type Stage2Classifier } from './types.ts';

export interface NcmOptions {
  featureType?: 'cl2n' | 'l2n' | 'raw';
  distance?: 'l2' | 'cos';
  /**
   * Training rows transformed at once for the class means (default 256 KiB of features, so a
   * block is still in L2 when its rows are added to their classes): the transformed features
   * never exist whole. The means are summed row by row in order, so any value gives the same
   * centroids to the bit.
   */
  chunkRows?: number;
}

/** Floats of one block of transformed training rows (256 KiB): see NcmOptions.chunkRows. */
const CHUNK_FLOATS = 65536;

export function ncm(
  fs: FeatureSet,
  { featureType = 'cl2n', distance = 'l2', chunkRows = CHUNK_FLOATS / Math.max(1, fs.dim) }: NcmOptions = {},
): Stage2Classifier {
  const { dim: d, numClasses: C, train } = fs;
  const n = train.labels.length;
  const k = headKernels();
  const mean = new Float32Array(d);
  const f = train.features;
  k.meanRows(f, n, d, n, mean);
  const transform: FeatureTransform =
    featureType === 'cl2n'
      ? { kind: 'cl2n', mean }
      : featureType === 'l2n'
        ? { kind: 'l2n' }
        : { kind: 'none' };
  const centroids = new Float32Array(C * d);
  const counts = new Array<number>(C).fill(0);
  for (let i = 0; i < n; i++) counts[train.labels[i]!]!++;
  const step = Math.max(1, Math.floor(chunkRows));
  const buffer = transform.kind === 'none' ? undefined : new Float32Array(Math.min(step, n) * d);
  for (let s = 0; s < n; s += step) {
    const m = Math.min(step, n - s);
    const x = transformFeatures(f.subarray(s * d, (s + m) * d), m, d, transform, buffer); // [m, d]
    k.addRows(x, train.labels.subarray(s, s + m), centroids, m, d, C);
  }
  const empty = counts.indexOf(0);
  if (empty >= 0) throw new ConfigError(`ncm: class ${empty} has no training feature, so it has no mean`);
  for (let c = 0; c < C; c++) for (let j = 0; j < d; j++) centroids[c * d + j]! /= counts[c]!;
  const cNorms = rowNorms(centroids, C, d);
  // Only the cosine score uses unit centroids: no second [C, d] copy for l2 (66 MB at 8,142 classes).
  const unitCentroids = new Float32Array(distance === 'cos' ? C * d : 0);
  if (distance === 'cos')
    for (let c = 0; c < C; c++)
      for (let j = 0; j < d; j++)
        unitCentroids[c * d + j] = centroids[c * d + j]! / Math.max(cNorms[c]!, 1e-12);
  const sqNorms = Float32Array.from(cNorms, (v) => v * v);

  // cos(x, c) = (x / ||x||) . (c / ||c||); l2: -||x - c|| = -sqrt(||x||^2 - 2 x.c + ||c||^2).
  const linear: LinearLogits =
    distance === 'cos'
      ? {
          transform: transform.kind === 'none' ? { kind: 'l2n' } : transform,
          weight: unitCentroids,
          bias: null,
        }
      : { transform, weight: centroids, bias: null, sqDistance: sqNorms };
  const logits = (f: Float32Array, m: number): Float32Array => specLogits(linear, f, m, d, C);
  const folded = () => {
    if (distance === 'cos') {
      return {
        weight: unitCentroids,
        bias: new Float32Array(C),
        transform: transform.kind === 'none' ? ({ kind: 'l2n' } as const) : transform,
      };
    }
    return {
      weight: Float32Array.from(centroids),
      bias: new Float32Array(C),
      transform,
      distance: { sqNorms: Float32Array.from(sqNorms), scale: 1 },
    };
  };
  return {
    method: 'ncm',
    numClasses: C,
    dim: d,
    logits,
    linear,
    weightNorms: () => cNorms,
    folded,
    details: { featureType, distance },
  };
}

export const ncmMethod = defineMethod({
  name: 'ncm',
  label: 'NCM',
  description: 'nearest class mean of centred, L2-normalised features',
  order: 20,
  needsClassifier: false,
  trains: false,
  options: z.object({
    ncmFeatures: z.enum(['cl2n', 'l2n', 'raw']).default('cl2n').describe('NCM feature normalisation'),
    ncmDistance: z.enum(['l2', 'cos']).default('l2').describe('NCM score: l2 (negative distance) or cos'),
  }),
  create: (ctx, o) => ncm(ctx.features, { featureType: o.ncmFeatures, distance: o.ncmDistance }),
});
