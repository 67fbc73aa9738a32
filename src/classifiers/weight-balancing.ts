/**
 * Weight balancing, stage 2 (Alshammari, Wang, Ramanan, Kong, "Long-Tailed Recognition via Weight
 * Balancing", CVPR 2022, and its official code): fine-tune the stage-1 classifier (weight and bias)
 * on frozen features with a class-balanced loss (class weights proportional to 1/n_j, normalised
 * to sum to C), weight decay, and MaxNorm: after every step each row w_j is projected to
 * ||w_j|| <= r. Official: 10 epochs, SGD momentum 0.9, LR 0.01 cosine, weight decay 0.1,
 * instance-balanced batches, and r relative to the stage-1 norms,
 * r = min_j ||w_j|| + threshold (max_j ||w_j|| - min_j ||w_j||) with threshold 0.1; the bias is not
 * constrained. (The official loss weights are effective numbers with beta 0.9999, which are 1/n_j
 * to within 5% for n_j <= 1000.)
 */
import { z } from 'zod';
import { ConfigError } from '../errors.ts';
import { SGD_DEFAULTS } from '../optim/settings.ts';
import { linearClassifier, requireClassifier } from './joint.ts';
import { rowNorms } from './linear-ops.ts';
import { type HeadTrainingOptions, trainHead } from './train-head.ts';
import { defineMethod, type Stage2Classifier, type Stage2Context } from './types.ts';

/** Weight balancing's own settings, the official recipe's (its LR and weight decay are its own, not stage 1's). */
const options = z.object({
  wbEpochs: z.number().int().positive().default(10).describe('weight balancing: epochs'),
  wbLr: z.number().positive().default(0.01).describe('weight balancing: learning rate'),
  wbWeightDecay: z.number().min(0).default(0.1).describe('weight balancing: weight decay'),
  wbThreshold: z
    .number()
    .min(0)
    .max(1)
    .default(0.1)
    .describe('weight balancing: MaxNorm radius, from the smallest (0) to the largest (1) stage-1 row norm'),
});

export interface WeightBalancingOptions extends HeadTrainingOptions {
  /** MaxNorm radius as a fraction of the way from the smallest to the largest stage-1 row norm. */
  threshold?: number;
  /** An absolute radius instead (overrides `threshold`). */
  maxNorm?: number;
}

/** Class-balanced loss weights: 1 / n_j, normalised to sum to C. */
export function classBalancedWeights(counts: readonly number[]): Float32Array {
  const empty = counts.indexOf(0);
  if (empty >= 0) throw new ConfigError(`weight-balancing: class ${empty} has no training image`);
  const inv = counts.map((n) => 1 / n);
  const s = inv.reduce((a, b) => a + b, 0);
  return Float32Array.from(inv, (v) => (v * counts.length) / s);
}

export function weightBalancing(ctx: Stage2Context, opts: WeightBalancingOptions = {}): Stage2Classifier {
  const own = options.parse({});
  const { threshold = own.wbThreshold, maxNorm, ...rest } = opts;
  const o = {
    ...SGD_DEFAULTS,
    epochs: own.wbEpochs,
    lr: own.wbLr,
    weightDecay: own.wbWeightDecay,
    sampler: 'instance-balanced' as const,
    seed: ctx.seed ?? 0,
    ...rest,
  };
  const fs = ctx.features;
  const { weight, bias } = requireClassifier(fs, 'weight-balancing');
  const C = fs.numClasses;
  const d = fs.dim;
  const norms = rowNorms(weight, C, d);
  const lo = Math.min(...norms);
  const radius = maxNorm ?? lo + threshold * (Math.max(...norms) - lo);
  const classWeights = classBalancedWeights(fs.trainCounts);
  const { state, ...r } = trainHead(
    'weight-balancing',
    ctx,
    { kind: 'linear', weight: weight.slice(), bias: bias.slice(), classWeights, maxNorm: radius },
    o,
  );
  return linearClassifier(
    'weight-balancing',
    { weight: state.weight, bias: state.bias, transform: { kind: 'none' } },
    C,
    d,
    {
      ...r,
      maxNorm: radius,
      threshold,
      sampler: o.sampler,
      batchSize: o.batchSize,
      weightDecay: o.weightDecay,
    },
  );
}

export const weightBalancingMethod = defineMethod({
  name: 'weight-balancing',
  label: 'WB',
  description:
    'the joint classifier fine-tuned with class-balanced loss, weight decay and MaxNorm (Alshammari et al. 2022)',
  order: 80,
  needsClassifier: true,
  trains: true,
  options,
  create: (ctx, o) =>
    weightBalancing(ctx, {
      ...ctx.head,
      epochs: o.wbEpochs,
      lr: o.wbLr,
      weightDecay: o.wbWeightDecay,
      threshold: o.wbThreshold,
    }),
});
