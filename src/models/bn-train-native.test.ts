/**
 * The native training batch norm's one-call forms against the calls they replace, bit for bit,
 * over random shapes with odd sizes: the forward call that also moves the running statistics and
 * returns invstd (against the plain kernel followed by the tfjs ops layers.ts ran before), the
 * gradient of batch norm + ReLU whose mask comes from x (against the one that reads y), bn.cc's
 * AVX2 passes against its plain loops, the packed form (one [5, C] statistics tensor, running
 * statistics in place) against the unpacked one, and the native global average pooling against tf.mean.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../backend/backend.ts';
import {
  BATCH_NORM_GRAD_KERNEL,
  BATCH_NORM_KERNEL,
  CHANNEL_MEAN_KERNEL,
} from '../backend/native-kernels/names.ts';
import { loadNativeAddon, nativeStatus } from '../native-addon.ts';
import { createRng, type Rng } from '../random/rng.ts';
import { type BatchNorm, BN_EPS, BN_MOMENTUM, batchNormTrain, globalAvgPool } from './layers.ts';

/** Indices where a and b differ in their bits (NaN never appears here). */
function bitDiffs(a: tf.Tensor, b: tf.Tensor, label: string): void {
  const x = new Uint32Array((a.dataSync() as Float32Array).slice().buffer);
  const y = new Uint32Array((b.dataSync() as Float32Array).slice().buffer);
  assert.equal(x.length, y.length, `${label}: sizes`);
  for (let i = 0; i < x.length; i++)
    if (x[i] !== y[i])
      assert.fail(`${label}: index ${i} of ${x.length}: ${a.dataSync()[i]} vs ${b.dataSync()[i]}`);
}

const run = (name: string, inputs: tf.NamedTensorMap, attrs: Record<string, unknown>) =>
  tf.engine().runKernel(name, inputs, attrs as unknown as tf.NamedAttrMap) as tf.Tensor[];

/** Batch norm's inputs for one random case: x off-centre, a residual, dy, gamma near 1, beta. */
function bnInputs(rng: Rng, shape: [number, number, number, number]) {
  const c = shape[3];
  const n = shape.reduce((p, d) => p * d, 1);
  return {
    x: tf.tensor4d(randn(rng, n, 2, 0.3), shape),
    res: tf.tensor4d(randn(rng, n), shape),
    dy: tf.tensor4d(randn(rng, n), shape),
    gamma: tf.tensor1d(randn(rng, c, 0.3, 1)),
    beta: tf.tensor1d(randn(rng, c, 0.3)),
  };
}
function randn(rng: Rng, n: number, scale = 1, offset = 0): Float32Array {
  return Float32Array.from({ length: n }, () => rng.normal() * scale + offset);
}

/** The new calls and the ones they replace on one random case; every output compared bit for bit. */
function compareCase(
  rng: Rng,
  shape: [number, number, number, number],
  relu: boolean,
  withRes: boolean,
): void {
  const [, , , c] = shape;
  const n = shape.reduce((p, d) => p * d, 1);
  const label = `[${shape}] relu ${relu} residual ${withRes}`;
  tf.tidy(() => {
    const { x, res, dy, gamma, beta } = bnInputs(rng, shape);
    const rm = tf.tensor1d(randn(rng, c));
    const rv = tf.tensor1d(Float32Array.from({ length: c }, () => 0.5 + rng.next()));
    const base: tf.NamedTensorMap = withRes ? { x, gamma, beta, res } : { x, gamma, beta };
    // Before: the plain call, then tfjs ops for invstd and the running statistics.
    const [y0, mean0, var0] = run(BATCH_NORM_KERNEL, base, { relu, epsilon: BN_EPS });
    const invstd0 = tf.rsqrt(tf.add(var0!, BN_EPS));
    const m = BN_MOMENTUM;
    const rows = n / c;
    const rm0 = tf.add(tf.mul(rm, 1 - m), tf.mul(mean0!, m));
    const rv0 = tf.add(tf.mul(rv, 1 - m), tf.mul(tf.mul(var0!, rows / Math.max(rows - 1, 1)), m));
    // Now: one call.
    const [y1, mean1, var1, invstd1, scale, shift, rm1, rv1] = run(
      BATCH_NORM_KERNEL,
      { ...base, runningMean: rm, runningVar: rv },
      { relu, epsilon: BN_EPS, momentum: m },
    );
    bitDiffs(y1!, y0!, `${label} y`);
    bitDiffs(mean1!, mean0!, `${label} mean`);
    bitDiffs(var1!, var0!, `${label} variance`);
    bitDiffs(invstd1!, invstd0, `${label} invstd`);
    bitDiffs(rm1!, rm0, `${label} running mean`);
    bitDiffs(rv1!, rv0, `${label} running variance`);
    // The affine it reports is the one it applied (the backward mask depends on it).
    const g = gamma.dataSync();
    const inv = invstd1!.dataSync();
    const mu = mean1!.dataSync();
    const b = beta.dataSync();
    const sc = scale!.dataSync();
    const sh = shift!.dataSync();
    for (let k = 0; k < c; k++) {
      assert.equal(sc[k], Math.fround(g[k]! * inv[k]!), `${label} scale ${k}`);
      // beta - mean * scale, rounded once (bn.cc's compiler fuses it into one FMA).
      const want = b[k]! - mu[k]! * sc[k]!;
      assert.ok(
        Math.abs(sh[k]! - want) <= Math.abs(want) * 2 ** -24,
        `${label} shift ${k}: ${sh[k]} vs ${want}`,
      );
    }
    const grad = { dy, x, y: y0!, mean: mean0!, invstd: invstd0, gamma };
    const before = run(BATCH_NORM_GRAD_KERNEL, grad, { relu, residual: withRes });
    assert.ok(
      before[0]!.dataSync().some((v) => v !== 0),
      `${label}: the gradient is not all zero`,
    );
    if (relu && !withRes) {
      const [dx, dgamma, dbeta] = run(
        BATCH_NORM_GRAD_KERNEL,
        { dy, x, mean: mean1!, invstd: invstd1!, gamma, scale: scale!, shift: shift! },
        { relu, residual: false },
      );
      bitDiffs(dx!, before[0]!, `${label} dx (mask from x)`);
      bitDiffs(dgamma!, before[1]!, `${label} dgamma (mask from x)`);
      bitDiffs(dbeta!, before[2]!, `${label} dbeta (mask from x)`);
    }
    // Packed: y and one [5, C] tensor, the running statistics moved in place (fresh copies
    // here, so rm and rv stay as they were).
    const rmP = tf.tensor1d(rm.dataSync());
    const rvP = tf.tensor1d(rv.dataSync());
    const [y2, stats] = run(
      BATCH_NORM_KERNEL,
      { ...base, runningMean: rmP, runningVar: rvP },
      { relu, epsilon: BN_EPS, momentum: m, packed: true },
    );
    assert.deepEqual(stats!.shape, [5, c], `${label} packed shape`);
    bitDiffs(y2!, y1!, `${label} y (packed)`);
    const want = [mean1!, var1!, invstd1!, scale!, shift!];
    for (const [k, row] of tf.unstack(stats!).entries()) bitDiffs(row, want[k]!, `${label} packed row ${k}`);
    bitDiffs(rmP, rm1!, `${label} running mean (in place)`);
    bitDiffs(rvP, rv1!, `${label} running variance (in place)`);
    const packed = run(
      BATCH_NORM_GRAD_KERNEL,
      { dy, x, y: y2!, stats: stats!, gamma },
      { relu, residual: withRes },
    );
    assert.equal(packed.length, before.length);
    for (const [k, t] of packed.entries()) bitDiffs(t, before[k]!, `${label} gradient ${k} (packed)`);
    if (relu && !withRes) {
      const fromX = run(
        BATCH_NORM_GRAD_KERNEL,
        { dy, x, stats: stats!, gamma },
        { relu, residual: false, fromX: true },
      );
      for (const [k, t] of fromX.entries())
        bitDiffs(t, before[k]!, `${label} gradient ${k} (packed, mask from x)`);
    }
  });
}

describe('native training batch norm: one-call forms', { skip: !nativeStatus().available }, () => {
  before(async () => {
    await initBackend('wasm');
  });
  after(() => loadNativeAddon()?.bnVector(true));

  it('equal the calls they replace bit for bit (running statistics, invstd, the mask from x), AVX2 and plain', () => {
    const addon = loadNativeAddon()!;
    const rng = createRng(2029);
    // Channels: multiples of 8 (the AVX2 passes, one or more 64-channel groups) and others (plain loops).
    const widths = [8, 16, 24, 32, 64, 72, 128, 3, 5, 17];
    let trial = 0;
    for (const vector of [true, false]) {
      addon.bnVector(vector);
      for (const c of widths) {
        const shape: [number, number, number, number] = [1 + rng.int(5), 1 + rng.int(9), 1 + rng.int(9), c];
        if (shape[0] * shape[1] * shape[2] < 2) shape[0] = 2;
        compareCase(rng, shape, trial % 3 !== 2, trial % 2 === 0);
        compareCase(rng, shape, true, false);
        trial++;
      }
    }
  });

  it("the layer's packed path (running statistics in place) equals its unpacked one bit for bit", () => {
    const rng = createRng(2032);
    for (const [relu, withRes, c] of [
      [true, false, 16],
      [true, false, 5],
      [true, true, 32],
      [false, false, 8],
    ] as const) {
      const shape: [number, number, number, number] = [3, 5, 4, c];
      tf.tidy(() => {
        const { x, res, dy, gamma, beta } = bnInputs(rng, shape);
        const rm = randn(rng, c);
        const rv = Float32Array.from({ length: c }, () => 0.5 + rng.next());
        const outs = [true, false].map((own) => {
          const bn: BatchNorm = {
            gamma: tf.variable(gamma, true, `bn-g-${Math.random()}`),
            beta: tf.variable(beta, true, `bn-b-${Math.random()}`),
            runningMean: tf.variable(tf.tensor1d(rm), false, `bn-rm-${Math.random()}`),
            runningVar: tf.variable(tf.tensor1d(rv), false, `bn-rv-${Math.random()}`),
          };
          // Another tensor sharing the running mean's data: the layer must not write it in place.
          const alias = own ? null : tf.clone(bn.runningMean);
          const f = (xi: tf.Tensor, g: tf.Tensor, b: tf.Tensor, r?: tf.Tensor) =>
            tf.sum(
              tf.mul(batchNormTrain(xi as tf.Tensor4D, g, b, bn, relu, r as tf.Tensor4D | undefined), dy),
            );
          const { value, grads } = tf.valueAndGrads(f)(
            withRes ? [x, bn.gamma, bn.beta, res] : [x, bn.gamma, bn.beta],
          );
          if (alias) bitDiffs(alias, tf.tensor1d(rm), 'the shared running mean is unchanged');
          const out = [
            value,
            ...grads.slice(0, withRes ? 4 : 3),
            bn.runningMean.clone(),
            bn.runningVar.clone(),
          ];
          for (const v of Object.values(bn)) (v as tf.Variable).dispose();
          return out;
        });
        for (const [k, t] of outs[0]!.entries())
          bitDiffs(t, outs[1]![k]!, `relu ${relu} residual ${withRes} C ${c} output ${k}`);
      });
    }
  });

  it('AVX2 passes equal the plain loops bit for bit, over more rows than one 64-row block', () => {
    const addon = loadNativeAddon()!;
    const rng = createRng(2030);
    for (const c of [16, 40, 64, 136]) {
      const shape: [number, number, number, number] = [3, 7 + rng.int(9), 5 + rng.int(9), c];
      tf.tidy(() => {
        const { x, res, dy, gamma, beta } = bnInputs(rng, shape);
        const outs = [true, false].map((vector) => {
          addon.bnVector(vector);
          const [y, mean, variance] = run(
            BATCH_NORM_KERNEL,
            { x, gamma, beta, res },
            { relu: true, epsilon: BN_EPS },
          );
          const invstd = tf.rsqrt(tf.add(variance!, BN_EPS));
          const grads = run(
            BATCH_NORM_GRAD_KERNEL,
            { dy, x, y: y!, mean: mean!, invstd, gamma },
            { relu: true, residual: true },
          );
          return [y!, mean!, variance!, ...grads];
        });
        addon.bnVector(true);
        for (const [k, t] of outs[0]!.entries()) bitDiffs(t, outs[1]![k]!, `C ${c} [${shape}] output ${k}`);
      });
    }
  });

  it('global average pooling equals tf.mean over axes 1-2 bit for bit, with and without a gradient tape', () => {
    const rng = createRng(2031);
    for (let trial = 0; trial < 10; trial++) {
      const shape: [number, number, number, number] = [
        1 + rng.int(5),
        1 + rng.int(9),
        1 + rng.int(9),
        [1, 3, 16, 64, 70][trial % 5]!,
      ];
      const n = shape.reduce((p, d) => p * d, 1);
      tf.tidy(() => {
        const x = tf.tensor4d(randn(rng, n, 3, 1), shape);
        const native = tf.engine().runKernel(CHANNEL_MEAN_KERNEL, { x }, {}) as tf.Tensor;
        bitDiffs(native, tf.mean(x, [1, 2]), `[${shape}]`);
        // Through the model's pooling under a tape (training): the same values, the gradient
        // dy / (h w) at every pixel.
        const dy = tf.tensor2d(randn(rng, shape[0] * shape[3]), [shape[0], shape[3]]);
        const [dx] = tf.grads((a: tf.Tensor) => tf.sum(tf.mul(globalAvgPool(a as tf.Tensor4D), dy)))([x]);
        const want = tf.mul(
          tf.reshape(tf.div(dy, shape[1] * shape[2]), [shape[0], 1, 1, shape[3]]),
          tf.ones(shape),
        );
        bitDiffs(dx!, want, `[${shape}] gradient`);
      });
    }
  });
});
