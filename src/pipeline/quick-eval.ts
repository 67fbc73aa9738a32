/** Overall test top-1 of the stage-1 (joint) classifier on a FeatureSet. */
import { linearLogits } from '../classifiers/linear-ops.ts';
import { argmaxRows } from '../eval/metrics.ts';
import type { FeatureSet } from '../features/feature-set.ts';

export function accuracyOfFeatures(fs: FeatureSet): number {
  if (!fs.classifier) return Number.NaN;
  const n = fs.test.labels.length;
  const p = argmaxRows(
    linearLogits(fs.test.features, n, fs.dim, fs.classifier.weight, fs.classifier.bias, fs.numClasses),
    n,
    fs.numClasses,
  );
  let c = 0;
  for (let i = 0; i < n; i++) if (p[i] === fs.test.labels[i]) c++;
  return c / n;
}
