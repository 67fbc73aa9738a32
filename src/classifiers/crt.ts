/**
 * cRT, classifier re-training: a re-initialised linear layer (weight and bias, PyTorch's
 * nn.Linear initialisation) trained on the frozen features with class-aware sampling.
 * Official: 10 epochs, SGD momentum 0.9, cosine LR from the stage-1 LR, same weight decay.
 */
import { makeLinearHead } from '../models/linear.ts';
import { createRng } from '../random/rng.ts';
import { linearClassifier } from './joint.ts';
import { type HeadTrainingOptions, trainHead } from './train-head.ts';
import type { Stage2Classifier, Stage2Context } from './types.ts';

export const CRT_DEFAULTS = {
  epochs: 10,
  batchSize: 128,
  lr: 0.1,
  weightDecay: 5e-4,
  momentum: 0.9,
  samplesPerClass: 4,
  seed: 0,
};

export function crt(ctx: Stage2Context, opts: HeadTrainingOptions = {}): Stage2Classifier {
  const o = { ...CRT_DEFAULTS, seed: ctx.seed ?? 0, ...opts };
  const fs = ctx.features;
  // The initial layer as PyTorch's nn.Linear, drawn from the same stream as before.
  const head = makeLinearHead(fs.dim, fs.numClasses, createRng(o.seed, 0xc47), 'crt');
  const init = {
    kind: 'linear' as const,
    weight: (head.weight.dataSync() as Float32Array).slice(),
    bias: (head.bias.dataSync() as Float32Array).slice(),
  };
  head.dispose();
  const { state, ...r } = trainHead('crt', ctx, init, o);
  return linearClassifier(
    'crt',
    { weight: state.weight, bias: state.bias, transform: { kind: 'none' } },
    fs.numClasses,
    fs.dim,
    { ...r, batchSize: o.batchSize, weightDecay: o.weightDecay },
  );
}
