/**
 * tau-normalised classifier: w_i <- w_i / ||w_i||^tau, bias dropped. tau = 0 is the joint
 * classifier without its bias, tau = 1 plain normalisation. tau is chosen on the balanced
 * validation set over 0, 0.1, ..., 2.0 (never on the test set); the whole sweep is kept.
 */
import { z } from 'zod';
import type { FeatureSet } from '../features/feature-set.ts';
import { linearClassifier, requireClassifier } from './joint.ts';
import { rowNorms } from './linear-ops.ts';
import { choose, columnSweep, type TauTuningOptions, tauTuningOptions, UNIT_GRID_0_2 } from './tuning.ts';
import { defineMethod, type Stage2Classifier, type TuningSpec } from './types.ts';

export const TAU_GRID = UNIT_GRID_0_2;

/** W [C, d] with each row divided by its norm to the power tau. */
export function tauNormalize(weight: Float32Array, C: number, d: number, { tau = 1 } = {}): Float32Array {
  const norms = rowNorms(weight, C, d);
  const out = new Float32Array(C * d);
  for (let i = 0; i < C; i++) {
    const s = norms[i]! === 0 ? 1 : norms[i]! ** -tau;
    for (let j = 0; j < d; j++) out[i * d + j] = weight[i * d + j]! * s;
  }
  return out;
}

export type TauNormOptions = TauTuningOptions;

const TUNING: TuningSpec = { param: 'tau', grid: TAU_GRID, fallback: 1 };

export function tauNorm(fs: FeatureSet, opts: TauNormOptions = {}): Stage2Classifier {
  const { weight } = requireClassifier(fs, 'tau-norm');
  const C = fs.numClasses;
  const d = fs.dim;
  const spec = { ...TUNING, grid: opts.grid ?? TAU_GRID };
  // tau only rescales the columns of the logits: z_tau[i, c] = (f_i . w_c) / ||w_c||^tau. So the
  // sweep needs one matrix product per split, then a cheap rescale + argmax per tau.
  const norms = rowNorms(weight, C, d).map((n) => (n === 0 ? 1 : n));
  const sweep = columnSweep(
    fs,
    { weight, bias: null },
    spec.grid,
    (tau) => ({ scale: Float32Array.from(norms, (v) => v ** -tau) }),
    opts.thresholds,
    undefined,
    opts.threads,
  );
  const tuned = choose('tau-norm', spec, sweep, opts.tau, opts.warn);
  const w = tauNormalize(weight, C, d, { tau: tuned.value });
  return {
    ...linearClassifier(
      'tau-norm',
      { weight: w, bias: new Float32Array(C), transform: { kind: 'none' } },
      C,
      d,
    ),
    tuned,
  };
}

export const tauNormMethod = defineMethod({
  name: 'tau-norm',
  label: 'tau-norm',
  description: 'w_i / ||w_i||^tau, tau chosen on the validation set',
  order: 40,
  needsClassifier: true,
  trains: false,
  options: z.object({
    tau: z
      .number()
      .min(0)
      .max(2)
      .optional()
      .describe('tau-norm: use this tau instead of choosing it on the validation set'),
  }),
  tuning: TUNING,
  create: (ctx, o) => tauNorm(ctx.features, tauTuningOptions(ctx, o.tau)),
});
