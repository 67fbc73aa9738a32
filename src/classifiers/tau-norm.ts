/**
 * tau-normalised classifier: w_i <- w_i / ||w_i||^tau, bias dropped. tau = 0 is the joint
 * classifier without its bias, tau = 1 plain normalisation. tau is chosen on the balanced
 * validation set over 0, 0.1, ..., 2.0 (never on the test set); the whole sweep is kept.
 */
import * as tf from '@tensorflow/tfjs-core';
import { splitAccuracies } from '../eval/metrics.ts';
import type { ShotThresholds } from '../eval/shot-splits.ts';
import type { FeatureSet } from '../features/feature-set.ts';
import { linearClassifier, requireClassifier } from './joint.ts';
import { linearLogits, rowNorms } from './linear-ops.ts';
import type { Stage2Classifier } from './types.ts';

export const TAU_GRID = Array.from({ length: 21 }, (_, i) => Math.round(i * 10) / 100);

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

export interface TauSweepPoint {
  tau: number;
  val: { overall: number; many: number | null; medium: number | null; few: number | null } | null;
  test: { overall: number; many: number | null; medium: number | null; few: number | null };
}

export interface TauNormOptions {
  /** A fixed tau (skips the choice on the validation set). */
  tau?: number;
  grid?: number[];
  thresholds?: ShotThresholds;
  /** Called when tau must be chosen but there is no validation set (tau = 1 then). */
  warn?: (message: string) => void;
}

export function tauNorm(fs: FeatureSet, opts: TauNormOptions = {}): Stage2Classifier {
  const { weight } = requireClassifier(fs, 'tau-norm');
  const C = fs.numClasses;
  const d = fs.dim;
  const grid = opts.grid ?? TAU_GRID;
  // tau only rescales the columns of the logits: z_tau[i, c] = (f_i . w_c) / ||w_c||^tau. So the
  // sweep needs one matrix product per split, then a cheap rescale + argmax per tau.
  const norms = rowNorms(weight, C, d).map((n) => (n === 0 ? 1 : n));
  const sweepOn = (sp: { features: Float32Array; labels: Int32Array }) => {
    const n = sp.labels.length;
    const z = tf.tensor2d(linearLogits(sp.features, n, d, weight, null, C), [n, C]);
    try {
      return grid.map((tau) => {
        const scale = tf.tensor1d(norms.map((v) => v ** -tau));
        const p = tf.tidy(() => tf.argMax(tf.mul(z, scale), 1));
        const pred = p.dataSync() as Int32Array;
        tf.dispose([p, scale]);
        return splitAccuracies(pred, sp.labels, C, fs.trainCounts, opts.thresholds);
      });
    } finally {
      z.dispose();
    }
  };
  const valSweep = fs.val ? sweepOn(fs.val) : null;
  const testSweep = sweepOn(fs.test);
  const sweep: TauSweepPoint[] = grid.map((tau, i) => ({
    tau,
    val: valSweep ? valSweep[i]! : null,
    test: testSweep[i]!,
  }));
  let tau: number;
  let chosenOn: 'given' | 'val' | 'default';
  if (opts.tau !== undefined) {
    tau = opts.tau;
    chosenOn = 'given';
  } else if (fs.val && fs.val.labels.length > 0) {
    // Best validation accuracy; ties go to the smaller tau (the first in the grid).
    let best = sweep[0]!;
    for (const p of sweep) if (p.val!.overall > best.val!.overall) best = p;
    tau = best.tau;
    chosenOn = 'val';
  } else {
    tau = 1;
    chosenOn = 'default';
    opts.warn?.('tau-norm: no validation set to choose tau on; using tau = 1 (plain normalisation)');
  }
  const w = tauNormalize(weight, C, d, { tau });
  return linearClassifier(
    'tau-norm',
    { weight: w, bias: new Float32Array(C), transform: { kind: 'none' } },
    C,
    d,
    {
      tau,
      tauChosenOn: chosenOn,
      sweep,
    },
  );
}
