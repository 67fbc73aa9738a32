/**
 * LWS, learnable weight scaling: logits = s_i * (f . w_i + b_i) with the joint W and b frozen;
 * only the C scales (initialised to 1) are trained, with class-aware sampling. The bias is
 * scaled too, as the official code multiplies the layer's output. Official: 5 epochs.
 */
import { z } from 'zod';
import { SGD_DEFAULTS } from '../optim/settings.ts';
import { linearClassifier, requireClassifier } from './joint.ts';
import { type HeadTrainingOptions, trainHead } from './train-head.ts';
import { defineMethod, type Stage2Classifier, type Stage2Context } from './types.ts';

/** LWS's own settings (the head's LR, batch size and weight decay follow stage 1: ctx.head). */
const options = z.object({
  lwsEpochs: z.number().int().positive().default(5).describe('LWS epochs'),
});

export function lws(ctx: Stage2Context, opts: HeadTrainingOptions = {}): Stage2Classifier {
  const o = { ...SGD_DEFAULTS, seed: ctx.seed ?? 0, epochs: options.parse({}).lwsEpochs, ...opts };
  const fs = ctx.features;
  const { weight, bias } = requireClassifier(fs, 'lws');
  const C = fs.numClasses;
  const d = fs.dim;
  const { state, ...r } = trainHead('lws', ctx, { kind: 'scaled', weight, bias }, o);
  const s = state.scales!;
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
}

export const lwsMethod = defineMethod({
  name: 'lws',
  label: 'LWS',
  description: 'learnable per-class scales on the frozen joint classifier',
  order: 50,
  needsClassifier: true,
  trains: true,
  options,
  create: (ctx, o) => lws(ctx, { ...ctx.head, epochs: o.lwsEpochs }),
});
