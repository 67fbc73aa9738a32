/**
 * SGD with momentum and weight decay: the fused native update against the tfjs-op fallback (bit
 * for bit, over many steps, seeds, shapes and settings) and against PyTorch's rule written out by
 * hand in float64 (d = g + wd * p; buf = momentum * buf + d; p = p - lr * buf).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../backend/backend.ts';
import { SGD_KERNEL } from '../backend/native-kernels/names.ts';
import { setTrainingKernels } from '../backend/training-kernels.ts';
import { loadNativeAddon, nativeStatus } from '../native-addon.ts';
import { createRng, type Rng } from '../random/rng.ts';
import { Sgd } from './sgd.ts';

const skip = !nativeStatus().available;

interface Trajectory {
  params: Float32Array[];
  buffers: Float32Array[];
}

/** `steps` updates of fresh variables with the same draws; what the parameters and buffers end at. */
function run(
  seed: number,
  shapes: number[][],
  opts: { momentum: number; weightDecay: number },
  steps: number,
) {
  const rng = createRng(seed);
  const draw = (r: Rng, shape: number[]) =>
    tf.tensor(
      Float32Array.from({ length: shape.reduce((p, d) => p * d, 1) }, () => r.normal()),
      shape,
    );
  const vars = shapes.map((s, i) =>
    tf.variable(draw(rng, s), true, `sgd-test-${seed}-${i}-${Math.random()}`),
  );
  const opt = new Sgd(opts);
  for (let s = 0; s < steps; s++) {
    const grads: tf.NamedTensorMap = {};
    for (const v of vars) grads[v.name] = draw(rng, v.shape);
    opt.step(vars, grads, 0.1 / (1 + s));
    for (const g of Object.values(grads)) g.dispose();
  }
  const out: Trajectory = {
    params: vars.map((v) => v.dataSync() as Float32Array),
    buffers: Object.values(opt.state()).map((b) => b.data),
  };
  for (const v of vars) v.dispose();
  opt.dispose();
  return out;
}

describe('Sgd', () => {
  before(async () => {
    await initBackend('wasm');
  });
  after(() => {
    if (!skip) setTrainingKernels('native');
  });

  it('the fused native update is bit-identical to the tfjs ops over many steps and settings', {
    skip,
  }, () => {
    assert.ok(tf.getKernel(SGD_KERNEL, 'wasm') !== undefined);
    const shapes = [[3, 3, 4, 8], [8], [1], [17, 5], [1000]];
    for (const [seed, momentum, weightDecay] of [
      [1, 0.9, 5e-4],
      [2, 0.9, 0],
      [3, 0, 1e-2],
      [4, 0.5, 0.1],
    ] as const) {
      setTrainingKernels('native');
      const fused = run(seed, shapes, { momentum, weightDecay }, 12);
      setTrainingKernels('wasm');
      assert.equal(tf.getKernel(SGD_KERNEL, 'wasm'), undefined);
      const ops = run(seed, shapes, { momentum, weightDecay }, 12);
      setTrainingKernels('native');
      fused.params.forEach((p, i) => {
        assert.deepEqual(p, ops.params[i], `seed ${seed}: parameter ${i}`);
      });
      fused.buffers.forEach((b, i) => {
        assert.deepEqual(b, ops.buffers[i], `seed ${seed}: buffer ${i}`);
      });
    }
  });

  it("follows PyTorch's rule (written out in float64) within float rounding", () => {
    const rng = createRng(9);
    const n = 50;
    const p0 = Float64Array.from({ length: n }, () => rng.normal());
    const gs = Array.from({ length: 6 }, () => Float64Array.from({ length: n }, () => rng.normal()));
    const [momentum, wd] = [0.9, 5e-4];
    const v = tf.variable(tf.tensor1d(Float32Array.from(p0)), true, `sgd-rule-${Math.random()}`);
    const opt = new Sgd({ momentum, weightDecay: wd });
    const p = Float64Array.from(p0);
    const buf = new Float64Array(n);
    gs.forEach((g, s) => {
      const lr = 0.05 * (s + 1);
      for (let i = 0; i < n; i++) {
        const d = g[i]! + wd * p[i]!;
        buf[i] = s === 0 ? d : momentum * buf[i]! + d; // PyTorch: buf = d on the first step
        p[i]! -= lr * buf[i]!;
      }
      const gt = tf.tensor1d(Float32Array.from(g));
      opt.step([v], { [v.name]: gt }, lr);
      gt.dispose();
    });
    const got = v.dataSync();
    for (let i = 0; i < n; i++)
      assert.ok(Math.abs(got[i]! - p[i]!) < 1e-5 * (1 + Math.abs(p[i]!)), `value ${i}`);
    v.dispose();
    opt.dispose();
  });

  it('updates in place only where no other tensor shares the data; a shared one gets its own copy', {
    skip,
  }, () => {
    const v = tf.variable(tf.tensor1d([1, 2, 3]), true, `sgd-share-${Math.random()}`);
    const w = tf.variable(tf.tensor1d([4, 5]), true, `sgd-share-${Math.random()}`);
    const alias = tf.clone(v); // shares v's data
    const opt = new Sgd({ momentum: 0.9, weightDecay: 0 });
    opt.stepFlat([v, w], Float32Array.of(1, 1, 1, 2, 2), 0.5);
    assert.deepEqual(Array.from(alias.dataSync()), [1, 2, 3]);
    assert.deepEqual(Array.from(v.dataSync()), [0.5, 1.5, 2.5]);
    assert.deepEqual(Array.from(w.dataSync()), [3, 4]);
    // Momentum carries over, held per parameter with its shape.
    opt.stepFlat([v, w], Float32Array.of(0, 0, 0, 0, 0), 1);
    assert.deepEqual(Array.from(w.dataSync()), [1.2, 2.2].map(Math.fround));
    const st = opt.state();
    assert.deepEqual(
      Object.values(st).map((b) => b.shape),
      [[3], [2]],
    );
    assert.deepEqual(Array.from(Object.values(st)[1]!.data), [1.8, 1.8].map(Math.fround));
    tf.dispose([v, w, alias]);
    opt.dispose();
  });

  it('refuses gradients of the wrong length, and the addon checks its arguments before writing', {
    skip,
  }, () => {
    const v = tf.variable(tf.tensor1d([1, 2, 3]), true, `sgd-len-${Math.random()}`);
    const opt = new Sgd();
    assert.throws(
      () => opt.stepFlat([v], new Float32Array(4), 0.1),
      /^Error: sgd: 4 gradient values for 3 parameters$/,
    );
    const addon = loadNativeAddon()!;
    const heap = new ArrayBuffer(64);
    const before = new Float32Array(heap).slice();
    const g = new Float32Array(3).fill(1);
    const call = (params: number[], n = 3) =>
      addon.sgdFlat(heap, Float64Array.from(params), g.subarray(0, n), new Float32Array(n), 0.1, 0.9, 0);
    assert.throws(() => call([0, 3, 12, 1]), /sgdFlat: g and buf must hold exactly the parameters' values/);
    assert.throws(() => call([60, 3]), /sgdFlat: a parameter lies outside the heap or is not 4-byte aligned/);
    assert.throws(() => call([2, 3]), /sgdFlat: a parameter lies outside the heap or is not 4-byte aligned/);
    assert.throws(() => call([0, 1.5], 3), /sgdFlat: a size is not a whole number >= 0/);
    assert.throws(() => call([0]), /sgdFlat: params must be a Float64Array of \[offset, size\] pairs/);
    assert.deepEqual(new Float32Array(heap), before);
    call([8, 2, 40, 1]);
    assert.deepEqual(Array.from(new Float32Array(heap, 8, 2)), [-0.1, -0.1].map(Math.fround));
    assert.deepEqual(Array.from(new Float32Array(heap, 40, 1)), [Math.fround(-0.1)]);
    v.dispose();
  });

  it('the fused kernel rejects a gradient of another shape, naming both', { skip }, () => {
    tf.tidy(() => {
      assert.throws(
        () =>
          tf
            .engine()
            .runKernel(
              SGD_KERNEL,
              { p: tf.zeros([2, 3]), g: tf.zeros([3, 2]), buf: tf.zeros([2, 3]) },
              { lr: 0.1, momentum: 0.9, weightDecay: 0 },
            ),
        /sgd: the gradient \[3,2\] must have the parameter's shape \[2,3\]/,
      );
    });
  });
});
