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
import { nativeStatus } from '../native-addon.ts';
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
