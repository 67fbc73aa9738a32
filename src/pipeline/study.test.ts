import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { RunResults } from '../report/results.ts';
import { checkFindings, spearman } from './study.ts';

function run(
  rows: Record<string, [number, number, number, number[]]>,
  sweep?: { tau: number; many: number; few: number }[],
): RunResults {
  return {
    dataset: { trainCounts: [100, 50, 10] },
    methods: Object.entries(rows).map(([method, [overall, many, few, weightNorms]]) => ({
      method,
      label: method,
      overall,
      many,
      medium: null,
      few,
      weightNorms,
      tuned:
        method === 'tau-norm'
          ? {
              param: 'tau',
              value: 1,
              chosenOn: 'val',
              sweep: (sweep ?? []).map((p) => ({ value: p.tau, test: { many: p.many, few: p.few } })),
            }
          : null,
      details: {},
    })),
  } as unknown as RunResults;
}

describe('the sampling study', () => {
  it('computes Spearman rank correlation by hand', () => {
    assert.equal(spearman([1, 2, 3], [10, 20, 30]), 1);
    assert.equal(spearman([1, 2, 3], [3, 2, 1]), -1);
    // Ranks (1, 2, 3) vs (1.5, 1.5, 3): r = 0.866...
    assert.ok(Math.abs(spearman([1, 2, 3], [5, 5, 9]) - Math.sqrt(3) / 2) < 1e-12);
  });

  it('judges the five findings from the numbers, both ways', () => {
    const sweep = Array.from({ length: 21 }, (_, i) => ({
      tau: i / 10,
      many: 0.9 - i * 0.02,
      few: 0.3 + i * 0.02,
    }));
    const good = run(
      {
        joint: [60, 85, 20, [3, 2, 1]],
        ncm: [65, 80, 50, [1, 1, 1]],
        crt: [70, 82, 60, [2, 2.1, 2]],
        'tau-norm': [69, 83, 55, [1.5, 1.3, 1]],
        lws: [68, 81, 58, [2, 2.2, 2.1]],
      },
      sweep,
    );
    const worse = (r: RunResults, d: number) =>
      ({ ...r, methods: r.methods.map((m) => ({ ...m, overall: m.overall + d })) }) as RunResults;
    const f = checkFindings({
      'instance-balanced': good,
      'square-root': worse(good, 1),
      'class-balanced': worse(good, -2),
      'progressively-balanced': worse(good, 2),
    });
    assert.deepEqual(
      f.map((x) => x.reproduced),
      [true, true, true, true, true],
    );
    const bad = checkFindings({
      'instance-balanced': good,
      'square-root': worse(good, -1),
      'class-balanced': worse(good, 3),
      'progressively-balanced': worse(good, 2),
    });
    assert.deepEqual(bad.map((x) => x.reproduced).slice(0, 2), [false, false]);
    assert.match(bad[0]!.evidence, /IB 60.0, CB 63.0, SqrtB 59.0, PB 62.0/);
  });
});
