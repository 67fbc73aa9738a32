/**
 * cRT, classifier re-training: a re-initialised linear layer (weight and bias, PyTorch's
 * nn.Linear initialisation) trained on the frozen features with class-aware sampling.
 * Official: 10 epochs, SGD momentum 0.9, cosine LR from the stage-1 LR, same weight decay.
 */
import { z } from 'zod';
import type { FeatureSet } from '../features/feature-set.ts';
import { makeLinearHead } from '../models/linear.ts';
import { SGD_DEFAULTS } from '../optim/settings.ts';
import { createRng } from '../random/rng.ts';
import { linearClassifier } from './joint.ts';
import { type HeadTrainingOptions, trainHead } from './train-head.ts';
import { defineMethod, type Stage2Classifier, type Stage2Context } from './types.ts';

/** cRT's own settings (the head's LR, batch size and weight decay follow stage 1: ctx.head). */
const options = z.object({
  crtEpochs: z.number().int().positive().default(10).describe('cRT epochs'),
});

/** A fresh linear layer [C, d] + [C] initialised as PyTorch's nn.Linear, from the stream (seed, salt). */
export function initLinear(fs: FeatureSet, seed: number, salt = 0xc47, name = 'crt') {
  const head = makeLinearHead(fs.dim, fs.numClasses, createRng(seed, salt), name);
  const init = {
    kind: 'linear' as const,
    weight: (head.weight.dataSync() as Float32Array).slice(),
    bias: (head.bias.dataSync() as Float32Array).slice(),
  };
  head.dispose();
  return init;
}

export function crt(ctx: Stage2Context, opts: HeadTrainingOptions = {}): Stage2Classifier {
  const o = { ...SGD_DEFAULTS, seed: ctx.seed ?? 0, epochs: options.parse({}).crtEpochs, ...opts };
  const fs = ctx.features;
  // The initial layer as PyTorch's nn.Linear, drawn from the same stream as before.
  const { state, ...r } = trainHead('crt', ctx, initLinear(fs, o.seed), o);
  return linearClassifier(
    'crt',
    { weight: state.weight, bias: state.bias, transform: { kind: 'none' } },
    fs.numClasses,
    fs.dim,
    { ...r, batchSize: o.batchSize, weightDecay: o.weightDecay },
  );
}

export const crtMethod = defineMethod({
  name: 'crt',
  label: 'cRT',
  description: 're-initialised linear layer re-trained with class-aware sampling',
  order: 30,
  needsClassifier: false,
  trains: true,
  options,
  create: (ctx, o) => crt(ctx, { ...ctx.head, epochs: o.crtEpochs }),
});
