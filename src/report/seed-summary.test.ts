import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { RunResults } from './results.ts';
import { meanOfRuns, meanStd, seedsTextTable, summariseSeeds } from './seed-summary.ts';

const run = (overall: number, few: number | null) =>
  ({
    methods: [
      { method: 'joint', label: 'Joint', overall, many: null, medium: 50, few, macroF1: 0.5, ece: 0.1 },
    ],
  }) as unknown as RunResults;

describe('means over seeds', () => {
  it('give the mean and the sample standard deviation, by hand', () => {
    // 1, 2, 3, 4: mean 2.5, sample variance (2.25 + 0.25 + 0.25 + 2.25) / 3 = 5/3.
    const m = meanStd([1, 2, 3, 4])!;
    assert.equal(m.mean, 2.5);
    assert.ok(Math.abs(m.std - Math.sqrt(5 / 3)) < 1e-12);
    assert.deepEqual(meanStd([7]), { mean: 7, std: 0, n: 1 });
    assert.equal(meanStd([null, null]), null);
    assert.deepEqual(meanStd([null, 4, 6]), { mean: 5, std: Math.SQRT2, n: 2 });
  });

  it('summarise runs per method, absent splits stay absent', () => {
    const s = summariseSeeds([0, 1, 2], [run(60, 10), run(62, null), run(64, 30)], ['a', 'b', 'c']);
    const j = s.methods[0]!;
    assert.equal(j.overall!.mean, 62);
    assert.equal(j.overall!.std, 2);
    assert.equal(j.many, null);
    assert.deepEqual(j.few, { mean: 20, std: Math.sqrt(200), n: 2 });
    assert.match(seedsTextTable(s), /Joint +62\.0 ± 2\.0 +- +50\.0 ± 0\.0 +20\.0 ± 14\.1/);
  });
});

describe('the mean of runs over seeds', () => {
  it('averages accuracies, weight norms and the sweep, method by method', () => {
    const mk = (o: number, norms: number[], few: number) =>
      ({
        methods: [
          {
            method: 'tau-norm',
            label: 'tau-norm',
            overall: o,
            many: null,
            medium: o,
            few,
            macroF1: 0.5,
            ece: 0.2,
            weightNorms: norms,
            tuned: {
              param: 'tau',
              value: 1,
              chosenOn: 'val',
              sweep: [
                { value: 0, val: null, test: { overall: o / 100, many: null, medium: 0.5, few: few / 100 } },
              ],
            },
          },
        ],
      }) as unknown as RunResults;
    const m = meanOfRuns([mk(60, [1, 3], 20), mk(70, [3, 5], 40)]).methods[0]!;
    assert.equal(m.overall, 65);
    assert.equal(m.many, null);
    assert.equal(m.few, 30);
    assert.deepEqual(m.weightNorms, [2, 4]);
    assert.ok(Math.abs(m.tuned!.sweep[0]!.test.few! - 0.3) < 1e-12);
    assert.equal(m.tuned!.sweep[0]!.test.many, null);
  });
});
