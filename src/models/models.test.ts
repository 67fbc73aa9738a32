import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../backend/backend.ts';
import { setTrainingKernels, trainingKernels } from '../backend/training-kernels.ts';
import { createRng } from '../random/rng.ts';
import { batchNorm, batchNormTrain, makeBatchNorm } from './layers.ts';
import { createModel, disposeModel, modelArrays, splitModelArrays } from './model.ts';
import { ParamSet } from './params.ts';
import { BACKBONE_NAMES, createBackbone } from './registry.ts';

describe('backbones', () => {
  before(async () => {
    await initBackend('wasm');
  });

  // Parameter counts from the same architectures built in PyTorch (sum of p.numel() over
  // model.parameters(), Debian's python3-torch): independent of this code.
  it('have the parameter counts PyTorch gives for the same architecture', () => {
    const cases: [string, [number, number, number], number, number][] = [
      ['resnet8', [28, 28, 1], 10, 77754],
      ['resnet20', [32, 32, 3], 10, 272474],
      ['resnet32', [32, 32, 3], 100, 472756],
      ['resnet10', [64, 64, 3], 10, 4910922],
    ];
    for (const [name, shape, classes, expected] of cases) {
      const m = createModel(name, shape, classes, 0);
      assert.equal(m.backbone.params.countParams() + m.head.params.countParams(), expected, name);
      disposeModel(m);
    }
  });

  it('map [b, H, W, C] to features [b, d] in training and evaluation mode (every registered backbone)', () => {
    // d from the architectures (CIFAR ResNets end at 64 channels, ResNet-10 at 512).
    const dims: Record<string, number> = { resnet8: 64, resnet20: 64, resnet32: 64, resnet10: 512 };
    for (const name of BACKBONE_NAMES) {
      const shape: [number, number, number] = [32, 32, 3];
      const bb = createBackbone(name, shape, 1);
      assert.equal(bb.featureDim, dims[name], `${name}: feature length`);
      for (const training of [true, false]) {
        const f = tf.tidy(() => bb.features(tf.randomUniform([3, ...shape]) as tf.Tensor4D, training));
        assert.deepEqual(f.shape, [3, bb.featureDim], name);
        f.dispose();
      }
      bb.dispose();
    }
  });

  it('refuse images they cannot take, and unknown names, with the valid list', () => {
    assert.throws(
      () => createBackbone('resnet10', [28, 28, 1], 0),
      /resnet10 needs images of at least 32x32 pixels, got 28x28/,
    );
    assert.throws(() => createBackbone('resnet8', [4, 4, 1], 0), /at least 8x8/);
    assert.throws(
      () => createBackbone('vgg16', [28, 28, 1], 0),
      /unknown backbone 'vgg16'; valid backbones: resnet8, resnet20, resnet32, resnet10/,
    );
  });
});

describe('the backbone registry', () => {
  before(async () => {
    await initBackend('wasm');
  });

  it('takes a spec with options, and refuses an unknown option naming the valid ones', () => {
    for (const name of BACKBONE_NAMES) {
      const bb = createBackbone({ name, options: {} }, [32, 32, 3], 0);
      assert.equal(bb.name, name);
      assert.ok(bb.trainable && bb.params.countParams() > 0, `${name}: trainable with parameters`);
      bb.dispose();
      const valid = name === 'resnet10' ? 'none' : 'width';
      assert.throws(
        () => createBackbone({ name, options: { depth: 2 } }, [32, 32, 3], 0),
        new RegExp(`^ConfigError: backbone ${name}: unknown option\\(s\\) depth; valid options: ${valid}$`),
      );
    }
    // The CIFAR ResNets' width: stages of w, 2w, 4w channels, features of 4w; the rule is the entry's.
    const narrow = createBackbone({ name: 'resnet8', options: { width: 4 } }, [32, 32, 3], 0);
    assert.equal(narrow.featureDim, 16);
    assert.deepEqual(narrow.params.params.get('conv1.weight')!.shape, [3, 3, 3, 4]);
    narrow.dispose();
    assert.throws(
      () => createBackbone({ name: 'resnet20', options: { width: 0 } }, [32, 32, 3], 0),
      /^ConfigError: backbone resnet20: option width: must be at least 1 \(got 0\)$/,
    );
  });

  it('splits saved weights into backbone and head by what the head holds', () => {
    const m = createModel('resnet8', [28, 28, 1], 10, 0);
    const { backbone, head } = splitModelArrays(m, modelArrays(m));
    assert.deepEqual(Object.keys(head).sort(), ['fc.bias', 'fc.weight']);
    assert.deepEqual(
      Object.keys(backbone).sort(),
      [...m.backbone.params.params.keys(), ...m.backbone.params.buffers.keys()].sort(),
    );
    disposeModel(m);
  });
});

function assertGradsClose(mine: tf.Tensor[], ref: tf.Tensor[], label: string): void {
  mine.forEach((t, k) => {
    const a = t.dataSync();
    const r = ref[k]!.dataSync();
    for (let i = 0; i < a.length; i++)
      assert.ok(Math.abs(a[i]! - r[i]!) < 1e-4, `${label} ${k} index ${i}: ${a[i]} vs ${r[i]}`);
  });
}

describe('batch norm with its hand-written gradient', () => {
  // wasm runs the native kernels where they are built; wasm-tfjs the tfjs composition.
  for (const backend of ['cpu', 'wasm', 'wasm-tfjs'])
    it(`matches automatic differentiation of the textbook formula (${backend}), with and without ReLU`, async () => {
      await initBackend(backend === 'cpu' ? 'cpu' : 'wasm');
      const kernels = trainingKernels();
      if (backend === 'wasm-tfjs') setTrainingKernels('wasm');
      const rng = createRng(5);
      const x0 = Float32Array.from({ length: 4 * 3 * 3 * 5 }, () => rng.normal() * 2 + 1);
      const dy0 = Float32Array.from({ length: x0.length }, () => rng.normal());
      const g0 = Float32Array.from({ length: 5 }, () => 1 + rng.normal() * 0.3);
      const b0 = Float32Array.from({ length: 5 }, () => rng.normal() * 0.3);
      for (const relu of [false, true]) {
        const ps = new ParamSet();
        const bn = makeBatchNorm(ps, 'bn', 5);
        const x = tf.tensor4d(x0, [4, 3, 3, 5]);
        const dy = tf.tensor4d(dy0, [4, 3, 3, 5]);
        const mine = tf.grads((a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) =>
          tf.sum(tf.mul(batchNormTrain(a as tf.Tensor4D, g, b, bn, relu), dy)),
        )([x, tf.tensor1d(g0), tf.tensor1d(b0)]);
        const ref = tf.grads((a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => {
          const mean = tf.mean(a, [0, 1, 2]);
          const v = tf.mean(tf.square(tf.sub(a, mean)), [0, 1, 2]);
          let y = tf.add(tf.mul(tf.div(tf.sub(a, mean), tf.sqrt(tf.add(v, 1e-5))), g), b);
          if (relu) y = tf.relu(y);
          return tf.sum(tf.mul(y, dy));
        })([x, tf.tensor1d(g0), tf.tensor1d(b0)]);
        assertGradsClose(mine, ref, 'grad');
        // Running statistics follow PyTorch: momentum 0.1 from (0, 1), unbiased variance.
        let m0 = 0;
        for (let i = 0; i < x0.length; i += 5) m0 += x0[i]!;
        m0 /= x0.length / 5;
        let v0 = 0;
        for (let i = 0; i < x0.length; i += 5) v0 += (x0[i]! - m0) ** 2;
        v0 /= x0.length / 5 - 1;
        assert.ok(Math.abs(bn.runningMean.dataSync()[0]! - 0.1 * m0) < 1e-5);
        assert.ok(Math.abs(bn.runningVar.dataSync()[0]! - (0.9 + 0.1 * v0)) < 1e-4);
        // Evaluation mode (running statistics; one fused per-channel affine op with its own
        // gradient) against the textbook formula's automatic gradient.
        const evalMine = tf.grads((a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => {
          const e = { ...bn, gamma: g as tf.Variable, beta: b as tf.Variable };
          return tf.sum(tf.mul(batchNorm(e, a as tf.Tensor4D, false, relu), dy));
        })([x, tf.tensor1d(g0), tf.tensor1d(b0)]);
        const evalRef = tf.grads((a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => {
          const inv = tf.rsqrt(tf.add(bn.runningVar, 1e-5));
          let y = tf.add(tf.mul(tf.mul(tf.sub(a, bn.runningMean), inv), g), b);
          if (relu) y = tf.relu(y);
          return tf.sum(tf.mul(y, dy));
        })([x, tf.tensor1d(g0), tf.tensor1d(b0)]);
        for (const r of evalRef) assert.ok(r.dataSync().some((v) => Math.abs(v) > 1e-3));
        assertGradsClose(evalMine, evalRef, 'eval grad');
        ps.dispose();
      }
      await initBackend('wasm');
      setTrainingKernels(kernels);
    });

  it('normalises 409,600 rows with a mean of 1000 to float precision (the sums do not cancel)', async () => {
    await initBackend('wasm');
    const rng = createRng(8);
    const [b, h, w, c] = [100, 64, 64, 1];
    const x0 = Float32Array.from({ length: b * h * w * c }, () => 1000 + rng.normal());
    let mean = 0;
    for (const v of x0) mean += v;
    mean /= x0.length;
    let variance = 0;
    for (const v of x0) variance += (v - mean) ** 2;
    variance /= x0.length;
    const ps = new ParamSet();
    const bn = makeBatchNorm(ps, 'bn', c);
    const y = tf.tidy(() => batchNormTrain(tf.tensor4d(x0, [b, h, w, c]), bn.gamma, bn.beta, bn, false));
    const got = y.dataSync();
    let err = 0;
    for (let i = 0; i < x0.length; i++)
      err = Math.max(err, Math.abs(got[i]! - (x0[i]! - mean) / Math.sqrt(variance + 1e-5)));
    assert.ok(err < 2e-3, `max error ${err}`);
    y.dispose();
    ps.dispose();
  });
});
