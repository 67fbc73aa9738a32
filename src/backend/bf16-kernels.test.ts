import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { randomArray } from '../../test/helpers/arrays.ts';
import { createModel, disposeModel } from '../models/model.ts';
import { bf16Status, loadNativeAddon } from '../native-addon.ts';
import { createRng } from '../random/rng.ts';
import { computeGrads } from '../train/step.ts';
import { initBackend } from './backend.ts';
import { enterBf16Training, trainingKernels } from './training-kernels.ts';

/**
 * The bf16 products (native/src/bf16.cc) against float64 references and the fp32 kernels.
 *
 * The bound, per output: with u = 2^-8 (bf16's unit roundoff: 8 significant bits, nearest even),
 * each input carries a relative error of at most u, so each product one of at most 2u + u^2
 * (products of two bf16 values are exact in fp32); the K-term fp32 sum adds at most
 * K * 2^-24 relative to sum |a_k b_k| (one rounding per addition). So
 *   |c_bf16 - c_exact| <= (2u + u^2 + K 2^-24) * sum_k |a_k| |b_k|
 * and, against the same sum of the bf16-rounded inputs in float64 (the rounding itself checked),
 *   |c_bf16 - c_rounded| <= K 2^-24 * sum_k |bf16(a_k)| |bf16(b_k)|.
 */
const U = 2 ** -8;
const CLI = join(import.meta.dirname, '..', '..', 'bin', 'longtail.js');
const EPS32 = 2 ** -24;

const F = new Float32Array(1);
const I = new Uint32Array(F.buffer);
/** float32 -> bf16 -> float32, round to nearest even (NaN not needed here), written independently of the C++. */
function bf16(v: number): number {
  F[0] = v;
  const x = I[0]!;
  I[0] = (((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) << 16) >>> 0;
  return F[0]!;
}

function cpuHasBf16(): boolean {
  if (process.platform !== 'linux' || process.arch !== 'x64' || process.env.LONGTAIL_NATIVE === '0')
    return false;
  return /\bavx512_bf16\b/.test(readFileSync('/proc/cpuinfo', 'utf8'));
}

const addon = loadNativeAddon();
const runs = bf16Status().available;

describe('bf16 kernels (vdpbf16ps, fp32 accumulation)', () => {
  it('run where the CPU has AVX512_BF16, and say why not elsewhere', () => {
    assert.equal(runs, cpuHasBf16() && addon !== null);
    if (!runs) assert.match(bf16Status().reason, /AVX512_BF16|no native kernels/);
  });

  it('doctor says whether they run, and why not when the native kernels are off', () => {
    const doctor = (env: Record<string, string>) => {
      const r = spawnSync(process.execPath, [CLI, 'doctor', '--json'], {
        encoding: 'utf8',
        env: { ...process.env, LONGTAIL_BACKEND: '', ...env },
        timeout: 120_000,
      });
      assert.equal(r.status, 0, r.stderr);
      return JSON.parse(r.stdout).bf16Kernels as string;
    };
    assert.equal(doctor({ LONGTAIL_NATIVE: '0' }), 'off: no native kernels (disabled by LONGTAIL_NATIVE=0)');
    assert.equal(doctor({}), runs ? 'available (AVX512_BF16)' : `off: ${bf16Status().reason}`);
  });

  it('round to nearest even as the reference does', () => {
    // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties go to the even significand (1).
    assert.equal(bf16(1 + 2 ** -8), 1);
    assert.equal(bf16(1 + 3 * 2 ** -8), 1 + 2 ** -6);
    assert.equal(bf16(1 + 2 ** -8 + 2 ** -20), 1 + 2 ** -7);
  });

  it('matrix products stay within the bf16 bound over random shapes', { skip: !runs }, () => {
    const rng = createRng(29);
    let worst = 0;
    let anyRounded = false;
    for (let t = 0; t < 60; t++) {
      const [M, K, N] = [1 + rng.int(40), rng.int(150) + 1, 1 + rng.int(140)];
      const a = randomArray(M * K, rng);
      const b = randomArray(K * N, rng);
      const c = new Float32Array(M * N);
      addon!.matmulBf16(a, b, c, M, K, N);
      const ar = a.map(bf16);
      const br = b.map(bf16);
      for (let m = 0; m < M; m++)
        for (let n = 0; n < N; n++) {
          let exact = 0;
          let rounded = 0;
          let mag = 0;
          let magR = 0;
          for (let k = 0; k < K; k++) {
            const x = a[m * K + k]!;
            const y = b[k * N + n]!;
            exact += x * y;
            mag += Math.abs(x * y);
            const p = ar[m * K + k]! * br[k * N + n]!;
            rounded += p;
            magR += Math.abs(p);
          }
          const got = c[m * N + n]!;
          const rel = Math.abs(got - exact) / mag;
          worst = Math.max(worst, rel);
          if (got !== Math.fround(exact)) anyRounded = true;
          assert.ok(rel <= 2 * U + U * U + K * EPS32, `${M}x${K}x${N} [${m},${n}]: relative error ${rel}`);
          assert.ok(
            Math.abs(got - rounded) <= K * EPS32 * magR + 1e-30,
            `${M}x${K}x${N} [${m},${n}]: ${got} against ${rounded} from the bf16-rounded inputs`,
          );
        }
    }
    // The inputs really were rounded (a kernel that stayed fp32 would pass the first bound).
    assert.ok(anyRounded && worst > 2 ** -12, `largest relative error ${worst}`);
  });

  it('forward convolutions stay within the bound and near the fp32 kernel, stem channels included', {
    skip: !runs,
  }, () => {
    const rng = createRng(7);
    for (let t = 0; t < 40; t++) {
      const k = [1, 3, 3, 5][rng.int(4)]!;
      const s = 1 + rng.int(2);
      const ci = [1, 3, 16, 17, 32][rng.int(5)]!;
      const co = [1, 16, 20, 32, 64][rng.int(5)]!;
      const [b, H, W] = [1 + rng.int(3), k + rng.int(9), k + rng.int(9)];
      const p = rng.int(k); // top/left padding (as 'same' gives (k - 1) / 2)
      const oh = Math.floor((H + 2 * p - k) / s) + 1;
      const ow = Math.floor((W + 2 * p - k) / s) + 1;
      const shape = Int32Array.from([b, H, W, ci, k, k, co, s, s, p, p, oh, ow]);
      const x = randomArray(b * H * W * ci, rng);
      const w = randomArray(k * k * ci * co, rng);
      const y = new Float32Array(b * oh * ow * co);
      addon!.conv2dBf16(x, w, y, shape);
      // The fp32 kernel on a heap of its own.
      const heap = new ArrayBuffer(4 * (x.length + w.length + y.length));
      new Float32Array(heap, 0, x.length).set(x);
      new Float32Array(heap, 4 * x.length, w.length).set(w);
      addon!.conv2d(0, heap, 0, 4 * x.length, 4 * (x.length + w.length), shape);
      const y32 = new Float32Array(heap, 4 * (x.length + w.length), y.length);
      const K = k * k * ci;
      for (let n = 0; n < b; n++)
        for (let i = 0; i < oh; i++)
          for (let j = 0; j < ow; j++)
            for (let o = 0; o < co; o++) {
              let exact = 0;
              let mag = 0;
              for (let di = 0; di < k; di++)
                for (let dj = 0; dj < k; dj++) {
                  const r = i * s + di - p;
                  const q = j * s + dj - p;
                  if (r < 0 || q < 0 || r >= H || q >= W) continue;
                  for (let c = 0; c < ci; c++) {
                    const v = x[((n * H + r) * W + q) * ci + c]! * w[((di * k + dj) * ci + c) * co + o]!;
                    exact += v;
                    mag += Math.abs(v);
                  }
                }
              const at = ((n * oh + i) * ow + j) * co + o;
              const label = `${JSON.stringify([...shape])} [${n},${i},${j},${o}]`;
              const bound = (2 * U + U * U + K * EPS32) * mag + 1e-30;
              assert.ok(Math.abs(y[at]! - exact) <= bound, `${label}: ${y[at]} against ${exact}`);
              // bf16 against fp32: both within their bounds of the exact sum.
              assert.ok(Math.abs(y[at]! - y32[at]!) <= bound + K * EPS32 * mag, `${label}: fp32 ${y32[at]}`);
            }
    }
  });

  it('input gradients stay within the bound of the fp32 kernel, strided and padded', { skip: !runs }, () => {
    const rng = createRng(11);
    let worst = 0;
    for (let t = 0; t < 40; t++) {
      const k = [1, 3, 3, 5][rng.int(4)]!;
      const s = 1 + rng.int(2);
      const ci = [1, 3, 16, 17, 32][rng.int(5)]!;
      const co = [1, 16, 20, 32, 64][rng.int(5)]!;
      const [b, H, W] = [1 + rng.int(3), k + rng.int(9), k + rng.int(9)];
      const p = rng.int(k);
      const oh = Math.floor((H + 2 * p - k) / s) + 1;
      const ow = Math.floor((W + 2 * p - k) / s) + 1;
      const shape = Int32Array.from([b, H, W, ci, k, k, co, s, s, p, p, oh, ow]);
      const dy = randomArray(b * oh * ow * co, rng);
      const w = randomArray(k * k * ci * co, rng);
      const dx = new Float32Array(b * H * W * ci);
      addon!.conv2dBf16(dy, w, dx, shape, 1);
      // The fp32 kernel, and on |dy| and |w| the magnitude sum_k |dy_k| |w_k| the bound scales by.
      const fp32 = (a: Float32Array, f: Float32Array) => {
        const heap = new ArrayBuffer(4 * (a.length + f.length + dx.length));
        new Float32Array(heap, 0, a.length).set(a);
        new Float32Array(heap, 4 * a.length, f.length).set(f);
        addon!.conv2d(1, heap, 0, 4 * a.length, 4 * (a.length + f.length), shape);
        return new Float32Array(heap, 4 * (a.length + f.length), dx.length);
      };
      const dx32 = fp32(dy, w);
      const mag = fp32(dy.map(Math.abs), w.map(Math.abs));
      const K = k * k * co;
      for (let i = 0; i < dx.length; i++) {
        const d = Math.abs(dx[i]! - dx32[i]!);
        const bound = (2 * U + U * U + 2 * K * EPS32) * mag[i]! * (1 + 1e-5) + 1e-30;
        assert.ok(d <= bound, `${JSON.stringify([...shape])} [${i}]: ${dx[i]} against fp32 ${dx32[i]}`);
        if (mag[i]! > 0) worst = Math.max(worst, d / mag[i]!);
      }
    }
    assert.ok(worst > 2 ** -12, `largest relative difference ${worst}: were the inputs rounded to bf16?`);
  });

  it('filter gradients stay within the bound of the fp32 kernel, strided, padded, stem channels', {
    skip: !runs,
  }, () => {
    const rng = createRng(13);
    let worst = 0;
    for (let t = 0; t < 40; t++) {
      const k = [1, 3, 3, 5][rng.int(4)]!;
      const s = 1 + rng.int(2);
      const ci = [1, 3, 16, 17, 32][rng.int(5)]!;
      const co = [1, 16, 20, 32, 64][rng.int(5)]!;
      const [b, H, W] = [1 + rng.int(3), k + rng.int(9), k + rng.int(9)];
      const p = rng.int(k);
      const oh = Math.floor((H + 2 * p - k) / s) + 1;
      const ow = Math.floor((W + 2 * p - k) / s) + 1;
      const shape = Int32Array.from([b, H, W, ci, k, k, co, s, s, p, p, oh, ow]);
      const x = randomArray(b * H * W * ci, rng);
      const dy = randomArray(b * oh * ow * co, rng);
      const dw = new Float32Array(k * k * ci * co).fill(Number.NaN); // every value must be written
      addon!.conv2dBf16(x, dy, dw, shape, 2);
      const fp32 = (a: Float32Array, d: Float32Array) => {
        const heap = new ArrayBuffer(4 * (a.length + d.length + dw.length));
        new Float32Array(heap, 0, a.length).set(a);
        new Float32Array(heap, 4 * a.length, d.length).set(d);
        addon!.conv2d(2, heap, 0, 4 * a.length, 4 * (a.length + d.length), shape);
        return new Float32Array(heap, 4 * (a.length + d.length), dw.length);
      };
      const dw32 = fp32(x, dy);
      const mag = fp32(x.map(Math.abs), dy.map(Math.abs));
      const K = b * oh * ow; // the summed pixels
      for (let i = 0; i < dw.length; i++) {
        const d = Math.abs(dw[i]! - dw32[i]!);
        const bound = (2 * U + U * U + 2 * K * EPS32) * mag[i]! * (1 + 1e-5) + 1e-30;
        assert.ok(d <= bound, `${JSON.stringify([...shape])} [${i}]: ${dw[i]} against fp32 ${dw32[i]}`);
        if (mag[i]! > 0) worst = Math.max(worst, d / mag[i]!);
      }
    }
    assert.ok(worst > 2 ** -12, `largest relative difference ${worst}: were the inputs rounded to bf16?`);
  });

  it('strided input gradients are exact sums of the bf16-rounded inputs, every phase written', {
    skip: !runs,
  }, () => {
    // With inputs already bf16 (and small integers), the products and sums are exact in fp32, so
    // the phase-split kernel must equal the fp32 kernel exactly, including phases no tap reaches
    // (1x1 stride 2) and unequal strides.
    const rng = createRng(17);
    for (const [k, sh, sw, p, H, W, ci, co] of [
      [3, 2, 2, 1, 8, 8, 16, 32],
      [3, 2, 2, 0, 9, 7, 3, 16],
      [1, 2, 2, 0, 8, 8, 16, 32],
      [5, 3, 2, 2, 11, 9, 17, 20],
      [3, 2, 1, 1, 7, 6, 16, 16],
    ] as const) {
      const b = 2;
      const oh = Math.floor((H + 2 * p - k) / sh) + 1;
      const ow = Math.floor((W + 2 * p - k) / sw) + 1;
      const shape = Int32Array.from([b, H, W, ci, k, k, co, sh, sw, p, p, oh, ow]);
      const ints = (n: number) => Float32Array.from({ length: n }, () => rng.int(9) - 4);
      const dy = ints(b * oh * ow * co);
      const w = ints(k * k * ci * co);
      const dx = new Float32Array(b * H * W * ci).fill(Number.NaN);
      addon!.conv2dBf16(dy, w, dx, shape, 1);
      const heap = new ArrayBuffer(4 * (dy.length + w.length + dx.length));
      new Float32Array(heap, 0, dy.length).set(dy);
      new Float32Array(heap, 4 * dy.length, w.length).set(w);
      addon!.conv2d(1, heap, 0, 4 * dy.length, 4 * (dy.length + w.length), shape);
      assert.deepEqual(dx, new Float32Array(heap, 4 * (dy.length + w.length), dx.length), `${[...shape]}`);
    }
  });

  it('filter gradients at 16-channel multiples are exact sums of bf16 inputs, across image chunks', {
    skip: !runs,
  }, () => {
    // Input channels a multiple of 16 take the pair-plane kernel (output channels as rows); on
    // small integers every product and sum is exact in fp32, so any misplaced tap, channel, pixel
    // pair or chunk shows as a difference from the fp32 kernel. The first shape spans three image
    // chunks (two images each); the others have odd output widths (a fake closing pixel), strides,
    // 1x1 taps and output channels that are not a multiple of 8.
    const rng = createRng(19);
    for (const [b, H, W, ci, k, co, s, p] of [
      [5, 24, 24, 64, 3, 64, 1, 1],
      [3, 9, 9, 16, 3, 32, 2, 0],
      [2, 7, 11, 32, 3, 20, 1, 1],
      [2, 10, 10, 16, 1, 32, 2, 0],
      [1, 6, 5, 48, 5, 3, 1, 2],
      [2, 8, 8, 16, 3, 16, 2, 1],
    ] as const) {
      const oh = Math.floor((H + 2 * p - k) / s) + 1;
      const ow = Math.floor((W + 2 * p - k) / s) + 1;
      const shape = Int32Array.from([b, H, W, ci, k, k, co, s, s, p, p, oh, ow]);
      const ints = (n: number) => Float32Array.from({ length: n }, () => rng.int(9) - 4);
      const x = ints(b * H * W * ci);
      const dy = ints(b * oh * ow * co);
      const dw = new Float32Array(k * k * ci * co).fill(Number.NaN);
      addon!.conv2dBf16(x, dy, dw, shape, 2);
      const heap = new ArrayBuffer(4 * (x.length + dy.length + dw.length));
      new Float32Array(heap, 0, x.length).set(x);
      new Float32Array(heap, 4 * x.length, dy.length).set(dy);
      addon!.conv2d(2, heap, 0, 4 * x.length, 4 * (x.length + dy.length), shape);
      assert.deepEqual(dw, new Float32Array(heap, 4 * (x.length + dy.length), dw.length), `${[...shape]}`);
    }
  });

  it('refuse wrong arguments with a message', { skip: !runs }, () => {
    const f = (n: number) => new Float32Array(n);
    assert.throws(() => addon!.matmulBf16(f(5), f(6), f(6), 2, 3, 2), /a must be a Float32Array of M\*K/);
    assert.throws(() => addon!.matmulBf16(f(6), f(6), f(5), 2, 3, 2), /c must be a Float32Array of M\*N/);
    assert.throws(() => addon!.matmulBf16(f(6), f(6), f(4), 0, 3, 2), /sizes must be positive/);
    const shape = Int32Array.from([1, 4, 4, 1, 3, 3, 1, 1, 1, 1, 1, 4, 4]);
    assert.throws(() => addon!.conv2dBf16(f(15), f(9), f(16), shape), /x must be a Float32Array/);
    assert.throws(() => addon!.conv2dBf16(f(16), f(9), f(16), Int32Array.from([1])), /Int32Array of 13/);
    assert.throws(() => addon!.conv2dBf16(f(15), f(9), f(16), shape, 1), /dy must be a Float32Array/);
    assert.throws(() => addon!.conv2dBf16(f(16), f(16), f(8), shape, 2), /dw must be a Float32Array/);
    assert.throws(() => addon!.conv2dBf16(f(16), f(9), f(16), shape, 3 as 1), /kind must be 0, 1 or 2/);
  });

  describe('a training step on the bf16 set (--precision bf16)', () => {
    after(async () => {
      await tf.setBackend('wasm');
    });

    it('gives gradients near fp32 ones, and fp32 bit-identical again after it', { skip: !runs }, async () => {
      await initBackend('wasm');
      const model = createModel('resnet8', [12, 12, 1], 10, 3);
      try {
        const rng = createRng(5);
        const batch = randomArray(8 * 12 * 12, rng);
        const labels = Int32Array.from({ length: 8 }, () => rng.int(10));
        const step = () => computeGrads(model, batch, labels);
        const fp32 = step();
        const leave = enterBf16Training();
        assert.equal(trainingKernels(), 'bf16');
        let bf: ReturnType<typeof step>;
        try {
          bf = step();
        } finally {
          leave();
        }
        assert.equal(trainingKernels(), 'native');
        assert.deepEqual(step().grads, fp32.grads, 'fp32 after bf16 must be bit-identical to fp32 before');
        assert.ok(Math.abs(bf.loss - fp32.loss) < 1e-3 * fp32.loss, `loss ${bf.loss} against ${fp32.loss}`);
        let diff = 0;
        let norm = 0;
        let changed = 0;
        for (let i = 0; i < fp32.grads.length; i++) {
          diff += (bf.grads[i]! - fp32.grads[i]!) ** 2;
          norm += fp32.grads[i]! ** 2;
          if (bf.grads[i] !== fp32.grads[i]) changed++;
        }
        // This untrained batch-norm net's gradients cancel heavily: rounding only its filters to
        // bf16, in fp32 arithmetic, moves them by about 10 % (relative L2, measured). A kernel with
        // a wrong layout moves them by about 100 %; one that did not run moves nothing.
        const rel = Math.sqrt(diff / norm);
        assert.ok(changed > fp32.grads.length / 2 && rel > 2 ** -10, `${changed} changed, relative ${rel}`);
        assert.ok(rel < 0.3, `bf16 gradients ${rel} (relative L2) from fp32`);
      } finally {
        disposeModel(model);
      }
    });

    it('is refused naming the flag off the wasm native kernels', async () => {
      await tf.setBackend('cpu');
      assert.throws(
        () => enterBf16Training(),
        /^ConfigError: --precision bf16: cannot run here: it needs the wasm backend with the native kernels \(running: cpu\); use --precision fp32$/,
      );
    });
  });
});
