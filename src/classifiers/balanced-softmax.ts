/**
 * Balanced softmax as a stage-2 head (Ren et al., "Balanced Meta-Softmax for Long-Tailed Visual
 * Recognition", NeurIPS 2020; the logit-adjusted loss of Menon et al., ICLR 2021): a re-initialised
 * linear layer (as cRT, with cRT's schedule) trained with CE(z + tau log pi), pi the training prior,
 * and used with z alone. The offset enters the softmax only (sharded/shard-step.ts).
 *
 * Sampling defaults to instance-balanced, as the official recipe: the loss already corrects for the
 * prior, and class-aware sampling on top corrects twice (the head then favours the tail).
 */
import { z } from 'zod';
import { SGD_DEFAULTS } from '../optim/settings.ts';
import { logPrior } from '../sampling/probabilities.ts';
import { initLinear } from './crt.ts';
import { linearClassifier } from './joint.ts';
import { type HeadTrainingOptions, trainHead } from './train-head.ts';
import { defineMethod, type Stage2Classifier, type Stage2Context } from './types.ts';

/** Balanced softmax's own settings (the head's LR, batch size and weight decay follow stage 1: ctx.head). */
const options = z.object({
  bsEpochs: z.number().int().positive().default(10).describe('balanced softmax: epochs'),
  bsSampler: z
    .enum(['instance-balanced', 'class-aware'])
    .default('instance-balanced')
    .describe('balanced softmax: stage-2 sampler (class-aware with this loss corrects the prior twice)'),
  bsTau: z.number().min(0).max(5).default(1).describe('balanced softmax: scale of the log-prior offset'),
});

export interface BalancedSoftmaxOptions extends HeadTrainingOptions {
  /** The offset's scale: 1 is balanced softmax. */
  tau?: number;
}

export function balancedSoftmax(ctx: Stage2Context, opts: BalancedSoftmaxOptions = {}): Stage2Classifier {
  const own = options.parse({});
  const { tau = own.bsTau, ...rest } = opts;
  const o = { ...SGD_DEFAULTS, epochs: own.bsEpochs, sampler: own.bsSampler, seed: ctx.seed ?? 0, ...rest };
  const fs = ctx.features;
  const offset = logPrior(fs.trainCounts, 'balanced-softmax').map((v) => tau * v); // [C]
  const init = initLinear(fs, o.seed, 0xb5, 'balanced-softmax');
  const { state, ...r } = trainHead('balanced-softmax', ctx, { ...init, offset }, o);
  return linearClassifier(
    'balanced-softmax',
    { weight: state.weight, bias: state.bias, transform: { kind: 'none' } },
    fs.numClasses,
    fs.dim,
    { ...r, sampler: o.sampler, tau, batchSize: o.batchSize, weightDecay: o.weightDecay },
  );
}

export const balancedSoftmaxMethod = defineMethod({
  name: 'balanced-softmax',
  label: 'Bal. softmax',
  description: 're-initialised linear layer trained with CE(z + log prior), used with z (Ren et al. 2020)',
  order: 70,
  needsClassifier: false,
  trains: true,
  options,
  create: (ctx, o) =>
    balancedSoftmax(ctx, { ...ctx.head, epochs: o.bsEpochs, sampler: o.bsSampler, tau: o.bsTau }),
});
