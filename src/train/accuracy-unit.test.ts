import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ACCURACY_UNIT, type EpochRecord, stage1InPercent, toPercent } from './epoch.ts';

const rec = (trainAcc: number, valAcc: number | null): EpochRecord => ({
  epoch: 1,
  lr: 0.1,
  loss: 1,
  trainAcc,
  valAcc,
  imagesPerSec: 1,
  seconds: 1,
});

describe('accuracies are percentages', () => {
  it('with two decimals', () => {
    assert.equal(toPercent(5 / 8), 62.5);
    assert.equal(toPercent(1 / 3), 33.33);
    assert.equal(toPercent(1), 100);
  });
  it('stage-1 history of older files (fractions, no accuracyUnit) is read in percent', () => {
    const old = { history: [rec(0.5, 0.625), rec(0.75, null)], bestValAcc: 0.625, seconds: 3 };
    const now = stage1InPercent(old, undefined);
    assert.deepEqual(
      now.history.map((h) => [h.trainAcc, h.valAcc]),
      [
        [50, 62.5],
        [75, null],
      ],
    );
    assert.equal(now.bestValAcc, 62.5);
    assert.equal(now.seconds, 3);
  });
  it('history already in percent is left as it is', () => {
    const s = { history: [rec(50, 62.5)], bestValAcc: 62.5 };
    assert.equal(stage1InPercent(s, ACCURACY_UNIT), s);
  });
});
