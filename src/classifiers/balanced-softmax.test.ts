import assert from 'node:assert/strict';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { initBackend } from '../backend/backend.ts';
import { loadFeatureFile } from '../features/feature-set.ts';
import { balancedSoftmax } from './balanced-softmax.ts';

const FIX = join(import.meta.dirname, '../../test/fixtures');

describe('balanced softmax as a stage-2 head', () => {
  before(async () => {
    await initBackend('wasm');
  });

  it('samples instance-balanced by default (class-aware on request) and trains: losses fall', () => {
    const fs = loadFeatureFile(join(FIX, 'features_golden.npz'));
    const ctx = { features: fs, seed: 1 };
    const o = { epochs: 2, batchSize: 32 };
    assert.equal(balancedSoftmax(ctx, o).details.sampler, 'instance-balanced');
    const ca = balancedSoftmax(ctx, { ...o, sampler: 'class-aware' });
    assert.equal(ca.details.sampler, 'class-aware');
    for (const h of [ca, balancedSoftmax(ctx, { ...o, tau: 0 })]) {
      const l = h.details.losses as number[];
      assert.ok(l[1]! < l[0]!, `${h.method}: losses ${l}`);
    }
  });
});
