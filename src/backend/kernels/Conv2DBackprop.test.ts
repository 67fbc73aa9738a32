// Conv2DBackpropFilter.ts and Conv2DBackpropInput.ts, checked together as tf.grads runs them.
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { maxRelErr, randomArray } from '../../../test/helpers/arrays.ts';
import { createRng } from '../../random/rng.ts';
import { initBackend } from '../backend.ts';
import { setTrainingKernels } from '../training-kernels.ts';

type Pad = 'same' | 'valid';
interface Case {
  b: number;
  h: number;
  w: number;
  ci: number;
  co: number;
  k: number;
  s: number;
  pad: Pad;
}

function randomCases(n: number, seed: number): Case[] {
  const rng = createRng(seed);
  const cases: Case[] = [];
  for (let i = 0; i < n; i++) {
    const k = rng.int(2) === 0 ? 1 : 3;
    const h = 3 + rng.int(10); // odd and even sizes
    cases.push({
      b: 1 + rng.int(8),
      h,
      w: rng.int(2) === 0 ? h : 3 + rng.int(10),
      ci: 1 + rng.int(16),
      co: 1 + rng.int(16),
      k,
      s: 1 + rng.int(2),
      pad: rng.int(2) === 0 ? 'same' : 'valid',
    });
  }
  // Make sure every corner of the grid is covered regardless of the draw (ci 1 and 3 take the
  // stacked-taps filter gradient at stride 1, ci 5 the convolution form).
  for (const ci of [1, 3, 5])
    for (const k of [1, 3])
      for (const s of [1, 2])
        for (const pad of ['same', 'valid'] as Pad[])
          for (const h of [7, 8]) cases.push({ b: 2, h, w: h, ci, co: 5, k, s, pad });
  return cases;
}

/** Runs the two gradient kernels on the named backend and reads the results back. */
function gradsOn(
  backend: string,
  c: Case,
  x: Float32Array,
  f: Float32Array,
  dy: Float32Array,
  dyShape: number[],
) {
  tf.setBackend(backend);
  const xt = tf.tensor4d(x, [c.b, c.h, c.w, c.ci]);
  const ft = tf.tensor4d(f, [c.k, c.k, c.ci, c.co]);
  const dyt = tf.tensor(dy, dyShape);
  const attrs = { strides: [c.s, c.s], pad: c.pad, dataFormat: 'NHWC' };
  const dw = tf.engine().runKernel(
    'Conv2DBackpropFilter',
    { x: xt, dy: dyt },
    {
      ...attrs,
      filterShape: [c.k, c.k, c.ci, c.co],
    },
  ) as tf.Tensor;
  const dx = tf.engine().runKernel(
    'Conv2DBackpropInput',
    { dy: dyt, filter: ft },
    {
      ...attrs,
      inputShape: [c.b, c.h, c.w, c.ci],
    },
  ) as tf.Tensor;
  const out = { dw: dw.dataSync().slice(), dx: dx.dataSync().slice(), dwShape: dw.shape, dxShape: dx.shape };
  tf.dispose([xt, ft, dyt, dw, dx]);
  return out;
}

describe('wasm convolution gradient kernels', () => {
  before(async () => {
    await initBackend('wasm');
    setTrainingKernels('wasm'); // the fallback when the native kernels are not built
  });

  it('match the cpu backend on random shapes (max relative error <= 1e-4)', () => {
    const rng = createRng(7);
    for (const c of randomCases(40, 1234)) {
      const oh = c.pad === 'same' ? Math.ceil(c.h / c.s) : Math.floor((c.h - c.k) / c.s) + 1;
      const ow = c.pad === 'same' ? Math.ceil(c.w / c.s) : Math.floor((c.w - c.k) / c.s) + 1;
      if (oh < 1 || ow < 1) continue;
      const x = randomArray(c.b * c.h * c.w * c.ci, rng);
      const f = randomArray(c.k * c.k * c.ci * c.co, rng);
      const dyShape = [c.b, oh, ow, c.co];
      const dy = randomArray(c.b * oh * ow * c.co, rng);
      const ref = gradsOn('cpu', c, x, f, dy, dyShape);
      const got = gradsOn('wasm', c, x, f, dy, dyShape);
      const label = JSON.stringify(c);
      assert.deepEqual(got.dwShape, ref.dwShape, label);
      assert.deepEqual(got.dxShape, ref.dxShape, label);
      assert.ok(maxRelErr(got.dw, ref.dw) <= 1e-4, `filter grad ${label}: ${maxRelErr(got.dw, ref.dw)}`);
      assert.ok(maxRelErr(got.dx, ref.dx) <= 1e-4, `input grad ${label}: ${maxRelErr(got.dx, ref.dx)}`);
    }
    tf.setBackend('wasm');
  });

  it('give tf.grads of a conv2d on wasm equal to cpu, without leaking tensors', () => {
    const rng = createRng(3);
    const x = randomArray(4 * 9 * 9 * 3, rng);
    const f = randomArray(3 * 3 * 3 * 8, rng);
    const run = (backend: string) => {
      tf.setBackend(backend);
      const before = tf.memory().numTensors;
      const [gx, gf] = tf.tidy(() => {
        const g = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
          tf.sum(tf.square(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 2, 'same'))),
        );
        return g([tf.tensor4d(x, [4, 9, 9, 3]), tf.tensor4d(f, [3, 3, 3, 8])]);
      });
      const out = [gx!.dataSync().slice(), gf!.dataSync().slice()];
      tf.dispose([gx!, gf!]);
      assert.equal(tf.memory().numTensors, before);
      return out;
    };
    const ref = run('cpu');
    const got = run('wasm');
    assert.ok(maxRelErr(got[0]!, ref[0]!) <= 1e-4);
    assert.ok(maxRelErr(got[1]!, ref[1]!) <= 1e-4);
  });
});
