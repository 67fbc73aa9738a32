/**
 * A small many-class feature file for report tests: `classes` Gaussian clouds in `dim`
 * dimensions, training counts an exponential long tail (60 down to 60 / imbalance), a few
 * validation and test rows per class, and a stage-1 classifier biased towards the head (so Joint,
 * tau-norm and LWS have something to correct). Seeded: the same file every time.
 */
import { exponentialCounts } from '../../src/data/long-tail.ts';
import { saveFeatureFile } from '../../src/features/feature-set.ts';
import { gaussianClasses } from '../../src/features/synthetic.ts';
import { createRng } from '../../src/random/rng.ts';

export function writeSyntheticFeatures(
  path: string,
  opts: { classes: number; dim?: number; testPerClass?: number; imbalance?: number },
): void {
  const C = opts.classes;
  const d = opts.dim ?? 32;
  const counts = exponentialCounts(C, 60, opts.imbalance ?? 30);
  const rng = createRng(7);
  const means = Float32Array.from({ length: C * d }, () => rng.normal());
  const draw = (per: number[]) => gaussianClasses(means, d, per, 0.9, rng);
  const weight = new Float32Array(C * d);
  const bias = new Float32Array(C);
  for (let c = 0; c < C; c++) {
    for (let j = 0; j < d; j++) weight[c * d + j] = means[c * d + j]! * (0.5 + Math.log(counts[c]!) / 4);
    bias[c] = Math.log(counts[c]!);
  }
  saveFeatureFile(path, {
    dim: d,
    numClasses: C,
    classNames: Array.from({ length: C }, (_, c) => String(c)),
    trainCounts: counts,
    train: draw(counts),
    val: draw(new Array<number>(C).fill(2)),
    test: draw(new Array<number>(C).fill(opts.testPerClass ?? 3)),
    classifier: { weight, bias },
  });
}
