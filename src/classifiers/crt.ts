/**
 * cRT, classifier re-training: a re-initialised linear layer (weight and bias, PyTorch's
 * nn.Linear initialisation) trained on the frozen features with class-aware sampling.
 * Official: 10 epochs, SGD momentum 0.9, cosine LR from the stage-1 LR, same weight decay.
 */
import * as tf from '@tensorflow/tfjs-core';
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
  const head = makeLinearHead(fs.dim, fs.numClasses, createRng(o.seed, 0xc47), 'crt');
  // Trained as W^T [d, C] so the forward product needs no transpose of the weight each step
  // (the same layer and the same SGD; weight decay and momentum are element-wise).
  const wT = tf.variable(
    tf.tidy(() => tf.transpose(head.weight)),
    true,
  );
  try {
    const r = trainHead(
      'crt',
      ctx,
      [wT, head.bias],
      (x) => tf.add(tf.matMul(x, wT), head.bias) as tf.Tensor2D,
      o,
    );
    const wBack = tf.tidy(() => tf.transpose(wT));
    const weight = wBack.dataSync() as Float32Array;
    wBack.dispose();
    const bias = head.bias.dataSync() as Float32Array;
    return linearClassifier(
      'crt',
      { weight: weight.slice(), bias: bias.slice(), transform: { kind: 'none' } },
      fs.numClasses,
      fs.dim,
      {
        ...r,
        batchSize: o.batchSize,
        weightDecay: o.weightDecay,
      },
    );
  } finally {
    wT.dispose();
    head.dispose();
  }
}
