import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { maxDiff } from '../../../test/helpers/arrays.ts';
import { initBackend } from '../../backend/backend.ts';
import {
  type HeadKernels,
  headKernels,
  nativeHeadKernels,
  tsHeadKernels,
} from '../../backend/native-head.ts';
import { Sgd } from '../../optim/sgd.ts';
import { createRng } from '../../random/rng.ts';
import { logPrior } from '../../sampling/probabilities.ts';
import { crossEntropy } from '../../train/loss.ts';
import { classBalancedWeights } from '../weight-balancing.ts';
import { classRanges, combineShardStats, type HeadKind, HeadShard } from './shard-step.ts';

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

/** A head's loss and update beyond plain CE: offset (balanced softmax), class weights and max norm (WB). */
interface Variant {
  offset?: Float32Array;
  classWeights?: Float32Array;
  maxNorm?: number;
}

/** The reference: tfjs autodiff of the cross-entropy and the project's Sgd, the whole head at once. */
function autodiff(p: Problem, kind: HeadKind, lrs: number[], v: Variant = {}) {
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
        const z = kind === 'linear' ? a : (tf.mul(a, s) as tf.Tensor2D);
        if (!v.classWeights) return crossEntropy(z, oh, v.offset ? tf.tensor1d(v.offset) : undefined);
        // Weighted CE written plainly: sum_r u_{y_r} (-log softmax(z_r + o)[y_r]) / B.
        const zo = v.offset ? tf.add(z, tf.tensor1d(v.offset)) : z;
        const u = tf.tensor1d(Float32Array.from(y, (c) => v.classWeights![c]!)); // [B]
        const nll = tf.neg(tf.sum(tf.mul(oh, tf.logSoftmax(zo)), 1)); // [B]
        return tf.div(tf.sum(tf.mul(u, nll)), p.B) as tf.Scalar;
      }, vars);
      opt.step(vars, grads, lrs[k]!);
      if (v.maxNorm !== undefined) {
        // Project each row of W to norm <= maxNorm, in plain JS.
        const W = w.dataSync().slice();
        for (let c = 0; c < p.C; c++) {
          let n2 = 0;
          for (let j = 0; j < p.d; j++) n2 += W[c * p.d + j]! ** 2;
          const f = Math.min(1, v.maxNorm / Math.sqrt(n2));
          for (let j = 0; j < p.d; j++) W[c * p.d + j]! *= f;
        }
        w.assign(tf.tensor2d(W, [p.C, p.d]));
      }
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
function sharded(
  p: Problem,
  kind: HeadKind,
  lrs: number[],
  shards: number,
  v: Variant = {},
  onStep?: (w: Float32Array) => void,
  kernels: HeadKernels = headKernels(),
) {
  const parts = classRanges(p.C, shards).map(
    ([lo, hi]) =>
      new HeadShard(
        {
          kind,
          dim: p.d,
          lo,
          hi,
          weight: p.weight.slice(lo * p.d, hi * p.d),
          bias: p.bias.slice(lo, hi),
          momentum: 0.9,
          weightDecay: 5e-4,
          offset: v.offset ? v.offset.slice(lo, hi) : null,
          classWeights: v.classWeights ?? null,
          maxNorm: v.maxNorm ?? null,
        },
        kernels,
      ),
  );
  const losses: number[] = [];
  p.batches.forEach(({ x, y }, k) => {
    const stats = parts.map((s) => s.forward(x, y));
    const c = parts[0]!.combine(stats, p.B);
    parts.forEach((s, i) => {
      s.backward(c.rowScale[i]!, lrs[k]!);
    });
    losses.push(c.loss);
    onStep?.(Float32Array.from(parts.flatMap((s) => Array.from(s.state().weight))));
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

  it('balanced softmax (logit offset) and class-balanced loss equal autodiff, in one shard and split', () => {
    const lrs = [0.5, 0.3, 0.1, 0.05];
    for (const seed of [1, 2]) {
      const p = problem(seed);
      const counts = Array.from({ length: p.C }, (_, c) => Math.round(200 * 0.6 ** c) + 1);
      const variants: Record<string, Variant> = {
        'balanced softmax': { offset: logPrior(counts) },
        'class-balanced': { classWeights: classBalancedWeights(counts) },
        both: { offset: logPrior(counts), classWeights: classBalancedWeights(counts) },
      };
      for (const [name, v] of Object.entries(variants)) {
        const ref = autodiff(p, 'linear', lrs, v);
        const plain = autodiff(p, 'linear', lrs);
        // The variant changes the result: the comparison is not with plain CE twice.
        assert.ok(maxDiff(ref.weight, plain.weight) > 1e-3, `${name}: differs from plain CE`);
        for (const shards of [1, 3]) {
          const got = sharded(p, 'linear', lrs, shards, v);
          const tag = `${name}, seed ${seed}, ${shards} shards`;
          assert.ok(maxDiff(got.losses, ref.losses) < 1e-5, `${tag}: losses ${got.losses} vs ${ref.losses}`);
          assert.ok(maxDiff(got.weight, ref.weight) < 1e-5, `${tag}: weight`);
          assert.ok(maxDiff(got.bias, ref.bias) < 1e-5, `${tag}: bias`);
        }
      }
      // LWS with an offset: scales against autodiff.
      const v = { offset: logPrior(counts) };
      const ref = autodiff(p, 'scaled', lrs, v);
      const got = sharded(p, 'scaled', lrs, 3, v);
      assert.ok(maxDiff(got.scales, ref.scales) < 1e-5, 'scaled with offset');
    }
  });

  it('MaxNorm: no weight row exceeds the max norm after any step, and the update equals projected autodiff', () => {
    const lrs = [0.5, 0.5, 0.5, 0.5];
    const p = problem(5);
    const maxNorm = 0.4; // below the initial rows' norms (about 0.5 * sqrt(5)), so it binds
    const rows = (w: Float32Array) =>
      Array.from({ length: p.C }, (_, c) => Math.hypot(...w.subarray(c * p.d, (c + 1) * p.d)));
    assert.ok(Math.max(...rows(p.weight)) > maxNorm);
    let steps = 0;
    const got = sharded(p, 'linear', lrs, 3, { maxNorm }, (w) => {
      steps++;
      for (const [c, n] of rows(w).entries()) assert.ok(n <= maxNorm + 1e-6, `step ${steps}, row ${c}: ${n}`);
    });
    assert.equal(steps, p.batches.length);
    const ref = autodiff(p, 'linear', lrs, { maxNorm });
    assert.ok(maxDiff(got.weight, ref.weight) < 1e-5);
  });

  it('fused kernels (native and TypeScript) equal a plain double-precision step, shards 1..3, both kinds', () => {
    const kernelSets: [string, HeadKernels][] = [['typescript', tsHeadKernels]];
    const nat = nativeHeadKernels();
    if (nat) kernelSets.push(['native', nat]);
    const lrs = [0.4, 0.2, 0.1];
    // Batch sizes on and off the 8-lane vectors; offsets and class weights on and off.
    for (const [seed, C, d, B] of [
      [11, 5, 3, 8],
      [12, 9, 6, 13],
      [13, 4, 10, 21],
    ] as const) {
      const p = problem(seed, C, d, B, 3);
      const counts = Array.from({ length: C }, (_, c) => Math.round(100 * 0.5 ** c) + 1);
      const variants: Variant[] = [
        {},
        { offset: logPrior(counts), classWeights: classBalancedWeights(counts) },
      ];
      for (const kind of ['linear', 'scaled'] as const)
        for (const v of variants) {
          const ref = plainStep(p, kind, lrs, v);
          const results: Record<string, ReturnType<typeof sharded>> = {};
          for (const [name, k] of kernelSets)
            for (const shards of [1, 2, 3]) {
              const got = sharded(p, kind, lrs, shards, v, undefined, k);
              results[`${name}-${shards}`] = got;
              const tag = `${name}, ${kind}, C ${C} B ${B}, ${shards} shards, ${v.offset ? 'offset+weights' : 'plain'}`;
              assert.ok(
                maxDiff(got.losses, ref.losses) < 2e-5,
                `${tag}: losses ${got.losses} vs ${ref.losses}`,
              );
              if (kind === 'linear') {
                assert.ok(maxDiff(got.weight, ref.weight) < 2e-5, `${tag}: weight`);
                assert.ok(maxDiff(got.bias, ref.bias) < 2e-5, `${tag}: bias`);
              } else {
                assert.ok(maxDiff(got.scales, ref.scales) < 2e-5, `${tag}: scales`);
              }
            }
          // Native and TypeScript, any shard count: equal within float rounding.
          const all = Object.values(results);
          for (const r of all.slice(1)) {
            assert.ok(maxDiff(r.losses, all[0]!.losses) < 1e-5);
            assert.ok(
              maxDiff(
                kind === 'linear' ? r.weight : r.scales,
                kind === 'linear' ? all[0]!.weight : all[0]!.scales,
              ) < 1e-5,
            );
          }
        }
    }
  });
});

/**
 * The whole head in plain double precision, independent of the code under test: logits
 * z = (W x + b) * s + o, weighted mean cross-entropy, its gradient written out, PyTorch's SGD.
 */
function plainStep(p: Problem, kind: HeadKind, lrs: number[], v: Variant) {
  const { C, d, B } = p;
  const w = Float64Array.from(p.weight);
  const b = Float64Array.from(p.bias);
  const s = new Float64Array(C).fill(1);
  const [mw, mb, ms] = [new Float64Array(C * d), new Float64Array(C), new Float64Array(C)];
  const sgd = (q: Float64Array, g: Float64Array, m: Float64Array, lr: number) => {
    for (let i = 0; i < q.length; i++) {
      m[i] = 0.9 * m[i]! + (g[i]! + 5e-4 * q[i]!);
      q[i] = q[i]! - lr * m[i]!;
    }
  };
  const losses: number[] = [];
  p.batches.forEach(({ x, y }, step) => {
    const gw = new Float64Array(C * d);
    const gb = new Float64Array(C);
    const gs = new Float64Array(C);
    let loss = 0;
    for (let r = 0; r < B; r++) {
      const a = Array.from({ length: C }, (_, c) => {
        let t = b[c]!;
        for (let j = 0; j < d; j++) t += w[c * d + j]! * x[r * d + j]!;
        return t;
      });
      const z = a.map((t, c) => t * s[c]! + (v.offset ? v.offset[c]! : 0));
      const m = Math.max(...z);
      const lse = m + Math.log(z.reduce((acc, t) => acc + Math.exp(t - m), 0));
      const u = v.classWeights ? v.classWeights[y[r]!]! : 1;
      loss += (u * (lse - z[y[r]!]!)) / B;
      for (let c = 0; c < C; c++) {
        const g = (u * (Math.exp(z[c]! - lse) - (c === y[r] ? 1 : 0))) / B;
        gb[c] = gb[c]! + g;
        gs[c] = gs[c]! + g * a[c]!;
        for (let j = 0; j < d; j++) gw[c * d + j] = gw[c * d + j]! + g * x[r * d + j]!;
      }
    }
    losses.push(loss);
    if (kind === 'linear') {
      sgd(w, gw, mw, lrs[step]!);
      sgd(b, gb, mb, lrs[step]!);
    } else sgd(s, gs, ms, lrs[step]!);
  });
  return { weight: w, bias: b, scales: s, losses };
}

describe("LWS's kept products in one shard", () => {
  before(async () => {
    await initBackend('wasm');
  });

  it('computes the product of a kept row once, the same bits as computing it every time', () => {
    const C = 9;
    const d = 20;
    const B = 8;
    const rng = createRng(21);
    const train = Float32Array.from({ length: 30 * d }, () => rng.normal());
    const labels = Int32Array.from({ length: 30 }, (_, i) => i % C);
    const weight = Float32Array.from({ length: C * d }, () => rng.normal() * 0.1);
    const bias = Float32Array.from({ length: C }, () => rng.normal() * 0.1);
    // Rows 0-9 drawn again and again (the tail), 10-29 about once.
    const batches = Array.from({ length: 10 }, () =>
      Int32Array.from({ length: B }, (_, k) =>
        k < 5 ? Math.floor(rng.next() * 10) : 10 + Math.floor(rng.next() * 20),
      ),
    );
    const run = (keep: Int32Array | null) => {
      let columns = 0;
      const k = headKernels();
      const counting: HeadKernels = {
        ...k,
        matmulNT: (a, packed, x, c, M, K, N) => {
          columns += N;
          k.matmulNT(a, packed, x, c, M, K, N);
        },
      };
      const spec = {
        kind: 'scaled' as const,
        dim: d,
        lo: 0,
        hi: C,
        weight,
        bias,
        momentum: 0.9,
        weightDecay: 5e-4,
      };
      const shard = new HeadShard({ ...spec, cacheRows: keep }, counting);
      const x = new Float32Array(B * d);
      const y = new Int32Array(B);
      const losses: number[] = [];
      for (const rows of batches) {
        rows.forEach((r, i) => {
          x.set(train.subarray(r * d, (r + 1) * d), i * d);
          y[i] = labels[r]!;
        });
        const st = shard.forward(x, y, rows);
        const comb = combineShardStats([st], B);
        shard.backward(comb.rowScale[0]!, 0.5);
        losses.push(comb.loss);
      }
      return { scales: shard.state().scales!, losses, columns };
    };
    const want = run(null);
    assert.equal(want.columns, 10 * B);
    const tail = Int32Array.from({ length: 10 }, (_, i) => i);
    const got = run(tail);
    assert.deepEqual(got.scales, want.scales);
    assert.deepEqual(got.losses, want.losses);
    // A tail row is computed until a batch has computed it (twice in its first batch: twice);
    // every other draw is computed.
    const kept = new Set<number>();
    let expect = 0;
    for (const b of batches) {
      const tailRows = [...b.subarray(0, 5)];
      expect += tailRows.filter((r) => !kept.has(r)).length + (B - 5);
      for (const r of tailRows) kept.add(r);
    }
    assert.ok(expect < 10 * B - 20, `the tail repeats: ${expect}`);
    assert.equal(got.columns, expect);
  });
});
