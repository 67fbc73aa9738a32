/** Overall test top-1 of the stage-1 (joint) classifier on a FeatureSet. */
import { linearLogits } from '../classifiers/linear-ops.ts';
import { logitSession } from '../classifiers/sharded/logit-threads.ts';
import { argmaxRows, defaultChunkRows } from '../eval/metrics.ts';
import { type FeatureSet, featureRows } from '../features/feature-set.ts';

/** A block of test rows at a time (defaultChunkRows): the test logits [n, C] never exist whole. */
export function accuracyOfFeatures(
  fs: FeatureSet,
  chunkRows = defaultChunkRows(fs.numClasses, fs.dim),
): number {
  if (!fs.classifier) return Number.NaN;
  const { dim: d, numClasses: C } = fs;
  const { weight, bias } = fs.classifier;
  const labels = fs.test.labels;
  const n = labels.length;
  const step = Math.max(1, Math.floor(chunkRows));
  // The weight packed once, not at every block (the same logits as linearLogits).
  const session = logitSession({ transform: { kind: 'none' }, weight, bias }, C, d);
  let c = 0;
  try {
    for (let s = 0; s < n; s += step) {
      const m = Math.min(step, n - s);
      const f = featureRows(fs.test, d, s, m);
      const p = argmaxRows(session ? session.logits(f, m) : linearLogits(f, m, d, weight, bias, C), m, C);
      for (let i = 0; i < m; i++) if (p[i] === labels[s + i]) c++;
    }
  } finally {
    session?.close();
  }
  return c / n;
}
