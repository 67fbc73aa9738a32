/**
 * Post-hoc logit adjustment (Menon et al., "Long-tail learning via logit adjustment", ICLR 2021):
 * scores f . w_c + b_c - tau log pi_c with the stage-1 (joint) classifier and the training prior
 * pi_c = n_c / N. tau = 1 is the Bayes-optimal rule for the balanced error; tau = 0 is Joint. tau is
 * chosen on the balanced validation set over 0, 0.1, ..., 2.0 (the sweep kept, as tau-norm's).
 * Folded: the same weight, bias b - tau log pi.
 */
import { z } from 'zod';
import type { FeatureSet } from '../features/feature-set.ts';
import { logPrior } from '../sampling/probabilities.ts';
import { linearClassifier, requireClassifier } from './joint.ts';
import { choose, columnSweep, type TauTuningOptions, tauTuningOptions, UNIT_GRID_0_2 } from './tuning.ts';
import { defineMethod, type Stage2Classifier, type TuningSpec } from './types.ts';

export type LogitAdjustOptions = TauTuningOptions;

const TUNING: TuningSpec = { param: 'tau', grid: UNIT_GRID_0_2, fallback: 1 };

export function logitAdjust(fs: FeatureSet, opts: LogitAdjustOptions = {}): Stage2Classifier {
  const { weight, bias } = requireClassifier(fs, 'logit-adjust');
  const C = fs.numClasses;
  const lp = logPrior(fs.trainCounts, 'logit-adjust'); // [C] log n_c / N
  const spec = { ...TUNING, grid: opts.grid ?? TUNING.grid };
  const shift = (tau: number) => Float32Array.from(lp, (v) => -tau * v);
  const sweep = columnSweep(
    fs,
    { weight, bias },
    spec.grid,
    (tau) => ({ shift: shift(tau) }),
    opts.thresholds,
    undefined,
    opts.threads,
  );
  const tuned = choose('logit-adjust', spec, sweep, opts.tau, opts.warn);
  const s = shift(tuned.value);
  const b = Float32Array.from(bias, (v, c) => v + s[c]!);
  return {
    ...linearClassifier('logit-adjust', { weight, bias: b, transform: { kind: 'none' } }, C, fs.dim),
    tuned,
  };
}

export const logitAdjustMethod = defineMethod({
  name: 'logit-adjust',
  label: 'LA post-hoc',
  description:
    'joint logits minus tau log(train prior), tau chosen on the validation set (Menon et al. 2021)',
  order: 60,
  needsClassifier: true,
  trains: false,
  options: z.object({
    laTau: z
      .number()
      .min(0)
      .max(5)
      .optional()
      .describe('post-hoc logit adjustment: use this tau instead of choosing it on the validation set'),
  }),
  tuning: TUNING,
  create: (ctx, o) => logitAdjust(ctx.features, tauTuningOptions(ctx, o.laTau)),
});
