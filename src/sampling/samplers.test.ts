import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { exponentialCounts } from '../data/long-tail.ts';
import { classProbabilities, progressiveProbabilities } from './probabilities.ts';
import {
  createSampler,
  SAMPLER_NAMES,
  samplerOptions,
  samplerOptionsOf,
  samplerSettings,
} from './samplers.ts';

function labelsFor(counts: number[]): Int32Array {
  const out: number[] = [];
  counts.forEach((n, c) => {
    for (let i = 0; i < n; i++) out.push(c);
  });
  return Int32Array.from(out);
}

const counts = exponentialCounts(10, 1000, 100);
const labels = labelsFor(counts);

describe('class probabilities', () => {
  it('follow p_j = n_j^q / sum n^q (hand-computed)', () => {
    assert.deepEqual(classProbabilities([1, 3], 1), [0.25, 0.75]);
    assert.deepEqual(classProbabilities([1, 3], 0), [0.5, 0.5]);
    const p = classProbabilities([1, 4], 0.5); // sqrt: 1, 2
    assert.ok(Math.abs(p[0]! - 1 / 3) < 1e-12 && Math.abs(p[1]! - 2 / 3) < 1e-12);
    assert.deepEqual(classProbabilities([0, 5], 0), [0, 1]);
    assert.throws(() => classProbabilities([1], 1.5), /q must be in \[0, 1\]/);
  });
  it('progressively-balanced equals IB at the first epoch and CB at the last', () => {
    assert.deepEqual(progressiveProbabilities(counts, 0, 30), classProbabilities(counts, 1));
    const last = progressiveProbabilities(counts, 29, 30);
    for (const p of last) assert.ok(Math.abs(p - 0.1) < 1e-12);
    const mid = progressiveProbabilities([1, 3], 1, 3); // lam = 0.5: (0.25 + 0.5) / 2
    assert.ok(Math.abs(mid[0]! - 0.375) < 1e-12);
  });
});

describe('samplers', () => {
  it('draw classes with frequencies within 5 binomial standard deviations of p_j, over seeds', () => {
    for (const [name, q] of [
      ['instance-balanced', 1],
      ['square-root', 0.5],
      ['class-balanced', 0],
    ] as const) {
      const p = classProbabilities(counts, q);
      for (let seed = 0; seed < 5; seed++) {
        const s = createSampler(name, { labels, numClasses: 10, batchSize: 16, seed, epochs: 10 });
        const freq = new Array(10).fill(0);
        let total = 0;
        for (let e = 0; e < 8; e++) {
          for (const i of s.epoch(e)) freq[labels[i]!]++;
          total += s.stepsPerEpoch * 16;
        }
        for (let j = 0; j < 10; j++) {
          const sd = Math.sqrt(total * p[j]! * (1 - p[j]!));
          assert.ok(
            Math.abs(freq[j] - total * p[j]!) <= 5 * sd + 1,
            `${name} seed ${seed} class ${j}: ${freq[j]} vs ${total * p[j]!}`,
          );
        }
      }
    }
  });
  it('make epochs of floor(N / batch) batches, and the same (seed, epoch) gives the same order', () => {
    for (const name of SAMPLER_NAMES) {
      const ctx = { labels, numClasses: 10, batchSize: 128, seed: 7, epochs: 5 };
      const s = createSampler(name, ctx);
      assert.equal(s.stepsPerEpoch, Math.floor(2478 / 128));
      const a = s.epoch(3);
      assert.equal(a.length, 19 * 128);
      assert.deepEqual(a, createSampler(name, ctx).epoch(3), name);
      assert.notDeepEqual(a, s.epoch(4), name);
      assert.notDeepEqual(a, createSampler(name, { ...ctx, seed: 8 }).epoch(3), name);
    }
  });
  it('instance-balanced visits every image at most once per epoch', () => {
    const s = createSampler('instance-balanced', {
      labels,
      numClasses: 10,
      batchSize: 100,
      seed: 1,
      epochs: 1,
    });
    assert.equal(new Set(s.epoch(0)).size, 2400);
  });
  it('class-aware takes perClass consecutive images of a class, each class equally often', () => {
    const many = exponentialCounts(40, 200, 50);
    const lab = labelsFor(many);
    for (const spc of [1, 4, 8]) {
      for (let seed = 0; seed < 4; seed++) {
        const s = createSampler(
          'class-aware',
          { labels: lab, numClasses: 40, batchSize: 128, seed, epochs: 1 },
          { perClass: spc },
        );
        const idx = s.epoch(0);
        for (let g = 0; g + spc <= idx.length; g += spc) {
          const c = lab[idx[g]!];
          for (let j = 1; j < spc; j++) assert.equal(lab[idx[g + j]!], c);
        }
        // The first batch walks 128 / spc classes of one shuffled cycle: no class twice.
        if (128 / spc <= 40) {
          const first = new Map<number, number>();
          for (const i of idx.subarray(0, 128)) first.set(lab[i]!, (first.get(lab[i]!) ?? 0) + 1);
          for (const n of first.values()) assert.equal(n, spc);
        }
        // Over whole class cycles every class appears equally often.
        const groups = Math.floor(idx.length / spc / 40) * 40;
        const per = new Array(40).fill(0);
        for (let g = 0; g < groups; g++) per[lab[idx[g * spc]!]!]++;
        assert.ok(per.every((n) => n === groups / 40));
      }
    }
  });
  it('rejects unknown names listing the valid ones, and batches larger than the data', () => {
    const ctx = { labels, numClasses: 10, batchSize: 128, seed: 0, epochs: 1 };
    assert.throws(
      () => createSampler('balanced', ctx),
      /unknown sampler 'balanced'; valid samplers: instance-balanced, square-root/,
    );
    assert.throws(
      () => createSampler('class-balanced', { ...ctx, batchSize: 5000 }),
      /larger than the 2478 training images/,
    );
    assert.equal(createSampler('instance-balanced', ctx, { q: 0.25 }).name, 'q=0.25');
  });
});

describe('a sampler owns its options', () => {
  it('class-aware perClass: a setting with its default, parsed once, reaching the sampler', () => {
    const s = samplerSettings();
    assert.deepEqual(Object.keys(s), ['classAwarePerClass']);
    assert.equal((s.classAwarePerClass!.meta() as { shownDefault?: string }).shownDefault, '4');
    // Unset, the entry's default; set, the value; another sampler's setting is not this one's.
    assert.deepEqual(samplerOptionsOf({ sampler: 'class-aware' }), { perClass: 4 });
    assert.deepEqual(samplerOptionsOf({ sampler: 'class-aware', classAwarePerClass: 3 }), { perClass: 3 });
    assert.deepEqual(samplerOptionsOf({ sampler: 'square-root', classAwarePerClass: 3 }), {});
    assert.throws(
      () => samplerOptionsOf({ sampler: 'class-aware', classAwarePerClass: 0 }),
      /^ConfigError: sampler class-aware: option perClass: must be more than 0$/,
    );
    assert.throws(
      () => samplerOptions('square-root', { perClass: 2 }),
      /unknown option\(s\) perClass; valid options: none/,
    );
    // Runs of exactly perClass images of one class (class-aware's contract), for 3 and for 5.
    for (const per of [3, 5]) {
      const ctx = { labels, numClasses: 10, batchSize: 30, seed: 1, epochs: 1 };
      const idx = createSampler(
        'class-aware',
        ctx,
        samplerOptionsOf({ sampler: 'class-aware', classAwarePerClass: per }),
      ).epoch(0);
      const runs: number[] = [];
      let run = 1;
      for (let i = 1; i < idx.length; i++) {
        if (labels[idx[i]!] === labels[idx[i - 1]!] && run < per) run++;
        else {
          runs.push(run);
          run = 1;
        }
      }
      assert.ok(
        runs.every((r) => r === per),
        `perClass ${per}: runs ${[...new Set(runs)].join(',')}`,
      );
    }
  });
});
