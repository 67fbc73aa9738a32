import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { initBackend } from '../backend/backend.ts';
import type { FeatureSet } from '../features/feature-set.ts';
import { gaussianClasses } from '../features/synthetic.ts';
import { createRng } from '../random/rng.ts';
import { crt } from './crt.ts';
import { lws } from './lws.ts';
import { rowsToKeep } from './train-head.ts';

function features(seed: number): FeatureSet {
  const rng = createRng(seed);
  const C = 6;
  const d = 5;
  const counts = [90, 40, 20, 9, 5, 3];
  const means = Float32Array.from({ length: C * d }, () => rng.normal());
  return {
    dim: d,
    numClasses: C,
    classNames: counts.map((_, i) => `c${i}`),
    trainCounts: counts,
    train: gaussianClasses(means, d, counts, 1, rng),
    val: null,
    test: gaussianClasses(means, d, new Array(C).fill(2), 1, rng),
    classifier: { weight: means.slice(), bias: new Float32Array(C) },
  };
}

describe('stage-2 training progress (what the progress bar and its ETA are fed)', () => {
  before(async () => {
    await initBackend('wasm');
  });

  it('reports every step of every class-aware epoch once, in order, against one fixed total', () => {
    const fs = features(1);
    const n = fs.train.labels.length; // 167
    for (const [make, epochs, batchSize] of [
      [crt, 3, 16],
      [lws, 2, 50],
    ] as const) {
      const calls: [string, number, number][] = [];
      make(
        { features: fs, seed: 2, onProgress: (m, done, total) => calls.push([m, done, total]) },
        { epochs, batchSize },
      );
      // One epoch is floor(N / batch) steps whatever the sampler (class-aware draws that many batches).
      const total = epochs * Math.floor(n / batchSize);
      assert.equal(calls.length, total);
      calls.forEach(([m, done, t], k) => {
        assert.equal(m, make === crt ? 'crt' : 'lws');
        assert.equal(done, k + 1);
        assert.equal(t, total);
      });
    }
  });
});

describe("LWS's kept products", () => {
  before(async () => {
    await initBackend('wasm');
  });

  it('keeps the rows drawn at least twice in the run, most-drawn first, up to the budget', () => {
    const orders = [Int32Array.of(0, 1, 1, 2, 9, 9), Int32Array.of(3, 1, 0, 2, 9, 9)];
    // Only the first 4 of each epoch are drawn: row 1 three times, rows 0 and 2 twice, row 3 once.
    const keep = (budget: number) => [...rowsToKeep((e) => orders[e]!, 2, 4, 10, budget)];
    assert.deepEqual(keep(10), [1, 0, 2]);
    assert.deepEqual(keep(2.7), [1, 0]);
    assert.deepEqual(keep(0), []);
  });

  it('change no bit of the scales or the losses, whatever share of memory they may take', () => {
    const fs = features(3);
    const run = (cacheShare: number) =>
      lws({ features: fs, seed: 4 }, { epochs: 3, batchSize: 16, cacheShare });
    const want = run(0);
    for (const share of [0.05, 1]) {
      const got = run(share);
      assert.deepEqual(got.details.scales, want.details.scales, `share ${share}`);
      assert.deepEqual(got.details.losses, want.details.losses, `share ${share}`);
    }
  });
});
