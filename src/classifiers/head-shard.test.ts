import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { maxDiff } from '../../test/helpers/arrays.ts';
import { initBackend } from '../backend/backend.ts';
import { createRng } from '../random/rng.ts';
import { crossEntropy } from '../train/loss.ts';
import { Sgd } from '../train/optimizer.ts';
import { classRanges, combineShardStats, type HeadKind, HeadShard } from './head-shard.ts';

interface Problem {
  C: number;
  d: number;
  B: number;
  weight: Float32Array;
  bias: Float32Array;
  batches: { x: Float32Array; y: Int32Array }[];
}

function problem(seed: number, C = 7, d = 5, B = 6, steps = 4): Problem {
  const rng = createRng(seed);
  const arr = (n: number, s: number) => Float32Array.from({ length: n }, () => s * rng.normal());
  return {
    C,
    d,
    B,
    weight: arr(C * d, 0.5),
    bias: arr(C, 0.5),
    batches: Array.from({ length: steps }, () => ({
      x: arr(B * d, 1),
      y: Int32Array.from({ length: B }, () => Math.floor(rng.next() * C)),
    })),
  };
}

/** The reference: tfjs autodiff of the cross-entropy and the project's Sgd, the whole head at once. */
function autodiff(p: Problem, kind: HeadKind, lrs: number[]) {
  const w = tf.variable(tf.tensor2d(p.weight, [p.C, p.d]), kind === 'linear');
  const b = tf.variable(tf.tensor1d(p.bias), kind === 'linear');
  const s = tf.variable(tf.ones([p.C]), kind === 'scaled');
  const vars = kind === 'linear' ? [w, b] : [s];
  const opt = new Sgd({ momentum: 0.9, weightDecay: 5e-4 });
  const losses: number[] = [];
  p.batches.forEach(({ x, y }, k) => {
    const loss = tf.tidy(() => {
      const xt = tf.tensor2d(x, [p.B, p.d]);
      const oh = tf.oneHot(tf.tensor1d(y, 'int32'), p.C).toFloat() as tf.Tensor2D;
      const { value, grads } = tf.variableGrads(() => {
        const a = tf.add(tf.matMul(xt, w, false, true), b) as tf.Tensor2D;
        return crossEntropy(kind === 'linear' ? a : (tf.mul(a, s) as tf.Tensor2D), oh);
      }, vars);
      opt.step(vars, grads, lrs[k]!);
      return value;
    });
    losses.push(loss.dataSync()[0]!);
    loss.dispose();
  });
  const out = {
    weight: w.dataSync().slice(),
    bias: b.dataSync().slice(),
    scales: s.dataSync().slice(),
    losses,
  };
  tf.dispose([w, b, s]);
  opt.dispose();
  return out;
}

/** The written-out gradient, the classes split into `shards` (all on this thread). */
function sharded(p: Problem, kind: HeadKind, lrs: number[], shards: number) {
  const parts = classRanges(p.C, shards).map(
    ([lo, hi]) =>
      new HeadShard({
        kind,
        dim: p.d,
        lo,
        hi,
        weight: p.weight.slice(lo * p.d, hi * p.d),
        bias: p.bias.slice(lo, hi),
        momentum: 0.9,
        weightDecay: 5e-4,
      }),
  );
  const losses: number[] = [];
  p.batches.forEach(({ x, y }, k) => {
    const stats = parts.map((s) => s.forward(x, y));
    const c = combineShardStats(stats, p.B);
    parts.forEach((s, i) => {
      s.backward(c.rowScale[i]!, lrs[k]!);
    });
    losses.push(c.loss);
  });
  const states = parts.map((s) => s.state());
  for (const s of parts) s.dispose();
  const cat = (key: 'weight' | 'bias' | 'scales') => {
    const all = states.flatMap((s) => Array.from(s[key] ?? []));
    return Float32Array.from(all);
  };
  return { weight: cat('weight'), bias: cat('bias'), scales: cat('scales'), losses };
}

describe('class-sharded head with the written-out gradient', () => {
  before(async () => {
    await initBackend('wasm');
  });

  it('splits classes into contiguous near-equal ranges covering all', () => {
    assert.deepEqual(classRanges(10, 3), [
      [0, 3],
      [3, 7],
      [7, 10],
    ]);
    assert.deepEqual(classRanges(2, 2), [
      [0, 1],
      [1, 2],
    ]);
  });

  it('combines shard statistics into the exact log-sum-exp and loss (hand-computed)', () => {
    // One row, logits (0, ln 3) in shard 0 and (ln 2) in shard 1; label 1 (in shard 0).
    // Shard 0: max ln 3, softmax max 3/4, label logit ln 3. Shard 1: max ln 2, softmax max 1.
    const c = combineShardStats(
      [
        { max: Float32Array.of(Math.log(3)), pmax: Float32Array.of(0.75), labelLogitSum: Math.log(3) },
        { max: Float32Array.of(Math.log(2)), pmax: Float32Array.of(1), labelLogitSum: 0 },
      ],
      1,
    );
    // lse = ln(1 + 3 + 2) = ln 6; loss = ln 6 - ln 3 = ln 2.
    assert.ok(Math.abs(c.loss - Math.log(2)) < 1e-6);
    // Shard 0's local softmax (1/4, 3/4) scaled to the global (1/6, 3/6): factor 2/3.
    assert.ok(Math.abs(c.rowScale[0]![0]! - 4 / 6) < 1e-6);
    // Shard 1: local 1 -> global 2/6.
    assert.ok(Math.abs(c.rowScale[1]![0]! - 2 / 6) < 1e-6);
  });

  for (const kind of ['linear', 'scaled'] as const) {
    it(`${kind}: equals autodiff + SGD over several steps, in one shard and split in three, across seeds`, () => {
      const lrs = [0.5, 0.3, 0.1, 0.05];
      for (const seed of [1, 2, 3]) {
        const p = problem(seed);
        const ref = autodiff(p, kind, lrs);
        for (const shards of [1, 3, 7]) {
          const got = sharded(p, kind, lrs, shards);
          const tag = `seed ${seed}, ${shards} shards`;
          assert.ok(maxDiff(got.losses, ref.losses) < 1e-5, `${tag}: losses ${got.losses} vs ${ref.losses}`);
          if (kind === 'linear') {
            assert.ok(maxDiff(got.weight, ref.weight) < 1e-5, `${tag}: weight`);
            assert.ok(maxDiff(got.bias, ref.bias) < 1e-5, `${tag}: bias`);
          } else {
            assert.ok(maxDiff(got.scales, ref.scales) < 1e-5, `${tag}: scales`);
            // The frozen layer is untouched.
            assert.equal(maxDiff(got.weight, p.weight), 0);
          }
        }
        // The parameters moved: the comparison is not between two untouched copies.
        if (kind === 'linear') assert.ok(maxDiff(ref.weight, p.weight) > 1e-2);
        else assert.ok(maxDiff(ref.scales, new Float32Array(p.C).fill(1)) > 1e-2);
      }
    });
  }
});
