import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { maxRelErr, randomArray } from '../../../test/helpers/arrays.ts';
import { createRng } from '../../random/rng.ts';
import { initBackend } from '../backend.ts';
import { setTrainingKernels, TRAINING_KERNELS, type TrainingKernels } from '../training-kernels.ts';

describe('BatchMatMul on the wasm backend (both kernel sets)', () => {
  // Every transpose combination on small and batched shapes, and for the native product row and
  // column tails, a broadcast batch of 1 and more rows than one of its L2 blocks.
  const shapes: [number[], number[]][] = [
    [
      [1, 3, 5],
      [1, 5, 4],
    ],
    [
      [2, 7, 1],
      [2, 1, 6],
    ],
    [
      [3, 16, 9],
      [3, 9, 2],
    ],
    [
      [1, 128, 64],
      [1, 64, 10],
    ],
    [
      [1, 1],
      [1, 1],
    ],
    [
      [130, 70],
      [70, 33],
    ],
    [
      [1, 6, 8],
      [3, 8, 16],
    ],
    [
      [3, 6, 8],
      [1, 8, 16],
    ],
    [
      [300, 512],
      [512, 24],
    ],
  ];
  const swap = (s: number[]) => [...s.slice(0, -2), s[s.length - 1]!, s[s.length - 2]!];
  for (const kind of Object.keys(TRAINING_KERNELS) as TrainingKernels[])
    it(`matches the cpu backend for every transpose combination (${kind} kernels)`, {
      skip: TRAINING_KERNELS[kind].unavailable() || false,
    }, async () => {
      await initBackend('wasm');
      setTrainingKernels(kind);
      const rng = createRng(11);
      for (const [sa, sb] of shapes) {
        for (const ta of [false, true]) {
          for (const tb of [false, true]) {
            const aShape = ta ? swap(sa) : sa;
            const bShape = tb ? swap(sb) : sb;
            const a = randomArray(
              aShape.reduce((x, y) => x * y),
              rng,
            );
            const b = randomArray(
              bShape.reduce((x, y) => x * y),
              rng,
            );
            const run = (backend: string) => {
              tf.setBackend(backend);
              const out = tf.tidy(() => tf.matMul(tf.tensor(a, aShape), tf.tensor(b, bShape), ta, tb));
              const r = { v: out.dataSync().slice(), shape: out.shape };
              out.dispose();
              return r;
            };
            const ref = run('cpu');
            const got = run('wasm');
            const label = `${sa} x ${sb} ta=${ta} tb=${tb}`;
            assert.deepEqual(got.shape, ref.shape, label);
            assert.ok(maxRelErr(got.v, ref.v) <= 1e-5, `${label}: ${maxRelErr(got.v, ref.v)}`);
          }
        }
      }
      tf.setBackend('wasm');
      setTrainingKernels('wasm');
    });
});
