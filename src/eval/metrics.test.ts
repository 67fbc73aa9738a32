import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createRng } from '../random/rng.ts';
import {
  argmaxRows,
  CONFUSED_PAIRS_KEPT,
  evaluateLogits,
  evaluatePredictions,
  expectedCalibrationError,
  recallSummary,
  splitAccuracies,
} from './metrics.ts';

describe('metrics against hand-computed confusion matrices', () => {
  // 3 classes; training counts put class 0 in many (>100), class 1 in medium, class 2 in few.
  const trainCounts = [500, 50, 5];
  // true:      0 0 0 0 1 1 2 2
  // predicted: 0 0 0 1 1 0 2 0
  const labels = [0, 0, 0, 0, 1, 1, 2, 2];
  const pred = [0, 0, 0, 1, 1, 0, 2, 0];

  it('gives overall, split means, per-class accuracy and the confusion matrix', () => {
    const e = evaluatePredictions(pred, labels, 3, trainCounts);
    assert.deepEqual(e.confusion, [
      [3, 1, 0],
      [1, 1, 0],
      [1, 0, 1],
    ]);
    assert.equal(e.overall, 5 / 8);
    assert.deepEqual(e.perClass, [0.75, 0.5, 0.5]);
    assert.equal(e.many, 0.75);
    assert.equal(e.medium, 0.5);
    assert.equal(e.few, 0.5);
    // F1: class 0: P = 3/5, R = 3/4 -> 2/3; class 1: P = 1/2, R = 1/2 -> 1/2; class 2: P = 1, R = 1/2 -> 2/3.
    assert.ok(Math.abs(e.macroF1 - (2 / 3 + 1 / 2 + 2 / 3) / 3) < 1e-12);
    // The off-diagonal cells, by count then true class: 0 -> 1 (1 of 4), 1 -> 0 (1 of 2), 2 -> 0 (1 of 2).
    assert.deepEqual(e.confusedPairs, [
      { true: 0, predicted: 1, count: 1, share: 0.25 },
      { true: 1, predicted: 0, count: 1, share: 0.5 },
      { true: 2, predicted: 0, count: 1, share: 0.5 },
    ]);
  });

  it('keeps the most-confused pairs without a matrix, above CONFUSION_MAX_CLASSES classes', () => {
    // 1,000 classes, no matrix kept; errors: 7 -> 3 three times, 999 -> 0 twice, 5 -> 6 once.
    const C = 1000;
    const labels = [7, 7, 7, 7, 999, 999, 999, 5, 5, 42];
    const pred = [3, 3, 3, 7, 0, 0, 999, 6, 5, 42];
    const e = evaluatePredictions(pred, labels, C, new Array<number>(C).fill(10));
    assert.deepEqual(e.confusion, []);
    assert.deepEqual(e.confusedPairs, [
      { true: 7, predicted: 3, count: 3, share: 0.75 },
      { true: 999, predicted: 0, count: 2, share: 2 / 3 },
      { true: 5, predicted: 6, count: 1, share: 0.5 },
    ]);
    // At most CONFUSED_PAIRS_KEPT, the largest first.
    const many = Array.from({ length: 100 }, (_, i) => i);
    const e2 = evaluatePredictions(
      many.map((i) => (i + 1) % C),
      many,
      C,
      new Array<number>(C).fill(10),
    );
    assert.equal(e2.confusedPairs.length, CONFUSED_PAIRS_KEPT);
    assert.deepEqual(e2.confusedPairs[0], { true: 0, predicted: 1, count: 1, share: 1 });
  });

  it('reports an empty split as null and skips a class absent from the test set', () => {
    // No few-shot class at all; class 2 (medium) never appears in the evaluated labels.
    const e = evaluatePredictions([0, 1, 2], [0, 1, 1], 3, [500, 150, 40]);
    assert.equal(e.few, null);
    assert.deepEqual(e.perClass, [1, 0.5, null]);
    assert.equal(e.medium, null); // the only medium class has no test image
    assert.equal(e.many, 0.75);
    // F1 over present classes only: class 0: 1; class 1: P = 1, R = 1/2 -> 2/3.
    assert.ok(Math.abs(e.macroF1 - (1 + 2 / 3) / 2) < 1e-12);
  });

  it('computes ECE over equal-width bins by hand', () => {
    // Two in bin (0.6, 0.667]: conf 0.62, 0.64, one right -> |0.5 - 0.63| * 2 / 4;
    // two in the last bin: conf 1.0, 0.95, both right -> |1 - 0.975| * 2 / 4.
    const ece = expectedCalibrationError([0.62, 0.64, 1.0, 0.95], [true, false, true, true]);
    assert.ok(Math.abs(ece - (0.13 * 2 + 0.025 * 2) / 4) < 1e-12, String(ece));
  });

  it('takes the argmax of logits and softmax confidence for ECE', () => {
    const logits = Float32Array.from([2, 1, 0, 0, 0, 5]);
    assert.deepEqual([...argmaxRows(logits, 2, 3)], [0, 2]);
    const e = evaluateLogits(logits, Int32Array.from([0, 2]), 3, [500, 50, 5]);
    assert.equal(e.overall, 1);
    const c0 = Math.exp(2) / (Math.exp(2) + Math.exp(1) + 1);
    const c1 = Math.exp(5) / (Math.exp(5) + 2);
    assert.ok(Math.abs(e.ece - (1 - c0 + (1 - c1)) / 2) < 1e-6);
  });
  it('the cheap split accuracies agree with the full evaluation on random predictions', () => {
    const rng = createRng(9);
    const counts = [500, 300, 90, 40, 12, 3];
    for (let t = 0; t < 20; t++) {
      const labels = Array.from({ length: 200 }, () => rng.int(6));
      const pred = labels.map((l) => (rng.next() < 0.6 ? l : rng.int(6)));
      const full = evaluatePredictions(pred, labels, 6, counts);
      const cheap = splitAccuracies(pred, labels, 6, counts);
      assert.deepEqual(cheap, { overall: full.overall, many: full.many, medium: full.medium, few: full.few });
    }
  });
});

describe('recall summaries', () => {
  it('give worst-class, harmonic and geometric mean of recalls, by hand', () => {
    // Recalls 0.5, 0.8, 1.0 (class 3 absent): H = 3 / (2 + 1.25 + 1) = 0.70588..., G = 0.4^(1/3).
    const r = recallSummary([0.5, 0.8, 1, null]);
    assert.equal(r.worstClass, 0.5);
    assert.ok(Math.abs(r.hmeanRecall! - 3 / 4.25) < 1e-15);
    assert.ok(Math.abs(r.gmeanRecall! - 0.4 ** (1 / 3)) < 1e-15);
    assert.deepEqual(recallSummary([0.9, 0]), { worstClass: 0, hmeanRecall: 0, gmeanRecall: 0 });
    assert.deepEqual(recallSummary([null]), { worstClass: null, hmeanRecall: null, gmeanRecall: null });
  });
});
