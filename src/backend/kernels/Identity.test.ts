import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../backend.ts';

describe('Identity on the wasm backend', () => {
  before(async () => {
    await initBackend('wasm');
  });

  it('shares the input memory instead of copying, and frees it with the last holder', () => {
    const before = tf.memory();
    const x = tf.tensor1d([1, 2, 3]);
    const y = tf.clone(x); // runs the Identity kernel
    assert.equal(y.dataId, x.dataId);
    x.dispose();
    assert.deepEqual(Array.from(y.dataSync()), [1, 2, 3]);
    y.dispose();
    assert.equal(tf.memory().numTensors, before.numTensors);
    assert.equal(tf.memory().numBytes, before.numBytes);
  });
});
