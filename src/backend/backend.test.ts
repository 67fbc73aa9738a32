import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { createModel, disposeModel } from '../models/model.ts';
import { computeGrads } from '../train/step.ts';
import { BACKEND_NOT_STARTED, initBackend } from './backend.ts';

const ROOT = join(import.meta.dirname, '..', '..');

describe('the backend', () => {
  it('refuses the API before initBackend() with one line, without tfjs glue on the terminal', () => {
    const script = `
      import { createModel } from './src/index.ts';
      createModel('resnet8', [28, 28, 1], 10, 0);
    `;
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: ROOT,
      encoding: 'utf8',
    });
    assert.notEqual(r.status, 0);
    assert.ok(r.stderr.includes(`UserError: ${BACKEND_NOT_STARTED}`), r.stderr);
    assert.doesNotMatch(r.stderr, /tf-backend-wasm|tf\.ready/);
  });

  it('registers the gradients without @tensorflow/tfjs: one training step of a ResNet', async () => {
    // This process never imports the tfjs umbrella package, which also registers gradients.
    await initBackend();
    const model = createModel('resnet8', [8, 8, 1], 3, 0);
    const x = Float32Array.from({ length: 4 * 64 }, (_, i) => Math.sin(i));
    const { loss, grads } = computeGrads(model, x, Int32Array.from([0, 1, 2, 0]));
    assert.ok(Number.isFinite(loss) && loss > 0);
    assert.ok(grads.every(Number.isFinite));
    assert.ok(grads.some((g) => g !== 0));
    // Plain tfjs-core gradients too (Conv2D, MaxPool... come from the same registration).
    const g = tf.grad((v: tf.Tensor) => tf.sum(tf.square(v)))(tf.tensor1d([1, 2, 3]));
    assert.deepEqual(Array.from(g.dataSync()), [2, 4, 6]);
    // And the chained methods the umbrella package used to register.
    const c = tf.tensor1d([1, 2, 3, 4]).reshape([2, 2]).toFloat().square();
    assert.deepEqual(Array.from(c.dataSync()), [1, 4, 9, 16]);
    tf.dispose([g, c]);
    disposeModel(model);
  });
});
