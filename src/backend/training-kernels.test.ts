import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { getKernel } from '@tensorflow/tfjs-core';
import { initBackend } from './backend.ts';
import { BATCH_NORM_GRAD_KERNEL, BATCH_NORM_KERNEL } from './native-kernels/names.ts';
import {
  setTrainingKernels,
  TRAINING_KERNELS,
  type TrainingKernels,
  trainingKernels,
} from './training-kernels.ts';

const KINDS = Object.keys(TRAINING_KERNELS) as TrainingKernels[];

describe('training-kernel registry', () => {
  before(async () => {
    await initBackend('wasm');
  });

  it('refuses an unknown set with a message listing the valid ones', () => {
    assert.throws(
      () => setTrainingKernels('avx512' as TrainingKernels),
      /unknown training kernel set 'avx512'; valid training kernel sets: native, wasm/,
    );
  });

  for (const kind of KINDS)
    it(`switches to the ${kind} set and says so`, {
      skip: TRAINING_KERNELS[kind].unavailable() || false,
    }, () => {
      const was = trainingKernels();
      setTrainingKernels(kind);
      assert.equal(trainingKernels(), kind);
      // Models take the batch-norm kernels when registered (models/layers.ts): with the addon's
      // sets (native, and bf16, which is native with bf16 convolutions), not with wasm.
      assert.equal(getKernel(BATCH_NORM_KERNEL, 'wasm') !== undefined, kind !== 'wasm');
      assert.equal(getKernel(BATCH_NORM_GRAD_KERNEL, 'wasm') !== undefined, kind !== 'wasm');
      setTrainingKernels(was);
    });

  it('refuses a set that cannot run here, naming why', () => {
    const missing = KINDS.find((kind) => TRAINING_KERNELS[kind].unavailable() !== '');
    if (missing === undefined) return; // every set runs on this machine
    assert.throws(() => setTrainingKernels(missing), {
      message: `${missing} kernels are not available: ${TRAINING_KERNELS[missing].unavailable()}`,
    });
  });
});
