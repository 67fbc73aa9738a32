/**
 * The forward convolution by output rows (native/src/conv512.cc `gather_rows_avx512`: tiles of up
 * to 28 pixels of one or two output rows, one input pointer a row) for the stems (1 or 3 input
 * channels, 16 outputs, stride 1) and 32-output layers whose pixels step 32 floats (32 channels at
 * stride 1, 16 at stride 2, 3x3 and 1x1). It keeps the gather product's sums in its order, so
 * AVX-512 on (rows) and off (AVX2 gather tiles, checked against the cpu backend in
 * native-kernels.test.ts) must agree bit for bit: output widths 1-60 reach every tile width, the
 * two-row tiles, an odd last row and rows split in two; through Conv2D, convBn and the whole
 * evaluation program (whose buffers carry borders, so rows are not contiguous). Also the planar
 * product (16 -> 16 at stride 1) by output rows where rows are whole 16-pixel vectors, its planes
 * with one zero column between rows, and the program's 16-channel steps with the shift, residual
 * and ReLU applied as the accumulators are stored.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { firstDifference, randomArray } from '../../test/helpers/arrays.ts';
import { randomTensor } from '../../test/helpers/model-stats.ts';
import { type ChainStep, convBn, convBnChain, makeBatchNorm, makeConv } from '../models/layers.ts';
import { ParamSet } from '../models/params.ts';
import { loadNativeAddon, nativeStatus } from '../native-addon.ts';
import { createRng } from '../random/rng.ts';
import { initBackend } from './backend.ts';
import { setTrainingKernels } from './training-kernels.ts';

const skip = !nativeStatus().available || !loadNativeAddon()?.avx512();

/** run() with the AVX2 gather tiles, then with AVX-512 (the row tiles where they apply). */
function both<T>(run: () => T): [T, T] {
  const addon = loadNativeAddon()!;
  addon.avx512(false);
  try {
    const gather = run();
    addon.avx512(true);
    return [gather, run()];
  } finally {
    addon.avx512(true);
  }
}

/** The row tiles' shapes: [input channels, output channels, filter, stride]. */
const KINDS: [number, number, number, number][] = [
  [1, 16, 3, 1],
  [3, 16, 3, 1],
  [16, 32, 3, 2],
  [16, 32, 1, 2],
  [32, 32, 3, 1],
  // 16 outputs from 16 channels at stride 1 take the planar product, by output rows where a row
  // is whole vectors (widths 16, 32, 48).
  [16, 16, 3, 1],
];

describe('forward convolution by output rows (AVX-512)', () => {
  before(async () => {
    await initBackend('wasm');
  });

  it('Conv2D gives the gather tiles’ bits at output widths 1-60', { skip }, () => {
    setTrainingKernels('native');
    const rng = createRng(2828);
    let checked = 0;
    const ROWS = KINDS.length - 1; // the row tiles' kinds; the last is the planar product's
    const shapes = Array.from({ length: 60 }, (_, i) => [i + 1, (i + 1) % ROWS] as const);
    for (const ow of [15, 16, 17, 31, 32, 48]) shapes.push([ow, ROWS]);
    for (const [ow, kind] of shapes) {
      const [ci, co, k, s] = KINDS[kind]!;
      // Output heights 1-5: one row, row pairs, an odd last row.
      const oh = 1 + rng.int(5);
      const pad = k === 3 && rng.next() < 0.8 ? 1 : 0;
      const h = (oh - 1) * s + k - 2 * pad;
      const w = (ow - 1) * s + k - 2 * pad;
      if (h < 1 || w < 1) continue;
      const b = 1 + rng.int(2);
      const x = randomArray(b * h * w * ci, rng);
      const f = randomArray(k * k * ci * co, rng);
      const [gather, rows] = both(() =>
        tf.tidy(() => {
          const y = tf.conv2d(tf.tensor4d(x, [b, h, w, ci]), tf.tensor4d(f, [k, k, ci, co]), s, pad);
          assert.deepEqual(y.shape, [b, oh, ow, co]);
          return y.dataSync().slice() as Float32Array;
        }),
      );
      const i = firstDifference(rows, gather);
      assert.equal(i, -1, `${JSON.stringify({ b, h, w, ci, co, k, s, pad })}: element ${i} differs`);
      checked++;
    }
    assert.ok(checked >= 55, `only ${checked} shapes ran`);
  });

  it('convBn and the evaluation program give the gather tiles’ bits', { skip }, () => {
    const rng = createRng(2929);
    for (let trial = 0; trial < 12; trial++) {
      tf.tidy(() => {
        const ps = new ParamSet();
        // A stem, then 16-channel, strided and 32-channel steps with residuals, at widths that
        // give one- and two-row tiles and rows wider than one tile.
        const side = [7, 13, 16, 28, 31, 33][trial % 6]!;
        const ci = trial % 2 === 0 ? 1 : 3;
        const b = 1 + rng.int(2);
        const layer = (name: string, k: number, cin: number, cout: number, stride: number) => {
          const c = makeConv(ps, name, k, cin, cout, stride, rng, k === 3 ? 1 : 0);
          const bn = makeBatchNorm(ps, `${name}.bn`, cout);
          bn.gamma.assign(randomTensor(rng, [cout], 0.5, 1) as tf.Tensor1D);
          bn.beta.assign(randomTensor(rng, [cout], 0.5) as tf.Tensor1D);
          bn.runningMean.assign(randomTensor(rng, [cout], 0.5) as tf.Tensor1D);
          bn.runningVar.assign(tf.tensor1d(Float32Array.from({ length: cout }, () => 0.2 + 2 * rng.next())));
          return { c, bn };
        };
        const steps: ChainStep[] = [
          { ...layer('stem', 3, ci, 16, 1), input: 0, relu: true },
          { ...layer('a', 3, 16, 16, 1), input: 1, relu: true },
          // A 16-channel block's second convolution: the planar chain's residual and ReLU
          // applied to the accumulators as they are stored.
          { ...layer('a2', 3, 16, 16, 1), input: 2, res: 1, relu: true },
          { ...layer('b', 3, 16, 32, 2), input: 3, relu: true },
          { ...layer('short', 1, 16, 32, 2), input: 3, relu: false },
          { ...layer('c', 3, 32, 32, 1), input: 4, res: 5, relu: true },
          { ...layer('d', 3, 32, 32, 1), input: 6, relu: false },
        ];
        const x = randomTensor(rng, [b, side, side, ci]) as tf.Tensor4D;
        const label = `trial ${trial}: [${b}, ${side}, ${side}, ${ci}]`;
        const [chainGather, chainRows] = both(
          () => convBnChain(x, steps)!.dataSync().slice() as Float32Array,
        );
        assert.equal(firstDifference(chainRows, chainGather), -1, `${label}: the program differs`);
        // Each step alone (convBn) on the program's own inputs.
        const bufs: tf.Tensor4D[] = [x];
        for (const st of steps) {
          const res = st.res === undefined ? undefined : bufs[st.res];
          const [g, r] = both(() => convBn(st.c, st.bn, bufs[st.input]!, false, st.relu, res));
          const i = firstDifference(r.dataSync() as Float32Array, g.dataSync() as Float32Array);
          assert.equal(i, -1, `${label}: step ${bufs.length - 1} element ${i} differs`);
          bufs.push(r);
        }
        assert.equal(
          firstDifference(bufs[bufs.length - 1]!.dataSync() as Float32Array, chainRows),
          -1,
          label,
        );
        ps.dispose();
      });
    }
  });
});
