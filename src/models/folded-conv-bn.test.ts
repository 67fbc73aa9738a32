/**
 * The evaluation-mode convolution + batch norm folded into one native call (layers.ts `convBn`,
 * native/src/conv.cc `conv2d_forward_bn`) against the unfolded forward: tfjs's own convolution
 * and the textbook evaluation-mode batch norm, (x - mean) / sqrt(var + eps) * gamma + beta, plus
 * the residual, then ReLU. Random shapes, strides, paddings and running statistics; then whole
 * backbones, folded against the `wasm` kernel set (which has no folding).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { randomTensor } from '../../test/helpers/model-stats.ts';
import { initBackend } from '../backend/backend.ts';
import { CONV_BN_KERNEL } from '../backend/native-kernels/names.ts';
import { setTrainingKernels, trainingKernels } from '../backend/training-kernels.ts';
import { nativeStatus } from '../native-addon.ts';
import { createRng } from '../random/rng.ts';
import { BN_EPS, convBn, makeBatchNorm, makeConv } from './layers.ts';
import { createModel, disposeModel } from './model.ts';
import { ParamSet } from './params.ts';

const skip = !nativeStatus().available;

/** max |a - b| / (1 + |b|): relative where values are large, absolute near zero. */
function maxScaledDiff(a: tf.Tensor, b: tf.Tensor): number {
  assert.deepEqual(a.shape, b.shape);
  const x = a.dataSync();
  const y = b.dataSync();
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i]! - y[i]!) / (1 + Math.abs(y[i]!)));
  return m;
}

describe('folded evaluation-mode convolution + batch norm', () => {
  before(async () => {
    await initBackend('wasm');
  });
  after(() => {
    if (!skip) setTrainingKernels('native');
  });

  it('equals conv then textbook batch norm (+ residual) (+ ReLU) within float rounding', { skip }, () => {
    const rng = createRng(4242);
    let folded = 0;
    for (let trial = 0; trial < 24; trial++) {
      const k = [1, 3, 3, 7][rng.int(4)]!;
      const stride = 1 + rng.int(2);
      const pad = rng.int(k); // numeric padding below the filter size, as the ResNets use
      const [b, ci, co] = [1 + rng.int(3), 1 + rng.int(20), 1 + rng.int(70)];
      const size = k + rng.int(9);
      const relu = trial % 2 === 0;
      const withRes = trial % 3 !== 0;
      const label = `trial ${trial}: ${k}x${k}/${stride} pad ${pad}, [${b}, ${size}, ${size}, ${ci}] -> ${co}, relu ${relu}, residual ${withRes}`;
      tf.tidy(() => {
        const ps = new ParamSet();
        const c = makeConv(ps, 'c', k, ci, co, stride, rng, pad);
        const bn = makeBatchNorm(ps, 'bn', co);
        bn.gamma.assign(randomTensor(rng, [co], 0.5, 1) as tf.Tensor1D);
        bn.beta.assign(randomTensor(rng, [co], 0.5) as tf.Tensor1D);
        bn.runningMean.assign(randomTensor(rng, [co], 0.5) as tf.Tensor1D);
        bn.runningVar.assign(tf.tensor1d(Float32Array.from({ length: co }, () => 0.2 + 2 * rng.next())));
        const x = randomTensor(rng, [b, size, size, ci]) as tf.Tensor4D;
        const conv = tf.conv2d(x, c.w as tf.Tensor4D, stride, [
          [0, 0],
          [pad, pad],
          [pad, pad],
          [0, 0],
        ]);
        const res = withRes ? (randomTensor(rng, conv.shape) as tf.Tensor4D) : undefined;
        let want = tf.add(
          tf.mul(tf.div(tf.sub(conv, bn.runningMean), tf.sqrt(tf.add(bn.runningVar, BN_EPS))), bn.gamma),
          bn.beta,
        );
        if (res) want = tf.add(want, res);
        if (relu) want = tf.relu(want);
        // Count the calls: the folded kernel must be the one that ran.
        const before = tf.engine().state.numTensors;
        const got = convBn(c, bn, x, false, relu, res);
        assert.equal(tf.engine().state.numTensors, before + 1, `${label}: one kernel call, one tensor`);
        const err = maxScaledDiff(got, want);
        // Sums of up to 7 * 7 * 20 products whose filter was scaled first: float rounding.
        assert.ok(err < 2e-5, `${label}: ${err}`);
        folded++;
        ps.dispose();
      });
    }
    assert.equal(folded, 24);
  });

  it('falls back to the unfolded path under a gradient tape, so gradients still flow', { skip }, () => {
    const rng = createRng(7);
    tf.tidy(() => {
      const ps = new ParamSet();
      const c = makeConv(ps, 'c', 3, 4, 8, 1, rng, 1);
      const bn = makeBatchNorm(ps, 'bn', 8);
      const x = randomTensor(rng, [2, 5, 5, 4]) as tf.Tensor4D;
      const calls: string[] = [];
      const kernel = tf.getKernel(CONV_BN_KERNEL, 'wasm')!;
      const inner = kernel.kernelFunc;
      (kernel as { kernelFunc: tf.KernelFunc }).kernelFunc = (args) => {
        calls.push(CONV_BN_KERNEL);
        return inner(args);
      };
      try {
        const g = tf.grad((w: tf.Tensor) =>
          tf.sum(convBn({ ...c, w: w as tf.Variable }, bn, x, false, true)),
        )(c.w);
        assert.equal(calls.length, 0);
        assert.ok(tf.sum(tf.abs(g)).dataSync()[0]! > 0);
        convBn(c, bn, x, false, true);
        assert.equal(calls.length, 1);
      } finally {
        (kernel as { kernelFunc: tf.KernelFunc }).kernelFunc = inner;
      }
      ps.dispose();
    });
  });

  it('rejects a residual of the wrong shape, naming both shapes', { skip }, () => {
    const rng = createRng(8);
    tf.tidy(() => {
      const ps = new ParamSet();
      const c = makeConv(ps, 'c', 3, 2, 4, 2, rng, 1);
      const bn = makeBatchNorm(ps, 'bn', 4);
      const x = randomTensor(rng, [1, 6, 6, 2]) as tf.Tensor4D;
      assert.throws(
        () => convBn(c, bn, x, false, true, tf.zeros([1, 6, 6, 4]) as tf.Tensor4D),
        /residual \[1,6,6,4\] must have the convolution output's shape \[1,3,3,4\]/,
      );
      ps.dispose();
    });
  });

  for (const [name, shape] of [
    ['resnet8', [28, 28, 1]],
    ['resnet20', [32, 32, 3]],
    ['resnet10', [32, 32, 3]],
  ] as const) {
    it(`${name} ${shape.join('x')}: features folded equal the unfolded forward (wasm kernel set)`, {
      skip,
    }, () => {
      const model = createModel(name, shape, 10, 3);
      const rng = createRng(11);
      // Trained-looking statistics: running means and variances away from 0 and 1.
      const { params, buffers } = model.backbone.params;
      for (const [pname, v] of [...params, ...buffers]) {
        if (pname.endsWith('running_mean')) tf.tidy(() => v.assign(randomTensor(rng, v.shape, 0.3)));
        if (pname.endsWith('running_var'))
          tf.tidy(() =>
            v.assign(
              tf.tensor(
                Float32Array.from({ length: v.size }, () => 0.5 + rng.next()),
                v.shape,
              ),
            ),
          );
        if (pname.endsWith('bn1.weight') || pname.endsWith('bn2.weight'))
          tf.tidy(() => v.assign(randomTensor(rng, v.shape, 0.2, 1)));
      }
      const n = 37;
      const images = Float32Array.from({ length: n * shape[0] * shape[1] * shape[2] }, () => rng.next());
      const forward = () =>
        tf.tidy(() => {
          const f = model.backbone.features(tf.tensor4d(images, [n, ...shape]), false);
          return f.dataSync().slice() as Float32Array;
        });
      assert.equal(trainingKernels(), 'native');
      const folded = forward();
      setTrainingKernels('wasm');
      let unfolded: Float32Array;
      try {
        unfolded = forward();
      } finally {
        setTrainingKernels('native');
      }
      let err = 0;
      let scale = 0;
      for (let i = 0; i < folded.length; i++) {
        err = Math.max(err, Math.abs(folded[i]! - unfolded[i]!));
        scale = Math.max(scale, Math.abs(unfolded[i]!));
      }
      assert.ok(scale > 0.01, `${name}: features are not all zero`);
      assert.ok(err <= 1e-4 * scale, `${name}: max difference ${err} (largest feature ${scale})`);
      disposeModel(model);
    });
  }
});
