/** Joint: the stage-1 linear classifier as it is (the baseline). */
import { z } from 'zod';
import { ConfigError } from '../errors.ts';
import type { FeatureSet } from '../features/feature-set.ts';
import { rowNorms, specLogits } from './linear-ops.ts';
import { defineMethod, type FoldedLinear, type Stage2Classifier } from './types.ts';

export function requireClassifier(fs: FeatureSet, method: string) {
  if (!fs.classifier) {
    throw new ConfigError(
      `${method} needs the stage-1 classifier (classifier_weight and classifier_bias in the feature file)`,
    );
  }
  return fs.classifier;
}

export function linearClassifier(
  method: string,
  layer: FoldedLinear,
  C: number,
  d: number,
  details: Record<string, unknown> = {},
): Stage2Classifier {
  const linear = { transform: layer.transform, weight: layer.weight, bias: layer.bias };
  return {
    method,
    numClasses: C,
    dim: d,
    logits: (f, n) => specLogits(linear, f, n, d, C),
    linear,
    weightNorms: () => rowNorms(layer.weight, C, d),
    folded: () => layer,
    details,
  };
}

export function joint(fs: FeatureSet): Stage2Classifier {
  const { weight, bias } = requireClassifier(fs, 'joint');
  return linearClassifier('joint', { weight, bias, transform: { kind: 'none' } }, fs.numClasses, fs.dim);
}

export const jointMethod = defineMethod({
  name: 'joint',
  label: 'Joint',
  description: 'the stage-1 linear classifier as it is',
  order: 10,
  needsClassifier: true,
  trains: false,
  options: z.object({}),
  create: (ctx) => joint(ctx.features),
});
