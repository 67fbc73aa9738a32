/**
 * LWS, learnable weight scaling: logits = s_i * (f . w_i + b_i) with the joint W and b frozen;
 * only the C scales (initialised to 1) are trained, with class-aware sampling. The bias is
 * scaled too, as the official code multiplies the layer's output. Official: 5 epochs.
 */
import * as tf from '@tensorflow/tfjs-core';
import { CRT_DEFAULTS } from './crt.ts';
import { linearClassifier, requireClassifier } from './joint.ts';
import { type HeadTrainingOptions, trainHead } from './train-head.ts';
import type { Stage2Classifier, Stage2Context } from './types.ts';

export const LWS_DEFAULTS = { ...CRT_DEFAULTS, epochs: 5 };

export function lws(ctx: Stage2Context, opts: HeadTrainingOptions = {}): Stage2Classifier {
  const o = { ...LWS_DEFAULTS, seed: ctx.seed ?? 0, ...opts };
  const fs = ctx.features;
  const { weight, bias } = requireClassifier(fs, 'lws');
  const C = fs.numClasses;
  const d = fs.dim;
  const w = tf.tidy(() => tf.transpose(tf.tensor2d(weight, [C, d]))); // [d, C], once: no transpose per step
  const b = tf.tensor1d(bias);
  const scales = tf.variable(tf.ones([C]), true);
  try {
    const r = trainHead(
      'lws',
      ctx,
      [scales],
      (x) => tf.mul(tf.add(tf.matMul(x, w), b), scales) as tf.Tensor2D,
      o,
    );
    const s = scales.dataSync() as Float32Array;
    const sw = new Float32Array(C * d);
    const sb = new Float32Array(C);
    for (let i = 0; i < C; i++) {
      for (let j = 0; j < d; j++) sw[i * d + j] = s[i]! * weight[i * d + j]!;
      sb[i] = s[i]! * bias[i]!;
    }
    return linearClassifier('lws', { weight: sw, bias: sb, transform: { kind: 'none' } }, C, d, {
      ...r,
      scales: Array.from(s),
      batchSize: o.batchSize,
      weightDecay: o.weightDecay,
    });
  } finally {
    w.dispose();
    b.dispose();
    scales.dispose();
  }
}
