import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LogitRows } from '../eval/metrics.ts';
import { SHIFTED_PRIORS, shiftedCounts, shiftedPrior, shiftedTestIndices } from '../eval/shifted-priors.ts';
import type { FeatureSet } from '../features/feature-set.ts';
import { createRng } from '../random/rng.ts';
import { evaluateShifted, ShiftedEvaluator } from './stage2.ts';

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

  it("'calibrated' is the deployed head's accuracy, argmax z / T + b with no prior, in blocks; null without calibration", () => {
    const C = 4;
    const per = 30;
    const trainCounts = [200, 60, 20, 6];
    const labels = Int32Array.from({ length: C * per }, (_, i) => (i * 7) % C);
    const fs = {
      numClasses: C,
      trainCounts,
      test: { labels, features: new Float32Array(0) },
    } as unknown as FeatureSet;
    for (let seed = 1; seed <= 5; seed++) {
      const rng = createRng(seed);
      const n = labels.length;
      const logits = Float32Array.from({ length: n * C }, () => rng.normal()); // [n, C]
      for (let i = 0; i < n; i++) logits[i * C + labels[i]!]! += 0.8;
      // Head-biased logits, biases that undo part of it: the calibrated argmax differs from the raw one.
      for (let i = 0; i < n; i++) for (let c = 0; c < C; c++) logits[i * C + c]! += 1.2 - 0.4 * c;
      const T = 0.7;
      const bias = [-0.9, -0.2, 0.3, 0.8];
      const rows = new LogitRows(n, C);
      rows.add(logits, n);
      const sh = new ShiftedEvaluator(fs, seed, { temperature: T, bias, calibrated: true });
      for (let s = 0; s < n; s += 17)
        sh.add(logits.subarray(s * C, Math.min(n, s + 17) * C), s, Math.min(17, n - s));
      const out = sh.results(rows);
      let differs = false;
      for (const r of out) {
        const p = SHIFTED_PRIORS.find((q) => q.direction === r.direction && q.ratio === r.ratio)!;
        let hit = 0;
        for (const i of shiftedTestIndices(labels, trainCounts, p, seed)) {
          const row = Array.from(logits.subarray(i * C, (i + 1) * C), (v, c) => v / T + bias[c]!);
          if (row.indexOf(Math.max(...row)) === labels[i]) hit++;
        }
        const want = Math.round((hit / r.n) * 10000) / 100;
        assert.equal(r.calibrated, want, `seed ${seed} ${r.prior}`);
        differs ||= want !== r.overall;
      }
      assert.ok(differs, `seed ${seed}: the biases move some set's accuracy (else the test proves nothing)`);
      const none = new ShiftedEvaluator(fs, seed, { calibrated: false });
      none.add(logits, 0, n);
      assert.ok(none.results(rows).every((r) => r.calibrated === null));
      assert.ok(evaluateShifted(logits, fs, seed).every((r) => r.calibrated === undefined));
    }
  });
});
