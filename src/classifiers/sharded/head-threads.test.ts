import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { maxDiff } from '../../../test/helpers/arrays.ts';
import { longTailedFeatures } from '../../../test/helpers/features.ts';
import { initBackend } from '../../backend/backend.ts';
import type { FeatureSet } from '../../features/feature-set.ts';
import { createRng } from '../../random/rng.ts';
import { balancedSoftmax } from '../balanced-softmax.ts';
import { crt } from '../crt.ts';
import { lws } from '../lws.ts';
import { MIN_SPLIT_WEIGHTS } from '../train-head.ts';
import { weightBalancing } from '../weight-balancing.ts';
import { ShardedHead } from './head-threads.ts';

/** A long-tailed problem: C classes (100 down to 4 rows), d-dimensional class means plus noise. */
const features = (seed: number, C: number, d: number): FeatureSet =>
  longTailedFeatures({
    seed,
    C,
    d,
    head: 100,
    decay: 0.67,
    min: 4,
    noise: 1,
    valPer: null,
    testPer: 5,
    biasStep: 0.1,
  });

describe('stage-2 heads split by classes over worker threads', () => {
  before(async () => {
    await initBackend('wasm');
  });

  it("LWS's kept products and rows read by index: the same scales to the bit as the gathered batch (1 and 2 threads)", () => {
    // 40 training rows drawn with repeats, as class-aware sampling does.
    const C = 24;
    const d = 40;
    const B = 16;
    const rng = createRng(9);
    // On a SharedArrayBuffer, as loaded features are: the workers read the rows from it.
    const train = new Float32Array(new SharedArrayBuffer(4 * 40 * d));
    for (let i = 0; i < train.length; i++) train[i] = rng.normal();
    const trainLabels = Int32Array.from({ length: 40 }, (_, i) => i % C);
    const weight = Float32Array.from({ length: C * d }, () => rng.normal() * 0.05);
    const bias = Float32Array.from({ length: C }, () => rng.normal() * 0.1);
    const batches = Array.from({ length: 12 }, () =>
      Int32Array.from({ length: B }, () => Math.floor(rng.next() * 40)),
    );
    const run = (threads: number, cacheRows: Int32Array | null, withRows: boolean, byIndex = false) => {
      const head = new ShardedHead({
        kind: 'scaled',
        dim: d,
        numClasses: C,
        weight,
        bias,
        momentum: 0.9,
        weightDecay: 5e-4,
        batchSize: B,
        threads,
        cacheRows,
        features: byIndex ? train : null,
      });
      assert.equal(head.readsRows, byIndex);
      const x = new Float32Array(B * d);
      const y = new Int32Array(B);
      const losses: number[] = [];
      try {
        for (const rows of batches) {
          rows.forEach((r, k) => {
            x.set(train.subarray(r * d, (r + 1) * d), k * d);
            y[k] = trainLabels[r]!;
          });
          losses.push(head.step(byIndex ? null : x, y, 0.5, withRows ? rows : null));
        }
        return { scales: head.finish().scales!, losses };
      } finally {
        head.dispose();
      }
    };
    // (1 and 2 threads differ in the softmax's combination, up to rounding: each is its own reference.)
    for (const threads of [1, 2]) {
      const want = run(threads, null, false);
      assert.ok(want.losses.at(-1)! < want.losses[0]!, `trained: ${want.losses}`);
      // None, five rows (row 3 listed twice), all 40.
      const drawn = new Set(batches.flatMap((b) => [...b]));
      const some = Int32Array.of(3, 17, 3, 29, 8, 11);
      const all = Int32Array.from({ length: 40 }, (_, i) => i);
      for (const keep of threads === 1 ? [new Int32Array(0), some, all] : [some]) {
        const got = run(threads, keep, true);
        const tag = `${threads} threads, keeping ${keep.length} rows`;
        assert.deepEqual(got.scales, want.scales, `scales, ${tag}`);
        assert.deepEqual(got.losses, want.losses, `losses, ${tag}`);
      }
      // No batch at all: every shard's product reads the rows from the features by index.
      const direct = run(threads, null, true, true);
      assert.deepEqual(direct.scales, want.scales, `scales, ${threads} threads, rows by index`);
      assert.deepEqual(direct.losses, want.losses, `losses, ${threads} threads, rows by index`);
      assert.ok(
        [3, 17, 29, 8, 11].some((r) => drawn.has(r)),
        'some kept rows are drawn',
      );
    }
  });

  it('cRT and LWS learn the same head on 1, 2 and 3 threads', () => {
    // 64 x 1024 weights: just large enough to be split (MIN_SPLIT_WEIGHTS).
    const fs = features(4, 64, 1024);
    const opts = { epochs: 2, batchSize: 32 };
    const c1 = crt({ features: fs, seed: 1, threads: 1 }, opts);
    const l1 = lws({ features: fs, seed: 1, threads: 1 }, opts);
    assert.equal(c1.details.threads, 1);
    for (const threads of [2, 3]) {
      const c = crt({ features: fs, seed: 1, threads }, opts);
      assert.equal(c.details.threads, threads);
      assert.ok(maxDiff(c.folded().weight, c1.folded().weight) < 1e-5, `crt weight, ${threads} threads`);
      assert.ok(maxDiff(c.folded().bias, c1.folded().bias) < 1e-5, `crt bias, ${threads} threads`);
      assert.ok(maxDiff(c.details.losses as number[], c1.details.losses as number[]) < 1e-5);
      const l = lws({ features: fs, seed: 1, threads }, opts);
      assert.ok(
        maxDiff(l.details.scales as number[], l1.details.scales as number[]) < 1e-5,
        `lws, ${threads}`,
      );
    }
    // Trained, not the initial layer: the loss fell.
    const losses = c1.details.losses as number[];
    assert.ok(losses[1]! < losses[0]!, `losses ${losses}`);
  });

  it('balanced softmax (logit offset) and weight balancing (class weights, MaxNorm) learn the same head on 1 and 2 threads', () => {
    const fs = features(5, 64, 1024);
    const opts = { epochs: 1, batchSize: 32 };
    for (const make of [balancedSoftmax, weightBalancing]) {
      const one = make({ features: fs, seed: 1, threads: 1 }, opts);
      const two = make({ features: fs, seed: 1, threads: 2 }, opts);
      assert.equal(two.details.threads, 2);
      assert.ok(maxDiff(two.folded().weight, one.folded().weight) < 1e-5, `${one.method} weight`);
      assert.ok(maxDiff(two.folded().bias, one.folded().bias) < 1e-5, `${one.method} bias`);
    }
  });

  it('keeps a small head on one thread (a worker would cost more than it saves)', () => {
    const fs = features(4, 9, 16);
    assert.ok(9 * 16 < MIN_SPLIT_WEIGHTS);
    const c = crt({ features: fs, seed: 1, threads: 2 }, { epochs: 1, batchSize: 32 });
    assert.equal(c.details.threads, 1);
  });

  it("reports a worker's failure with its message instead of hanging", () => {
    const C = 4;
    const d = 3;
    assert.throws(
      () =>
        new ShardedHead({
          kind: 'linear',
          dim: d,
          numClasses: C,
          // One value short: the last shard (in a worker) gets a short weight.
          weight: new Float32Array(C * d - 1),
          bias: new Float32Array(C),
          momentum: 0.9,
          weightDecay: 0,
          batchSize: 2,
          threads: 2,
        }),
      /a stage-2 head worker failed: .*head shard \[2, 4\): weight or bias has the wrong size/,
    );
  });
});
