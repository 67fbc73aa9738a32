/** Synthetic stage-2 features for the benchmark: [100000, 512] with 1000 long-tailed classes. */
import { exponentialCounts } from '../src/data/long-tail.ts';
import type { FeatureSet } from '../src/features/feature-set.ts';
import { gaussianClasses } from '../src/features/synthetic.ts';
import { createRng } from '../src/random/rng.ts';

/** Synthetic long-tailed features: class means plus noise, a joint classifier biased to the head. */
export function syntheticFeatures(quick: boolean): FeatureSet {
  const C = quick ? 100 : 1000;
  const d = 512;
  const counts = exponentialCounts(C, quick ? 200 : 466, 100); // about 100,000 training rows at full size
  const rng = createRng(1);
  const means = Float32Array.from({ length: C * d }, () => rng.normal());
  const draw = (per: number[]) => gaussianClasses(means, d, per, 2, rng);
  const weight = new Float32Array(C * d);
  for (let c = 0; c < C; c++)
    for (let j = 0; j < d; j++) weight[c * d + j] = (means[c * d + j]! * Math.log(counts[c]! + 1)) / 10;
  // On a SharedArrayBuffer, as loaded feature files are (loadFeatureFile's default): LWS's head
  // workers then read the batch's rows from it by index.
  const train = draw(counts);
  const shared = new Float32Array(new SharedArrayBuffer(4 * train.features.length));
  shared.set(train.features);
  return {
    dim: d,
    numClasses: C,
    classNames: Array.from({ length: C }, (_, i) => String(i)),
    trainCounts: counts,
    train: { ...train, features: shared },
    val: draw(new Array(C).fill(quick ? 5 : 20)),
    test: draw(new Array(C).fill(quick ? 10 : 50)),
    classifier: { weight, bias: new Float32Array(C) },
  };
}
