import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createRng } from '../random/rng.ts';
import { denseConfusion, sparseConfusion } from './calibration.ts';
import { bbsePrior, bbsePriorFromCounts, validationConfusion } from './label-shift.ts';

describe('sparseConfusion: the validation counts a deployed head keeps for BBSE', () => {
  it('equals the dense counts (validationConfusion) over 60 random draws, sizes 0 to 300 rows and 1 to 40 classes', () => {
    for (let seed = 0; seed < 60; seed++) {
      const rng = createRng(seed);
      const C = 1 + rng.int(40);
      const n = seed === 0 ? 0 : rng.int(300);
      // Predictions skewed to a few classes, so some pairs repeat and many never occur.
      const pred = Int32Array.from({ length: n }, () =>
        rng.next() < 0.6 ? rng.int(Math.min(C, 3)) : rng.int(C),
      );
      const labels = Int32Array.from({ length: n }, () => rng.int(C));
      const s = sparseConfusion(pred, labels, C);
      const dense = validationConfusion(pred, labels, C);
      assert.equal(s.classes, C);
      assert.deepEqual(denseConfusion(s), dense, `seed ${seed}`);
      assert.deepEqual(
        denseConfusion(s, new Float32Array(C * C)),
        Float32Array.from(dense),
        `seed ${seed}: into float32`,
      );
      // Only the pairs that occur, ascending, and never more than the rows.
      let total = 0;
      for (let i = 0; i < s.pairs.length; i += 2) {
        if (i > 0) assert.ok(s.pairs[i]! > s.pairs[i - 2]!, `seed ${seed}: ascending`);
        assert.ok(s.pairs[i + 1]! >= 1);
        total += s.pairs[i + 1]!;
      }
      assert.equal(total, n);
      assert.equal(s.pairs.length / 2, dense.filter((v) => v > 0).length);
      if (n >= C && n > 0) {
        const target = Int32Array.from({ length: 50 }, () => rng.int(C));
        assert.deepEqual(
          bbsePriorFromCounts(denseConfusion(s), target, C),
          bbsePrior(pred, labels, target, C),
          `seed ${seed}: BBSE`,
        );
      }
    }
  });

  it('matches NumPy (np.unique of pred * C + true with counts)', () => {
    // /usr/bin/python3: k = np.arange(60); pred = (3k^2 + k) % 7; true = (5k + k // 3) % 7;
    // u, c = np.unique(pred * 7 + true, return_counts=True); np.stack([u, c], 1).ravel()
    const k = Array.from({ length: 60 }, (_, i) => i);
    const pred = k.map((i) => (3 * i * i + i) % 7);
    const labels = k.map((i) => (5 * i + Math.floor(i / 3)) % 7);
    const numpy = [
      0, 3, 1, 3, 2, 3, 3, 3, 4, 3, 6, 3, 15, 2, 16, 3, 18, 6, 20, 6, 21, 3, 22, 3, 23, 3, 24, 2, 26, 5, 28,
      3, 31, 3, 33, 3,
    ];
    assert.deepEqual([...sparseConfusion(pred, labels, 7).pairs], numpy);
  });

  it('refuses rows out of range and mismatched lengths, naming the row', () => {
    assert.throws(
      () => sparseConfusion([0, 3], [1, 1], 3),
      /^Error: sparseConfusion: row 1 has prediction 3 and label 1; expected integers in \[0, 3\)$/,
    );
    assert.throws(() => sparseConfusion([0], [-1], 3), /row 0 has prediction 0 and label -1/);
    assert.throws(
      () => sparseConfusion([0, 1], [1], 3),
      /^Error: sparseConfusion: 2 predictions for 1 labels$/,
    );
    assert.throws(() => sparseConfusion([], [], 50_000), /50000 classes; expected 1 to 46340/);
    assert.throws(
      () => denseConfusion(sparseConfusion([1], [1], 3), new Float64Array(4)),
      /^Error: denseConfusion: 4 entries for 3 classes$/,
    );
  });
});
