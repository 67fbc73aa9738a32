import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ImageSet } from '../data/types.ts';
import { createRng } from '../random/rng.ts';
import type { Sampler } from '../sampling/samplers.ts';
import { makeBatch } from './augment.ts';
import { EpochRunner, type Stepper } from './epoch.ts';

const N = 40;
const [H, W, C] = [6, 5, 2];
const rng0 = createRng(7);
const train: ImageSet = {
  pixels: Uint8Array.from({ length: N * H * W * C }, () => rng0.int(256)),
  labels: Int32Array.from({ length: N }, (_, i) => (i * 7) % 5),
  height: H,
  width: W,
  channels: C,
};
const B = 8;
const sampler: Sampler = {
  name: 'fixed',
  stepsPerEpoch: 4,
  probabilities: () => null,
  epoch: (e) => Int32Array.from({ length: 4 * B }, (_, i) => (i * 13 + e * 5) % N),
};

describe('an epoch hands the stepper its batches', () => {
  it('makes the next batch only when the stepper is done with the current one, in step order', async () => {
    const seen: { batch: Float32Array; labels: Int32Array }[] = [];
    let calls = 0;
    const announced: (boolean | undefined)[] = [];
    const stepper: Stepper = {
      async step(batch, labels, _lr, { whileWaiting }) {
        // What a data-parallel step reads, copied before it lets the runner write the next batch.
        seen.push({ batch: batch.slice(), labels: labels.slice() });
        announced.push(whileWaiting?.());
        calls++;
        return { loss: 1, correct: 0 };
      },
      async syncBatchNorm() {},
    };
    const runner = new EpochRunner(train, sampler, stepper, {
      batchSize: B,
      seed: 3,
      augmentation: 'crop-flip',
    });
    await runner.run(2, 0.1);
    assert.equal(calls, 4);
    // Each step but the epoch's last says the next call's batch is ready (workers start on it).
    assert.deepEqual(announced, [true, true, true, false]);
    // The batches as one generator makes them one after another (the order before this change),
    // with the runner's stream for (seed 3, epoch 2).
    const order = sampler.epoch(2);
    const rng = createRng(3, 0xa06, 2);
    for (let s = 0; s < 4; s++) {
      const idx = order.subarray(s * B, (s + 1) * B);
      assert.deepEqual(seen[s]!.batch, makeBatch(train, idx, 'crop-flip', rng), `batch ${s}`);
      assert.deepEqual(
        seen[s]!.labels,
        Int32Array.from(idx, (i) => train.labels[i]!),
        `labels ${s}`,
      );
    }
  });
});
