import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../backend/backend.ts';
import { evaluateLogits } from '../eval/metrics.ts';
import type { FeatureSet } from '../features/feature-set.ts';
import { createRng } from '../random/rng.ts';
import { joint } from './joint.ts';
import { foldedLogits } from './linear-ops.ts';
import { ncm } from './ncm.ts';
import { createClassifier, methodEntries, parseMethods } from './registry.ts';
import { tauNorm, tauNormalize } from './tau-norm.ts';

const close = (a: ArrayLike<number>, b: number[], tol = 1e-5) => {
  assert.equal(a.length, b.length);
  for (let i = 0; i < b.length; i++)
    assert.ok(Math.abs(a[i]! - b[i]!) <= tol, `index ${i}: ${a[i]} vs ${b[i]}`);
};

function tiny(): FeatureSet {
  return {
    dim: 2,
    numClasses: 2,
    classNames: ['a', 'b'],
    trainCounts: [2, 1],
    train: { features: Float32Array.from([1, 0, 3, 0, 0, 2]), labels: Int32Array.from([0, 0, 1]) },
    val: { features: Float32Array.from([1, 1]), labels: Int32Array.from([1]) },
    test: { features: Float32Array.from([1, 1, 2, 0]), labels: Int32Array.from([1, 0]) },
    classifier: { weight: Float32Array.from([3, 4, 1, 0]), bias: Float32Array.from([0, 10]) },
  };
}

describe('stage-2 classifiers against hand-computed values', () => {
  before(async () => {
    await initBackend('wasm');
  });

  it('joint keeps the bias; tau-norm drops it; tau = 0 is joint without bias, tau = 1 unit rows', () => {
    const fs = tiny();
    // f = (1, 1): W f = (7, 1); + b = (7, 11).
    close(joint(fs).logits(Float32Array.from([1, 1]), 1), [7, 11]);
    close(tauNorm(fs, { tau: 0 }).logits(Float32Array.from([1, 1]), 1), [7, 1]);
    // tau = 1: rows (0.6, 0.8) and (1, 0).
    close(tauNorm(fs, { tau: 1 }).logits(Float32Array.from([1, 1]), 1), [1.4, 1]);
    // tau = 0.5: (3, 4) / sqrt(5).
    close(tauNormalize(fs.classifier!.weight, 2, 2, { tau: 0.5 }), [
      3 / Math.sqrt(5),
      4 / Math.sqrt(5),
      1,
      0,
    ]);
    close(tauNorm(fs, { tau: 1 }).weightNorms(), [1, 1]);
    close(joint(fs).weightNorms(), [5, 1]);
  });

  it('tau-norm chooses tau on the validation set, keeps the 21-point sweep, falls back to 1 without one', () => {
    const fs = tiny();
    const t = tauNorm(fs);
    const sweep = t.tuned!.sweep;
    assert.equal(sweep.length, 21);
    assert.deepEqual(sweep.map((p) => p.value).slice(0, 3), [0, 0.1, 0.2]);
    // val: f = (1, 1), label 1. Class 1 wins when 1 > 7 / 5^tau, i.e. tau > log 7 / log 5 = 1.209.
    assert.deepEqual([t.tuned!.param, t.tuned!.value, t.tuned!.chosenOn], ['tau', 1.3, 'val']);
    assert.equal(sweep.find((p) => p.value === 1.2)!.val!.overall, 0);
    assert.equal(sweep.find((p) => p.value === 1.3)!.val!.overall, 1);
    const warnings: string[] = [];
    const noVal = tauNorm({ ...fs, val: null }, { warn: (m) => warnings.push(m) });
    assert.equal(noVal.tuned!.value, 1);
    assert.equal(noVal.tuned!.chosenOn, 'default');
    assert.match(warnings[0]!, /no validation set.*tau = 1/);
  });

  it('NCM: centred, L2-normalised class means, score -||x - c|| in the run and the folded head (and cosine)', () => {
    const fs = tiny();
    // mean = (4/3, 2/3); normalised train features:
    const n = (x: number, y: number) => [x / Math.hypot(x, y), y / Math.hypot(x, y)];
    const a = n(1 - 4 / 3, -2 / 3);
    const b = n(3 - 4 / 3, -2 / 3);
    const c0 = [(a[0]! + b[0]!) / 2, (a[1]! + b[1]!) / 2];
    const c1 = n(-4 / 3, 4 / 3);
    const x = n(2 - 4 / 3, -2 / 3); // test point (2, 0)
    const dist = (c: number[]) => Math.hypot(x[0]! - c[0]!, x[1]! - c[1]!);
    const clf = ncm(fs);
    // The deployed head computes the same distances (the calibration fitted on them holds there).
    close(clf.logits(Float32Array.from([2, 0]), 1), [-dist(c0), -dist(c1)]);
    close(foldedLogits(clf.folded(), Float32Array.from([2, 0]), 1, 2, 2), [-dist(c0), -dist(c1)]);
    close(clf.weightNorms(), [Math.hypot(c0[0]!, c0[1]!), 1]);
    const cos = ncm(fs, { distance: 'cos' });
    const dot = (c: number[]) => (x[0]! * c[0]! + x[1]! * c[1]!) / Math.hypot(c[0]!, c[1]!);
    close(cos.logits(Float32Array.from([2, 0]), 1), [dot(c0), dot(c1)]);
    assert.throws(
      () => ncm({ ...fs, numClasses: 3, trainCounts: [2, 1, 0] }),
      /class 2 has no training feature/,
    );
  });

  it('every method needing the stage-1 classifier says so when it is missing', () => {
    const fs = { ...tiny(), classifier: null };
    assert.throws(() => joint(fs), /joint needs the stage-1 classifier/);
    assert.throws(() => tauNorm(fs), /tau-norm needs the stage-1 classifier/);
    assert.throws(
      () => parseMethods('crt,svm'),
      /unknown method 'svm' \(did you mean ncm\?\); valid methods: joint, ncm, crt, tau-norm, lws, logit-adjust, balanced-softmax, weight-balancing, prior-swap \(or all\)/,
    );
    assert.deepEqual(parseMethods('lws,joint'), ['joint', 'lws']);
  });
});

/** Class Gaussians with a 100:1 imbalance and a "joint" softmax classifier trained on them. */
function synthetic(seed: number): FeatureSet {
  const rng = createRng(seed);
  const C = 4;
  const d = 6;
  const means = Array.from({ length: C }, () => Array.from({ length: d }, () => rng.normal() * 1.2));
  const counts = [1000, 300, 50, 10];
  const draw = (perClass: number[]) => {
    const f: number[] = [];
    const l: number[] = [];
    perClass.forEach((n, c) => {
      for (let i = 0; i < n; i++) {
        for (let j = 0; j < d; j++) f.push(means[c]![j]! + rng.normal());
        l.push(c);
      }
    });
    return { features: Float32Array.from(f), labels: Int32Array.from(l) };
  };
  const train = draw(counts);
  // Joint: softmax regression by full-batch gradient descent on the imbalanced data.
  const [w, b] = tf.tidy(() => {
    const W = tf.variable(tf.zeros([C, d]));
    const B = tf.variable(tf.zeros([C]));
    const x = tf.tensor2d(train.features, [train.labels.length, d]);
    const y = tf.oneHot(tf.tensor1d(train.labels, 'int32'), C);
    for (let s = 0; s < 300; s++) {
      const { grads } = tf.variableGrads(
        () => tf.losses.softmaxCrossEntropy(y, tf.add(tf.matMul(x, W, false, true), B)) as tf.Scalar,
        [W, B],
      );
      W.assign(tf.sub(W, tf.mul(grads[W.name]!, 0.5)));
      B.assign(tf.sub(B, tf.mul(grads[B.name]!, 0.5)));
    }
    return [tf.keep(W.clone()), tf.keep(B.clone())];
  });
  const fs: FeatureSet = {
    dim: d,
    numClasses: C,
    classNames: ['0', '1', '2', '3'],
    trainCounts: counts,
    train,
    val: draw([50, 50, 50, 50]),
    test: draw([500, 500, 500, 500]),
    classifier: { weight: w!.dataSync() as Float32Array, bias: b!.dataSync() as Float32Array },
  };
  tf.dispose([w!, b!]);
  return fs;
}

describe('decoupling on a synthetic 100:1 problem', () => {
  it('every re-balancing method of the registry raises balanced (few-shot) accuracy over joint, across seeds', () => {
    for (const seed of [1, 2, 3]) {
      const fs = synthetic(seed);
      const bal = (clf: { logits: (f: Float32Array, n: number) => Float32Array }) => {
        const e = evaluateLogits(
          clf.logits(fs.test.features, fs.test.labels.length),
          fs.test.labels,
          4,
          fs.trainCounts,
          { many: 100, few: 20 },
        );
        return { all: e.overall, few: e.few! };
      };
      const j = bal(joint(fs));
      const ctx = { features: fs, seed, head: { batchSize: 64 } };
      for (const e of methodEntries().filter((m) => m.name !== 'joint')) {
        const v = bal(createClassifier(e.name, ctx));
        assert.ok(v.all > j.all, `seed ${seed} ${e.name}: balanced ${v.all} vs joint ${j.all}`);
        assert.ok(v.few > j.few, `seed ${seed} ${e.name}: few ${v.few} vs joint ${j.few}`);
      }
    }
  });
});
