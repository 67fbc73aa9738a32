import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { maxRelErr, randomArray } from '../../test/helpers/arrays.ts';
import { loadNativeAddon, nativeStatus } from '../native-addon.ts';
import { createRng } from '../random/rng.ts';
import { initBackend } from './backend.ts';
import { setTrainingKernels, type TrainingKernels, trainingKernels } from './training-kernels.ts';

/** Where the addon must build and run: x86-64 Linux with AVX2 + FMA (this project's CI machines). */
function shouldHaveNative(): boolean {
  if (process.platform !== 'linux' || process.arch !== 'x64' || process.env.LONGTAIL_NATIVE === '0')
    return false;
  const cpu = readFileSync('/proc/cpuinfo', 'utf8');
  return /\bavx2\b/.test(cpu) && /\bfma\b/.test(cpu);
}

const available = nativeStatus().available;

interface Case {
  b: number;
  h: number;
  w: number;
  ci: number;
  co: number;
  k: number;
  s: number;
  pad: 'same' | 'valid' | number;
}

/** Every kernel path: channel counts around the 8- and 16-wide blocks, 1-5 tiles and tails. */
function cases(n: number, seed: number): Case[] {
  const rng = createRng(seed);
  const out: Case[] = [];
  const pick = <T>(xs: T[]) => xs[rng.int(xs.length)]!;
  for (let i = 0; i < n; i++) {
    const k = pick([1, 2, 3, 5]);
    out.push({
      b: 1 + rng.int(3),
      h: 2 + rng.int(11),
      w: 2 + rng.int(11),
      ci: pick([1, 2, 3, 7, 8, 9, 16, 17, 33]),
      co: pick([1, 5, 8, 12, 16, 24, 31, 64]),
      k,
      s: pick([1, 1, 2, 3]),
      pad: pick(['same', 'valid', 0, Math.floor(k / 2)] as Case['pad'][]),
    });
  }
  // The ResNet shapes, and padding the native kernels hand back to wasm (pad >= filter).
  out.push({ b: 2, h: 28, w: 28, ci: 1, co: 16, k: 3, s: 1, pad: 'same' });
  out.push({ b: 2, h: 14, w: 14, ci: 16, co: 32, k: 3, s: 2, pad: 'same' });
  out.push({ b: 2, h: 8, w: 8, ci: 32, co: 64, k: 1, s: 2, pad: 'same' });
  out.push({ b: 2, h: 6, w: 6, ci: 4, co: 5, k: 3, s: 1, pad: 3 });
  return out;
}

/** Forward, input gradient and filter gradient kernels of one case on one backend. */
function kernelsOn(
  backend: string,
  c: Case,
  x: Float32Array,
  f: Float32Array,
  rng: ReturnType<typeof createRng>,
) {
  tf.setBackend(backend);
  const attrs = { strides: [c.s, c.s], pad: c.pad, dataFormat: 'NHWC', dilations: 1 };
  const xt = tf.tensor4d(x, [c.b, c.h, c.w, c.ci]);
  const ft = tf.tensor4d(f, [c.k, c.k, c.ci, c.co]);
  const y = tf.engine().runKernel('Conv2D', { x: xt, filter: ft }, attrs) as tf.Tensor;
  const dy = tf.tensor(randomArray(y.size, rng), y.shape);
  const dx = tf
    .engine()
    .runKernel(
      'Conv2DBackpropInput',
      { dy, filter: ft },
      { ...attrs, inputShape: [c.b, c.h, c.w, c.ci] },
    ) as tf.Tensor;
  const dw = tf
    .engine()
    .runKernel(
      'Conv2DBackpropFilter',
      { x: xt, dy },
      { ...attrs, filterShape: [c.k, c.k, c.ci, c.co] },
    ) as tf.Tensor;
  const out = {
    y: y.dataSync().slice(),
    dx: dx.dataSync().slice(),
    dw: dw.dataSync().slice(),
    yShape: y.shape,
  };
  tf.dispose([xt, ft, y, dy, dx, dw]);
  return out;
}

describe('native convolution kernels', () => {
  before(async () => {
    await initBackend('wasm');
  });

  it('are built and run on this machine where they should (x86-64 Linux, AVX2 + FMA)', () => {
    if (!shouldHaveNative()) return;
    assert.equal(available, true, nativeStatus().reason);
    assert.equal(trainingKernels(), 'native');
  });

  it('match the cpu backend: forward, input and filter gradients on random shapes', {
    skip: !available,
  }, () => {
    setTrainingKernels('native');
    const rng = createRng(21);
    let checked = 0;
    for (const c of cases(60, 99)) {
      const x = randomArray(c.b * c.h * c.w * c.ci, rng);
      const f = randomArray(c.k * c.k * c.ci * c.co, rng);
      const seed = rng.int(1 << 30);
      const p = c.pad === 'valid' ? 0 : c.pad === 'same' ? c.k : 2 * c.pad;
      if (c.h + p < c.k || c.w + p < c.k) continue; // the filter does not fit the input
      const ref = kernelsOn('cpu', c, x, f, createRng(seed));
      const got = kernelsOn('wasm', c, x, f, createRng(seed));
      const label = JSON.stringify(c);
      assert.deepEqual(got.yShape, ref.yShape, label);
      assert.ok(maxRelErr(got.y, ref.y) <= 1e-5, `forward ${label}: ${maxRelErr(got.y, ref.y)}`);
      assert.ok(maxRelErr(got.dx, ref.dx) <= 1e-5, `input grad ${label}: ${maxRelErr(got.dx, ref.dx)}`);
      assert.ok(maxRelErr(got.dw, ref.dw) <= 1e-5, `filter grad ${label}: ${maxRelErr(got.dw, ref.dw)}`);
      checked++;
    }
    assert.ok(checked >= 40, `only ${checked} cases ran`);
    tf.setBackend('wasm');
  });

  it('give the same training gradients as the wasm kernels, without leaking tensors', {
    skip: !available,
  }, () => {
    const rng = createRng(5);
    const x = randomArray(4 * 12 * 12 * 3, rng);
    const f1 = randomArray(3 * 3 * 3 * 16, rng);
    const f2 = randomArray(3 * 3 * 16 * 32, rng);
    const run = (kind: TrainingKernels) => {
      setTrainingKernels(kind);
      const before = tf.memory().numTensors;
      const grads = tf.tidy(() => {
        const g = tf.grads((a: tf.Tensor, w1: tf.Tensor, w2: tf.Tensor) => {
          const h = tf.relu(tf.conv2d(a as tf.Tensor4D, w1 as tf.Tensor4D, 1, 'same'));
          return tf.sum(tf.square(tf.conv2d(h, w2 as tf.Tensor4D, 2, 'same')));
        });
        return g([
          tf.tensor4d(x, [4, 12, 12, 3]),
          tf.tensor4d(f1, [3, 3, 3, 16]),
          tf.tensor4d(f2, [3, 3, 16, 32]),
        ]);
      });
      const out = grads.map((t) => t.dataSync().slice());
      tf.dispose(grads);
      assert.equal(tf.memory().numTensors, before);
      return out;
    };
    const wasm = run('wasm');
    const native = run('native');
    for (let i = 0; i < 3; i++) assert.ok(maxRelErr(native[i]!, wasm[i]!) <= 1e-4, `gradient ${i}`);
  });

  it('AVX-512 tiles give bit-identical results to the AVX2 ones (convolutions, matrix products)', {
    skip: !available || !loadNativeAddon()?.avx512(),
  }, () => {
    setTrainingKernels('native');
    const addon = loadNativeAddon()!;
    const rng = createRng(512);
    const both = <T>(run: () => T): [T, T] => {
      assert.equal(addon.avx512(false), false);
      const avx2 = run();
      assert.equal(addon.avx512(true), true);
      return [avx2, run()];
    };
    let checked = 0;
    // Output channels around the 16-lane vectors and 64-column blocks (1-4 vectors, tails).
    const wide = cases(40, 7).map((c, i) => ({
      ...c,
      co: [1, 15, 16, 17, 33, 48, 64, 65, 80, 100][i % 10]!,
    }));
    for (const c of [...cases(30, 512), ...wide]) {
      const p = c.pad === 'valid' ? 0 : c.pad === 'same' ? c.k : 2 * c.pad;
      if (c.h + p < c.k || c.w + p < c.k) continue;
      const x = randomArray(c.b * c.h * c.w * c.ci, rng);
      const f = randomArray(c.k * c.k * c.ci * c.co, rng);
      const seed = rng.int(1 << 30);
      const [a, b] = both(() => kernelsOn('wasm', c, x, f, createRng(seed)));
      const label = JSON.stringify(c);
      assert.deepEqual(b.y, a.y, `forward ${label}`);
      assert.deepEqual(b.dx, a.dx, `input grad ${label}`);
      assert.deepEqual(b.dw, a.dw, `filter grad ${label}`);
      checked++;
    }
    assert.ok(checked >= 50, `only ${checked} cases ran`);
    for (let i = 0; i < 20; i++) {
      const [M, K, N] = [1 + rng.int(70), rng.int(90) + 1, 1 + rng.int(140)];
      const a = randomArray(M * K, rng);
      const bm = randomArray(K * N, rng);
      const [p, q] = both(() =>
        tf.tidy(() => tf.matMul(tf.tensor2d(a, [M, K]), tf.tensor2d(bm, [K, N])).dataSync()),
      );
      assert.deepEqual(q, p, `matmul ${M}x${K}x${N}`);
    }
  });

  it("pixel- and channel-vectorised AVX-512 paths (16-channel layers) give the gather product's bits", {
    skip: !available || !loadNativeAddon()?.avx512(),
  }, () => {
    // The planar product (16 output channels and 16-64 input channels, filters larger than 1x1:
    // the forward pass at stride 1, the input gradient at any stride) and the channel-vectorised
    // filter gradient (16 input channels, filters 3 wide) keep each
    // output's sum in the gather product's order, so AVX-512 on and off must agree bit for bit;
    // and both must match the cpu backend. Odd sizes, every padding, stride 2 (which takes the
    // gather product for the forward pass, strided phases for the input gradient) and batch 1.
    setTrainingKernels('native');
    const addon = loadNativeAddon()!;
    const rng = createRng(1616);
    const pick = <T>(xs: T[]) => xs[rng.int(xs.length)]!;
    let checked = 0;
    // Then rows that are whole vectors (16 and 32 wide: the planar product by output rows, in
    // both the forward pass and the input gradient), one of them a single row.
    const wide: Case[] = [
      { b: 2, h: 4, w: 16, ci: 16, co: 16, k: 3, s: 1, pad: 'same' },
      { b: 1, h: 3, w: 32, ci: 16, co: 32, k: 3, s: 1, pad: 1 },
      { b: 1, h: 1, w: 32, ci: 32, co: 16, k: 3, s: 1, pad: 'same' },
      { b: 1, h: 5, w: 18, ci: 16, co: 16, k: 3, s: 1, pad: 'valid' },
    ];
    for (let i = 0; i < 30 + wide.length; i++) {
      const k = pick([1, 2, 3, 3, 3, 5]);
      const c: Case = wide[i - 30] ?? {
        b: i % 4 === 0 ? 1 : 1 + rng.int(3),
        h: 3 + rng.int(10),
        w: 3 + rng.int(10),
        ci: pick([3, 16, 16, 16, 32, 48]),
        co: pick([16, 16, 32, 32, 48]),
        k,
        s: pick([1, 1, 1, 2]),
        pad: pick(['same', 'valid', 0, Math.floor(k / 2)] as Case['pad'][]),
      };
      const p = c.pad === 'valid' ? 0 : c.pad === 'same' ? c.k : 2 * c.pad;
      if (c.h + p < c.k || c.w + p < c.k) continue;
      const x = randomArray(c.b * c.h * c.w * c.ci, rng);
      const f = randomArray(c.k * c.k * c.ci * c.co, rng);
      const seed = rng.int(1 << 30);
      addon.avx512(false);
      const gather = kernelsOn('wasm', c, x, f, createRng(seed));
      addon.avx512(true);
      const vectorised = kernelsOn('wasm', c, x, f, createRng(seed));
      const label = JSON.stringify(c);
      assert.deepEqual(vectorised.y, gather.y, `forward ${label}`);
      assert.deepEqual(vectorised.dx, gather.dx, `input grad ${label}`);
      assert.deepEqual(vectorised.dw, gather.dw, `filter grad ${label}`);
      // The gather product is checked against the cpu backend above; a few cases here directly
      // (the cpu backend's convolutions are the slow part of this file).
      if (i % 4 === 0) {
        const ref = kernelsOn('cpu', c, x, f, createRng(seed));
        tf.setBackend('wasm');
        assert.ok(
          maxRelErr(vectorised.y, ref.y) <= 1e-5,
          `forward ${label}: ${maxRelErr(vectorised.y, ref.y)}`,
        );
        assert.ok(maxRelErr(vectorised.dx, ref.dx) <= 1e-5, `input grad ${label}`);
        assert.ok(maxRelErr(vectorised.dw, ref.dw) <= 1e-5, `filter grad ${label}`);
      }
      checked++;
    }
    assert.ok(checked >= 28, `only ${checked} cases ran`);
  });

  it("filter gradients that read x in place or hold every filter row in one tile give the gather product's bits", {
    skip: !available || !loadNativeAddon()?.avx512(),
  }, () => {
    // The 16-input-channel filter gradient masks taps outside the image instead of reading a
    // padded copy, and the stems' (1 or 3 channels, 16 outputs) runs every filter row in one
    // tile: both keep the gather product's order. Tiny images (every pixel a border pixel), odd
    // sizes, every padding, strides 1-3, batch 1-3; filter gradient only (the cheap pass).
    setTrainingKernels('native');
    const addon = loadNativeAddon()!;
    const rng = createRng(3316);
    const pick = <T>(xs: T[]) => xs[rng.int(xs.length)]!;
    let checked = 0;
    for (let i = 0; i < 36; i++) {
      const ci = [1, 3, 16][i % 3]!;
      const c: Case = {
        b: 1 + rng.int(3),
        h: 1 + rng.int(i < 12 ? 3 : 12),
        w: 1 + rng.int(i < 12 ? 3 : 12),
        ci,
        co: ci === 16 ? pick([16, 32, 48]) : 16,
        k: 3,
        s: pick([1, 1, 2, 3]),
        pad: pick(['same', 'same', 'valid', 0, 1, 2] as Case['pad'][]),
      };
      const p = c.pad === 'valid' ? 0 : c.pad === 'same' ? c.k : 2 * c.pad;
      if (c.h + p < c.k || c.w + p < c.k) continue;
      const x = randomArray(c.b * c.h * c.w * c.ci, rng);
      const dy = randomArray(c.b * (c.h + 4) * (c.w + 4) * c.co, rng); // enough for any padding here
      const grad = () =>
        tf.tidy(() => {
          const attrs = { strides: [c.s, c.s], pad: c.pad, dataFormat: 'NHWC', dilations: 1 };
          const xt = tf.tensor4d(x, [c.b, c.h, c.w, c.ci]);
          const filterShape = [3, 3, c.ci, c.co];
          const ft = tf.zeros(filterShape);
          const y = tf.engine().runKernel('Conv2D', { x: xt, filter: ft }, attrs) as tf.Tensor;
          const dyt = tf.tensor(dy.subarray(0, y.size), y.shape);
          return (
            tf
              .engine()
              .runKernel('Conv2DBackpropFilter', { x: xt, dy: dyt }, { ...attrs, filterShape }) as tf.Tensor
          ).dataSync();
        });
      addon.avx512(false);
      const gather = grad();
      addon.avx512(true);
      const vectorised = grad();
      assert.deepEqual(vectorised, gather, `filter grad ${JSON.stringify(c)}`);
      checked++;
    }
    assert.ok(checked >= 28, `only ${checked} cases ran`);
  });

  it('refuse a filter larger than the padded input with a message (wasm would write out of bounds)', {
    skip: !available,
  }, () => {
    setTrainingKernels('native');
    const x = tf.zeros([1, 2, 4, 3]) as tf.Tensor4D;
    const w = tf.zeros([5, 5, 3, 2]) as tf.Tensor4D;
    assert.throws(() => tf.conv2d(x, w, 1, 0), /the 5x5 filter is larger than the padded 2x4 input/);
    tf.dispose([x, w]);
  });

  it('refuse a tensor outside the heap with a clear error', { skip: !available }, () => {
    const addon = loadNativeAddon()!;
    const heap = new ArrayBuffer(1024);
    const shape = Int32Array.from([1, 4, 4, 1, 3, 3, 1, 1, 1, 1, 1, 4, 4]);
    assert.throws(() => addon.conv2d(0, heap, 0, 64, 1000, shape), /outside the heap/);
    assert.throws(() => addon.conv2d(0, heap, 2, 64, 128, shape), /4-byte aligned/);
    assert.throws(() => addon.conv2d(0, heap, 0, 64, 128, Int32Array.from([1, 2, 3])), /Int32Array of 13/);
    assert.throws(
      () => addon.conv2d(0, heap, 0, 64, 128, Int32Array.from([1, 4, 4, 0, 3, 3, 1, 1, 1, 1, 1, 4, 4])),
      /sizes must be positive/,
    );
    assert.throws(
      () => addon.matmul(heap, 0, 64, 128, Int32Array.from([1, 2])),
      /dims must be an Int32Array of 5/,
    );
    assert.throws(
      () => addon.matmul(heap, 0, 64, 128, Int32Array.from([2, 3, 1, 1, 1])),
      /batch sizes must match/,
    );
    assert.throws(
      () => addon.matmul(heap, 0, 64, 1020, Int32Array.from([1, 1, 2, 2, 2])),
      /outside the heap/,
    );
  });
});
