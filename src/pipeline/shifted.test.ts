import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SHIFTED_PRIORS, shiftedCounts, shiftedPrior, shiftedTestIndices } from '../eval/shifted-priors.ts';
import type { FeatureSet } from '../features/feature-set.ts';
import { createRng } from '../random/rng.ts';
import { evaluateShifted } from './stage2.ts';

describe('evaluation on shifted test priors', () => {
  it('scores every shifted set as an independent loop over its images does, with and without the known prior', () => {
    const C = 5;
    const per = 40;
    const trainCounts = [300, 120, 50, 20, 8];
    const labels = Int32Array.from({ length: C * per }, (_, i) => i % C);
    const rng = createRng(3);
    const logits = Float32Array.from({ length: labels.length * C }, () => rng.normal()); // [n, C]
    for (let i = 0; i < labels.length; i++) logits[i * C + labels[i]!]! += 1; // better than chance
    const fs = {
      numClasses: C,
      trainCounts,
      test: { labels, features: new Float32Array(0) },
    } as unknown as FeatureSet;
    const out = evaluateShifted(logits, fs, 7);
    const shifted = SHIFTED_PRIORS.filter((p) => p.direction !== 'uniform');
    assert.equal(out.length, shifted.length);
    for (const [k, p] of shifted.entries()) {
      const r = out[k]!;
      const idx = shiftedTestIndices(labels, trainCounts, p, 7);
      assert.equal(
        r.n,
        shiftedCounts(trainCounts, per, p).reduce((a, b) => a + b, 0),
      );
      const logPrior = shiftedPrior(trainCounts, per, p).map(Math.log);
      let plain = 0;
      let known = 0;
      for (const i of idx) {
        const row = Array.from(logits.subarray(i * C, (i + 1) * C));
        const arg = (v: number[]) => v.indexOf(Math.max(...v));
        if (arg(row) === labels[i]) plain++;
        if (arg(row.map((v, c) => v + logPrior[c]!)) === labels[i]) known++;
      }
      assert.equal(r.overall, Math.round((plain / idx.length) * 10000) / 100, r.prior);
      assert.equal(r.knownPrior, Math.round((known / idx.length) * 10000) / 100, r.prior);
    }
    assert.deepEqual(evaluateShifted(logits, fs, 7), out, 'same seed, same sets and numbers');
  });
});
