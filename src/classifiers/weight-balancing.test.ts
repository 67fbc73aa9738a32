import assert from 'node:assert/strict';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { initBackend } from '../backend/backend.ts';
import { loadFeatureFile } from '../features/feature-set.ts';
import { rowNorms } from './linear-ops.ts';
import { classBalancedWeights, weightBalancing } from './weight-balancing.ts';

const FIX = join(import.meta.dirname, '../../test/fixtures');

describe('weight balancing (stage 2)', () => {
  before(async () => {
    await initBackend('wasm');
  });

  it('class-balanced weights are proportional to 1 / n_j and sum to C', () => {
    const w = classBalancedWeights([100, 50, 10]);
    const inv = [0.01, 0.02, 0.1];
    const s = inv.reduce((a, b) => a + b, 0);
    for (let c = 0; c < 3; c++) assert.ok(Math.abs(w[c]! - (3 * inv[c]!) / s) < 1e-6);
  });

  it('fine-tunes the joint classifier with rows inside the official relative MaxNorm radius', () => {
    const fs = loadFeatureFile(join(FIX, 'features_golden.npz'));
    const C = fs.numClasses;
    const before = rowNorms(fs.classifier!.weight, C, fs.dim);
    const lo = Math.min(...before);
    const clf = weightBalancing({ features: fs, seed: 1 }, { epochs: 3, batchSize: 32 });
    const radius = clf.details.maxNorm as number;
    assert.ok(Math.abs(radius - (lo + 0.1 * (Math.max(...before) - lo))) < 1e-9);
    assert.ok(Math.max(...before) > radius, 'the radius binds on this file');
    for (const [c, n] of clf.weightNorms().entries())
      assert.ok(n <= radius + 1e-5, `row ${c}: ${n} > ${radius}`);
    assert.equal(clf.details.sampler, 'instance-balanced');
    assert.equal(clf.details.weightDecay, 0.1);
    // An absolute radius overrides the relative one.
    const abs = weightBalancing({ features: fs, seed: 1 }, { epochs: 1, batchSize: 32, maxNorm: 0.05 });
    for (const n of abs.weightNorms()) assert.ok(n <= 0.05 + 1e-6);
  });
});
