/**
 * Prior swap for a known target prior (PC softmax, Hong et al., "Disentangling Label Distribution
 * for Long-tailed Visual Recognition" (LADE), CVPR 2021): scores f . w_c + b_c - log p_train(c) +
 * log p_target(c) with the stage-1 (joint) classifier. The default target is uniform, which makes
 * it post-hoc logit adjustment with tau = 1; a target equal to the training prior gives Joint.
 * Folded: the same weight, bias b - log p_train + log p_target.
 */
import { z } from 'zod';
import { ConfigError } from '../errors.ts';
import type { FeatureSet } from '../features/feature-set.ts';
import { logPrior } from '../sampling/probabilities.ts';
import { linearClassifier, requireClassifier } from './joint.ts';
import { defineMethod, type Stage2Classifier } from './types.ts';

export interface PriorSwapOptions {
  /** Target class prior, one positive value per class (normalised here). */
  targetPrior?: readonly number[];
  /**
   * A long-tailed target instead: p_c proportional to ratio^(-rank_c / (C - 1)), rank_c the class's
   * place by training images (most first), so the head stays the head; 1 is uniform, below 1 reverses.
   */
  targetImbalance?: number;
}

/** The target prior [C] (sums to 1) the options describe; uniform by default. */
export function targetPrior(trainCounts: readonly number[], o: PriorSwapOptions = {}): Float64Array {
  const C = trainCounts.length;
  if (o.targetPrior !== undefined && o.targetImbalance !== undefined)
    throw new ConfigError('prior-swap: give a target prior or a target imbalance, not both');
  let p: number[];
  if (o.targetPrior !== undefined) {
    if (o.targetPrior.length !== C)
      throw new ConfigError(
        `prior-swap: the target prior has ${o.targetPrior.length} values for ${C} classes`,
      );
    const bad = o.targetPrior.findIndex((v) => !(v > 0 && Number.isFinite(v)));
    if (bad >= 0)
      throw new ConfigError(
        `prior-swap: target prior values must be positive, got ${o.targetPrior[bad]} for class ${bad}`,
      );
    p = [...o.targetPrior];
  } else if (o.targetImbalance !== undefined) {
    const r = o.targetImbalance;
    if (!(r > 0)) throw new ConfigError(`prior-swap: the target imbalance must be positive, got ${r}`);
    const rank = new Array<number>(C);
    trainCounts
      .map((n, c) => ({ n, c }))
      .sort((a, b) => b.n - a.n || a.c - b.c)
      .forEach(({ c }, k) => {
        rank[c] = k;
      });
    p = rank.map((k) => r ** (-k / Math.max(1, C - 1)));
  } else {
    p = new Array<number>(C).fill(1);
  }
  const s = p.reduce((a, b) => a + b, 0);
  return Float64Array.from(p, (v) => v / s);
}

export function priorSwap(fs: FeatureSet, opts: PriorSwapOptions = {}): Stage2Classifier {
  const { weight, bias } = requireClassifier(fs, 'prior-swap');
  const lTrain = logPrior(fs.trainCounts, 'prior-swap'); // [C]
  const target = targetPrior(fs.trainCounts, opts); // [C]
  const b = Float32Array.from(bias, (v, c) => v - lTrain[c]! + Math.log(target[c]!));
  return linearClassifier(
    'prior-swap',
    { weight, bias: b, transform: { kind: 'none' } },
    fs.numClasses,
    fs.dim,
    {
      targetPrior: Array.from(target, (v) => Math.round(v * 1e6) / 1e6),
    },
  );
}

export const priorSwapMethod = defineMethod({
  name: 'prior-swap',
  label: 'prior swap',
  description:
    'joint logits - log(train prior) + log(target prior), uniform target by default (PC softmax, LADE)',
  order: 90,
  needsClassifier: true,
  trains: false,
  options: z.object({
    targetPrior: z
      .array(z.number().positive())
      .optional()
      .describe('prior swap: the target class prior, one value per class (normalised; default uniform)'),
    targetImbalance: z
      .number()
      .positive()
      .optional()
      .describe(
        'prior swap: a long-tailed target prior with this head/tail ratio instead (1 = uniform, < 1 reversed)',
      ),
  }),
  create: (ctx, o) =>
    priorSwap(ctx.features, {
      ...(o.targetPrior !== undefined ? { targetPrior: o.targetPrior } : {}),
      ...(o.targetImbalance !== undefined ? { targetImbalance: o.targetImbalance } : {}),
    }),
});
