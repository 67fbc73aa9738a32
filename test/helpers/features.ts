/**
 * A long-tailed FeatureSet for stage-2 tests: C classes of Gaussian rows around random means,
 * training counts max(min, round(head * decay^c)), balanced val / test sets, and a joint classifier
 * biased towards the head (weight 0.3 * mean * (1 + growth * c), bias biasStep * (C - c)).
 */
import type { FeatureSet } from '../../src/features/feature-set.ts';
import { gaussianClasses } from '../../src/features/synthetic.ts';
import { createRng } from '../../src/random/rng.ts';

export interface LongTailedFeaturesOptions {
  seed: number;
  C: number;
  d: number;
  head: number;
  decay: number;
  min: number;
  noise: number;
  /** Validation images per class; null for no validation set. */
  valPer: number | null;
  testPer: number;
  growth?: number;
  biasStep: number;
}

export function longTailedFeatures(o: LongTailedFeaturesOptions): FeatureSet {
  const { C, d } = o;
  const rng = createRng(o.seed);
  const counts = Array.from({ length: C }, (_, c) => Math.max(o.min, Math.round(o.head * o.decay ** c)));
  const means = Float32Array.from({ length: C * d }, () => rng.normal());
  const draw = (per: number[]) => gaussianClasses(means, d, per, o.noise, rng);
  const growth = o.growth ?? 0;
  return {
    dim: d,
    numClasses: C,
    classNames: Array.from({ length: C }, (_, i) => `c${i}`),
    trainCounts: counts,
    train: draw(counts),
    val: o.valPer === null ? null : draw(new Array(C).fill(o.valPer)),
    test: draw(new Array(C).fill(o.testPer)),
    classifier: {
      weight: Float32Array.from(
        { length: C * d },
        (_, i) => 0.3 * means[i]! * (growth === 0 ? 1 : 1 + growth * Math.floor(i / d)),
      ),
      bias: Float32Array.from({ length: C }, (_, c) => o.biasStep * (C - c)),
    },
  };
}
