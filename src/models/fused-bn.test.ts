/**
 * The fused residual-block tail relu(bn(x) + res) (native kernels: one pass each way) against
 * the unfused composition of tfjs ops, values and gradients of every input, over random shapes
 * and seeds, in training mode (batch statistics) and evaluation mode (running statistics).
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../backend/backend.ts';
import { nativeStatus } from '../native-addon.ts';
import { createRng } from '../random/rng.ts';
import { batchNorm, batchNormTrain, makeBatchNorm } from './layers.ts';
import { ParamSet } from './params.ts';

function maxAbsDiff(a: tf.Tensor, b: tf.Tensor): number {
  const x = a.dataSync();
  const y = b.dataSync();
  assert.equal(x.length, y.length);
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i]! - y[i]!));
  return m;
}

/** The textbook composition: normalise by the batch's statistics, add, ReLU (tfjs autodiff). */
function reference(x: tf.Tensor4D, g: tf.Tensor1D, b: tf.Tensor1D, res: tf.Tensor4D | null, relu: boolean) {
  const mean = tf.mean(x, [0, 1, 2]);
  const v = tf.mean(tf.square(tf.sub(x, mean)), [0, 1, 2]);
  let y = tf.add(tf.mul(tf.div(tf.sub(x, mean), tf.sqrt(tf.add(v, 1e-5))), g), b);
  if (res) y = tf.add(y, res);
  return relu ? tf.relu(y) : y;
}

describe('fused batch norm + residual + ReLU', () => {
  before(async () => {
    await initBackend('wasm');
  });

  it('training mode: values and gradients (x, gamma, beta, residual) equal the unfused composition', {
    skip: !nativeStatus().available,
  }, () => {
    const rng = createRng(77);
    for (let trial = 0; trial < 12; trial++) {
      const [b, h, w, c] = [1 + rng.int(4), 1 + rng.int(6), 1 + rng.int(6), 1 + rng.int(40)];
      const relu = trial % 3 !== 2;
      const withRes = trial % 4 !== 3;
      const shape = [b, h, w, c] as [number, number, number, number];
      const n = b * h * w * c;
      if (b * h * w < 2) continue;
      tf.tidy(() => {
        const x = tf.tensor4d(
          Float32Array.from({ length: n }, () => rng.normal() * 2 + 0.5),
          shape,
        );
        const r = tf.tensor4d(
          Float32Array.from({ length: n }, () => rng.normal()),
          shape,
        );
        const dy = tf.tensor4d(
          Float32Array.from({ length: n }, () => rng.normal()),
          shape,
        );
        const g = tf.tensor1d(Float32Array.from({ length: c }, () => 1 + rng.normal() * 0.3));
        const be = tf.tensor1d(Float32Array.from({ length: c }, () => rng.normal() * 0.3));
        const ps = new ParamSet();
        const bn = makeBatchNorm(ps, 'bn', c);
        const label = `trial ${trial} [${shape}] relu ${relu} residual ${withRes}`;
        const fused = (a: tf.Tensor, gg: tf.Tensor, bb: tf.Tensor, rr: tf.Tensor) =>
          batchNormTrain(a as tf.Tensor4D, gg, bb, bn, relu, withRes ? (rr as tf.Tensor4D) : undefined);
        const ref = (a: tf.Tensor, gg: tf.Tensor, bb: tf.Tensor, rr: tf.Tensor) =>
          reference(
            a as tf.Tensor4D,
            gg as tf.Tensor1D,
            bb as tf.Tensor1D,
            withRes ? (rr as tf.Tensor4D) : null,
            relu,
          );
        const yErr = maxAbsDiff(fused(x, g, be, r), ref(x, g, be, r));
        assert.ok(yErr < 1e-5, `${label}: value ${yErr}`);
        // Without the residual its gradient is not asked for (it is not an input then).
        const wrt = withRes ? [x, g, be, r] : [x, g, be];
        const gf = tf.grads((a, gg, bb, rr) => tf.sum(tf.mul(fused(a!, gg!, bb!, rr ?? r), dy)))(wrt);
        const gr = tf.grads((a, gg, bb, rr) => tf.sum(tf.mul(ref(a!, gg!, bb!, rr ?? r), dy)))(wrt);
        assert.equal(gf.length, wrt.length);
        gf.forEach((t, k) => {
          const err = maxAbsDiff(t, gr[k]!);
          // gamma/beta sums run over up to 144 rows: float rounding of the reference's own sums
          assert.ok(err < 2e-4, `${label}: d${['x', 'gamma', 'beta', 'residual'][k]} ${err}`);
        });
        ps.dispose();
      });
    }
  });

  it('evaluation mode: values and gradients equal the unfused composition (running statistics)', () => {
    const rng = createRng(78);
    for (let trial = 0; trial < 8; trial++) {
      const [b, h, w, c] = [1 + rng.int(3), 1 + rng.int(5), 1 + rng.int(5), 1 + rng.int(33)];
      const relu = trial % 2 === 0;
      const withRes = trial % 4 !== 1;
      const shape = [b, h, w, c] as [number, number, number, number];
      const n = b * h * w * c;
      tf.tidy(() => {
        const ps = new ParamSet();
        const bn = makeBatchNorm(ps, 'bn', c);
        bn.runningMean.assign(tf.tensor1d(Float32Array.from({ length: c }, () => rng.normal())));
        bn.runningVar.assign(tf.tensor1d(Float32Array.from({ length: c }, () => 0.5 + rng.next())));
        const x = tf.tensor4d(
          Float32Array.from({ length: n }, () => rng.normal()),
          shape,
        );
        const r = tf.tensor4d(
          Float32Array.from({ length: n }, () => rng.normal()),
          shape,
        );
        const dy = tf.tensor4d(
          Float32Array.from({ length: n }, () => rng.normal()),
          shape,
        );
        const g = tf.tensor1d(Float32Array.from({ length: c }, () => 1 + rng.normal() * 0.3));
        const be = tf.tensor1d(Float32Array.from({ length: c }, () => rng.normal() * 0.3));
        const label = `trial ${trial} [${shape}] relu ${relu} residual ${withRes}`;
        const fused = (a: tf.Tensor, gg: tf.Tensor, bb: tf.Tensor, rr: tf.Tensor) =>
          batchNorm(
            { ...bn, gamma: gg as tf.Variable, beta: bb as tf.Variable },
            a as tf.Tensor4D,
            false,
            relu,
            withRes ? (rr as tf.Tensor4D) : undefined,
          );
        const ref = (a: tf.Tensor, gg: tf.Tensor, bb: tf.Tensor, rr: tf.Tensor) => {
          const inv = tf.rsqrt(tf.add(bn.runningVar, 1e-5));
          let y = tf.add(tf.mul(tf.mul(tf.sub(a, bn.runningMean), inv), gg), bb);
          if (withRes) y = tf.add(y, rr);
          return relu ? tf.relu(y) : y;
        };
        assert.ok(maxAbsDiff(fused(x, g, be, r), ref(x, g, be, r)) < 1e-5, `${label}: value`);
        const wrt = withRes ? [x, g, be, r] : [x, g, be];
        const gf = tf.grads((a, gg, bb, rr) => tf.sum(tf.mul(fused(a!, gg!, bb!, rr ?? r), dy)))(wrt);
        const gr = tf.grads((a, gg, bb, rr) => tf.sum(tf.mul(ref(a!, gg!, bb!, rr ?? r), dy)))(wrt);
        assert.equal(gf.length, wrt.length);
        gf.forEach((t, k) => {
          const err = maxAbsDiff(t, gr[k]!);
          assert.ok(err < 1e-4, `${label}: d${['x', 'gamma', 'beta', 'residual'][k]} ${err}`);
        });
        ps.dispose();
      });
    }
  });
});
