/**
 * The whole evaluation-mode backbone in one native call (layers.ts `convBnChain`, native/src/conv.cc
 * `conv_bn_program`: every step on one image before the next, 16-channel activations kept in
 * channel planes between layers) against the same steps as separate `convBn` calls: bit-identical,
 * since each output keeps its summation order. Random chains (odd sizes, padding, stride 2, 1x1,
 * unpadded 3x3, residuals from any earlier buffer of the right shape, batch 1-3), then whole ResNets.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { firstDifference } from '../../test/helpers/arrays.ts';
import { randomizeBnStats, randomTensor } from '../../test/helpers/model-stats.ts';
import { initBackend } from '../backend/backend.ts';
import { CONV_BN_PROGRAM_KERNEL } from '../backend/native-kernels/names.ts';
import { nativeStatus } from '../native-addon.ts';
import { createRng } from '../random/rng.ts';
import { type ChainStep, convBn, convBnChain, makeBatchNorm, makeConv } from './layers.ts';
import { createModel, disposeModel } from './model.ts';
import { ParamSet } from './params.ts';

const skip = !nativeStatus().available;

/** The chain's steps run one convBn call at a time: the reference. */
function stepByStep(x: tf.Tensor4D, steps: readonly ChainStep[]): tf.Tensor4D {
  const bufs: tf.Tensor4D[] = [x];
  for (const s of steps) {
    const res = s.res === undefined ? undefined : bufs[s.res];
    bufs.push(convBn(s.c, s.bn, bufs[s.input]!, false, s.relu, res));
  }
  return bufs[bufs.length - 1]!;
}

describe('evaluation-mode convolution + batch norm chains in one native call', () => {
  before(async () => {
    await initBackend('wasm');
  });

  it('random chains equal their steps called one by one, bit for bit', { skip }, () => {
    const rng = createRng(2929);
    let planar = 0;
    for (let trial = 0; trial < 30; trial++) {
      tf.tidy(() => {
        const ps = new ParamSet();
        const b = 1 + rng.int(3);
        const [H, W] = [5 + rng.int(12), 5 + rng.int(12)];
        const ci = [1, 3, 16][rng.int(3)]!;
        /** Each buffer's [h, w, c]; buffer 0 the input. */
        const shapes: [number, number, number][] = [[H, W, ci]];
        const steps: ChainStep[] = [];
        const nSteps = 3 + rng.int(6);
        for (let i = 0; i < nSteps; i++) {
          // Mostly the last buffer (a chain), sometimes an earlier one (a branch).
          const input = rng.next() < 0.75 ? shapes.length - 1 : rng.int(shapes.length);
          const [h, w, c] = shapes[input]!;
          const kind = rng.int(6); // 0-2 3x3 same, 3 3x3 stride 2, 4 1x1 stride 1 or 2, 5 3x3 unpadded
          const k = kind === 4 ? 1 : 3;
          const stride = kind === 3 || (kind === 4 && rng.next() < 0.5) ? 2 : 1;
          const pad = kind === 4 || kind === 5 ? 0 : 1;
          if (kind === 5 && (h < 3 || w < 3)) continue;
          const co = kind <= 2 ? [16, 16, 32, c][rng.int(4)]! : [16, 32, 8][rng.int(3)]!;
          if (kind <= 2 && co === 16 && c === 16 && stride === 1) planar++;
          const oh = Math.floor((h + 2 * pad - k) / stride) + 1;
          const ow = Math.floor((w + 2 * pad - k) / stride) + 1;
          const c0 = makeConv(ps, `c${i}`, k, c, co, stride, rng, pad);
          const bn = makeBatchNorm(ps, `bn${i}`, co);
          bn.gamma.assign(randomTensor(rng, [co], 0.5, 1) as tf.Tensor1D);
          bn.beta.assign(randomTensor(rng, [co], 0.5) as tf.Tensor1D);
          bn.runningMean.assign(randomTensor(rng, [co], 0.5) as tf.Tensor1D);
          bn.runningVar.assign(tf.tensor1d(Float32Array.from({ length: co }, () => 0.2 + 2 * rng.next())));
          const same = shapes.flatMap((s, j) => (s[0] === oh && s[1] === ow && s[2] === co ? [j] : []));
          const res = same.length > 0 && rng.next() < 0.6 ? same[rng.int(same.length)] : undefined;
          steps.push({ c: c0, bn, input, relu: rng.next() < 0.7, ...(res === undefined ? {} : { res }) });
          shapes.push([oh, ow, co]);
        }
        const x = randomTensor(rng, [b, H, W, ci]) as tf.Tensor4D;
        const label = `trial ${trial}: [${b}, ${H}, ${W}, ${ci}], steps ${JSON.stringify(
          steps.map((s) => [s.input, s.res ?? -1, s.c.w.shape.join('x'), s.c.stride]),
        )}`;
        const got = convBnChain(x, steps);
        assert.ok(got !== null, `${label}: the chain kernel ran`);
        const want = stepByStep(x, steps);
        assert.deepEqual(got.shape, want.shape, label);
        const i = firstDifference(got.dataSync() as Float32Array, want.dataSync() as Float32Array);
        assert.equal(i, -1, `${label}: element ${i} differs`);
        ps.dispose();
      });
    }
    assert.ok(planar >= 10, `the 16-channel planar chain was exercised (${planar} steps)`);
  });

  for (const [name, shape, n] of [
    ['resnet8', [28, 28, 1], 5],
    ['resnet20', [32, 32, 3], 2],
    ['resnet8', [11, 9, 3], 1],
  ] as const) {
    it(`${name} ${shape.join('x')}, batch ${n}: features equal the layer-by-layer path bit for bit`, {
      skip,
    }, () => {
      const model = createModel(name, shape, 10, 3);
      const rng = createRng(17);
      randomizeBnStats(model, rng);
      const images = Float32Array.from({ length: n * shape[0] * shape[1] * shape[2] }, () => rng.next());
      const forward = () =>
        tf.tidy(() =>
          model.backbone
            .features(tf.tensor4d(images, [n, ...shape]), false)
            .dataSync()
            .slice(),
        );
      const chained = forward() as Float32Array;
      // Without the chain kernel, features() runs convBn layer by layer.
      const config = tf.getKernel(CONV_BN_PROGRAM_KERNEL, 'wasm')!;
      tf.unregisterKernel(CONV_BN_PROGRAM_KERNEL, 'wasm');
      let layered: Float32Array;
      try {
        layered = forward() as Float32Array;
      } finally {
        tf.registerKernel(config);
      }
      assert.ok(
        layered.some((v) => v !== 0),
        `${name}: features are not all zero`,
      );
      const i = firstDifference(chained, layered);
      assert.equal(i, -1, `${name}: feature ${i} differs: ${chained[i]} against ${layered[i]}`);
      disposeModel(model);
    });
  }

  it('refuses a step that reads a buffer no earlier step wrote', { skip }, () => {
    const rng = createRng(5);
    tf.tidy(() => {
      const ps = new ParamSet();
      const c = makeConv(ps, 'c', 3, 2, 4, 1, rng, 1);
      const bn = makeBatchNorm(ps, 'bn', 4);
      const x = randomTensor(rng, [1, 6, 6, 2]) as tf.Tensor4D;
      assert.throws(() => convBnChain(x, [{ c, bn, input: 1, relu: true }]), /step 0 reads buffer 1/);
      const c2 = makeConv(ps, 'c2', 3, 4, 4, 2, rng, 1);
      assert.throws(
        () =>
          convBnChain(x, [
            { c, bn, input: 0, relu: true },
            { c: c2, bn, input: 1, res: 1, relu: true },
          ]),
        /a step's residual does not have its output's shape/,
      );
      ps.dispose();
    });
  });
});
