/**
 * Post-hoc logit adjustment and the prior swap against values computed here independently (plain
 * loops over the feature file, no code of the methods): argmax of f W^T + b - tau log(n / N).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { initBackend } from '../backend/backend.ts';
import { argmaxRows } from '../eval/metrics.ts';
import { type FeatureSet, loadFeatureFile } from '../features/feature-set.ts';
import { joint } from './joint.ts';
import { logitAdjust } from './logit-adjust.ts';
import { priorSwap, targetPrior } from './prior-swap.ts';

const FIX = join(import.meta.dirname, '../../test/fixtures');

/** argmax_c of f . w_c + b_c + shift_c, in plain loops. */
function predictions(fs: FeatureSet, shift: (c: number) => number, split = fs.test): number[] {
  const { weight, bias } = fs.classifier!;
  const n = split.labels.length;
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    let best = -Infinity;
    let arg = -1;
    for (let c = 0; c < fs.numClasses; c++) {
      let z = bias[c]! + shift(c);
      for (let j = 0; j < fs.dim; j++) z += split.features[i * fs.dim + j]! * weight[c * fs.dim + j]!;
      if (z > best) {
        best = z;
        arg = c;
      }
    }
    out.push(arg);
  }
  return out;
}

const preds = (clf: { logits: (f: Float32Array, n: number) => Float32Array }, fs: FeatureSet) => [
  ...argmaxRows(clf.logits(fs.test.features, fs.test.labels.length), fs.test.labels.length, fs.numClasses),
];

describe('post-hoc logit adjustment', () => {
  before(async () => {
    await initBackend('wasm');
  });
  const fs = loadFeatureFile(join(FIX, 'features_golden.npz'));
  const N = fs.trainCounts.reduce((a, b) => a + b, 0);
  const logPrior = (c: number) => Math.log(fs.trainCounts[c]! / N);

  it('tau = 1 is argmax of f(x) - log prior; tau = 0 is Joint', () => {
    const la1 = logitAdjust(fs, { tau: 1 });
    assert.deepEqual(
      preds(la1, fs),
      predictions(fs, (c) => -logPrior(c)),
    );
    // It changes predictions on this long-tailed file (the test is not Joint twice).
    assert.notDeepEqual(preds(la1, fs), preds(joint(fs), fs));
    const la0 = logitAdjust(fs, { tau: 0 });
    assert.deepEqual(preds(la0, fs), preds(joint(fs), fs));
    const a = la0.logits(fs.test.features, 5);
    const b = joint(fs).logits(fs.test.features, 5);
    for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i]! - b[i]!) < 1e-5);
    // Folded: the bias carries the adjustment.
    const folded = la1.folded().bias;
    for (let c = 0; c < fs.numClasses; c++)
      assert.ok(Math.abs(folded[c]! - (fs.classifier!.bias[c]! - logPrior(c))) < 1e-5);
  });

  it('chooses tau on the validation set over 0, 0.1, ..., 2 and keeps the sweep, each point recomputed here', () => {
    const la = logitAdjust(fs);
    const t = la.tuned!;
    assert.equal(t.chosenOn, 'val');
    assert.equal(t.sweep.length, 21);
    const acc = (tau: number, split: FeatureSet['test']) => {
      const p = predictions(fs, (c) => -tau * logPrior(c), split);
      return p.filter((v, i) => v === split.labels[i]).length / p.length;
    };
    for (const pt of t.sweep) {
      assert.ok(Math.abs(pt.val!.overall - acc(pt.value, fs.val!)) < 1e-9, `val at tau ${pt.value}`);
      assert.ok(Math.abs(pt.test.overall - acc(pt.value, fs.test)) < 1e-9, `test at tau ${pt.value}`);
    }
    // The first tau of the grid with the best validation accuracy.
    const best = Math.max(...t.sweep.map((p) => p.val!.overall));
    assert.equal(t.value, t.sweep.find((p) => p.val!.overall === best)!.value);
    assert.deepEqual(
      preds(la, fs),
      predictions(fs, (c) => -t.value * logPrior(c)),
    );
  });
});

describe('prior swap (PC softmax)', () => {
  before(async () => {
    await initBackend('wasm');
  });
  const fs = loadFeatureFile(join(FIX, 'features_golden.npz'));

  it('with the training prior as target equals Joint; with a uniform target, logit adjustment at tau = 1', () => {
    const train = priorSwap(fs, { targetPrior: fs.trainCounts });
    const a = train.logits(fs.test.features, fs.test.labels.length);
    const b = joint(fs).logits(fs.test.features, fs.test.labels.length);
    for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i]! - b[i]!) < 1e-4, `logit ${i}`);
    const uniform = priorSwap(fs);
    assert.deepEqual(preds(uniform, fs), preds(logitAdjust(fs, { tau: 1 }), fs));
  });

  it('a long-tail target ratio: head stays head (1 uniform, < 1 reversed); bad targets refused', () => {
    const counts = [10, 500, 40];
    const p = targetPrior(counts, { targetImbalance: 100 });
    // Ranks by count: class 1, 2, 0 -> 100^0, 100^-0.5, 100^-1, normalised.
    const s = 1 + 0.1 + 0.01;
    assert.deepEqual(
      Array.from(p, (v) => Math.round(v * 1e9)),
      [0.01 / s, 1 / s, 0.1 / s].map((v) => Math.round(v * 1e9)),
    );
    assert.deepEqual(Array.from(targetPrior(counts, { targetImbalance: 1 })), [1 / 3, 1 / 3, 1 / 3]);
    const rev = targetPrior(counts, { targetImbalance: 0.01 });
    assert.ok(rev[0]! > rev[2]! && rev[2]! > rev[1]!);
    assert.throws(
      () => targetPrior(counts, { targetPrior: [1, 2] }),
      /target prior has 2 values for 3 classes/,
    );
    assert.throws(
      () => targetPrior(counts, { targetPrior: [1, 0, 2] }),
      /must be positive, got 0 for class 1/,
    );
    assert.throws(() => targetPrior(counts, { targetPrior: [1, 1, 1], targetImbalance: 2 }), /not both/);
  });
});
