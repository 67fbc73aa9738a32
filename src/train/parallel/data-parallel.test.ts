import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { maxDiffNamed } from '../../../test/helpers/arrays.ts';
import { initBackend } from '../../backend/backend.ts';
import { loadMnistLt } from '../../data/fashion-mnist.ts';
import { createModel, disposeModel, modelArrays } from '../../models/model.ts';
import { Sgd } from '../../optim/sgd.ts';
import { makeBatch } from '../augment.ts';
import { lossOffset } from '../loss.ts';
import { makeTrainStep } from '../step.ts';
import { DataParallel } from './data-parallel.ts';

const data = loadMnistLt('fashion-mnist-lt', { maxPerClass: 30, imbalance: 3 });

describe('data-parallel training over worker threads', () => {
  before(async () => {
    await initBackend('wasm');
  });

  for (const loss of ['ce', 'balanced-softmax'] as const)
    it(`gives the same parameters after a step as one thread on the whole batch (running batch-norm statistics, ${loss} loss)`, async () => {
      // The stage-1 loss's logit offset reaches the workers (a replica without it would differ).
      const logitOffset = lossOffset(loss, data.trainCounts);
      const idx = Array.from({ length: 64 }, (_, i) => i * 2);
      const x = makeBatch(data.train, idx, 'none', null);
      const y = Int32Array.from(idx.map((i) => data.train.labels[i]!));
      const one = createModel('resnet8', [28, 28, 1], 10, 3);
      const two = createModel('resnet8', [28, 28, 1], 10, 3);
      const opt1 = new Sgd({ momentum: 0.9, weightDecay: 5e-4 });
      const opt2 = new Sgd({ momentum: 0.9, weightDecay: 5e-4 });
      const spec = { seed: 3, momentum: 0.9, weightDecay: 5e-4, logitOffset };
      const dp1 = await DataParallel.create(one, opt1, 1, spec);
      const dp2 = await DataParallel.create(two, opt2, 2, spec);
      for (let s = 0; s < 3; s++) {
        const a = await dp1.step(x, y, 0.05, { batchStats: false });
        // Once `whileWaiting` runs the batch may be overwritten (the trainer makes the next one
        // there while the worker computes): the step must have taken its shards already.
        const [xs, ys] = [x.slice(), y.slice()];
        let called = 0;
        const whileWaiting = () => {
          xs.fill(Number.NaN);
          ys.fill(0);
          called++;
        };
        const b = await dp2.step(xs, ys, 0.05, { batchStats: false, whileWaiting });
        assert.equal(called, 1);
        assert.ok(Math.abs(a.loss - b.loss) < 1e-5, `loss ${a.loss} vs ${b.loss}`);
        assert.equal(a.correct, b.correct);
      }
      const w1 = modelArrays(one);
      const w2 = modelArrays(two);
      assert.ok(maxDiffNamed(w1, w2) < 1e-5, `max difference ${maxDiffNamed(w1, w2)}`);
      // The worker's replica is the same model too.
      const ww = await dp2.workerWeights(0);
      assert.ok(maxDiffNamed(ww, w2, Object.keys(ww)) < 1e-6);
      await dp1.dispose();
      await dp2.dispose();
      for (const m of [one, two]) disposeModel(m);
      opt1.dispose();
      opt2.dispose();
    });

  it('sends the next shards ahead when whileWaiting announces them: the same bits as asking each step', async () => {
    // Batches 0..3 of the data, each made in whileWaiting as the trainer does.
    const batchAt = (s: number) => {
      const idx = Array.from({ length: 32 }, (_, i) => (i * 5 + s * 17) % data.train.labels.length);
      return {
        x: makeBatch(data.train, idx, 'none', null),
        y: Int32Array.from(idx, (i) => data.train.labels[i]!),
      };
    };
    const spec = { seed: 5, momentum: 0.9, weightDecay: 5e-4 };
    const train = async (announce: boolean) => {
      const m = createModel('resnet8', [28, 28, 1], 10, 5);
      const opt = new Sgd({ momentum: 0.9, weightDecay: 5e-4 });
      const dp = await DataParallel.create(m, opt, 2, spec);
      const first = batchAt(0);
      const [x, y] = [first.x, first.y];
      const losses: number[] = [];
      for (let s = 0; s < 4; s++) {
        const whileWaiting = () => {
          const next = batchAt(s + 1);
          x.set(next.x);
          y.set(next.y);
          return announce && s < 3;
        };
        losses.push((await dp.step(x, y, 0.05, { whileWaiting })).loss);
      }
      await dp.syncBatchNorm();
      return { m, opt, dp, losses, x, y };
    };
    const a = await train(false);
    const b = await train(true);
    assert.deepEqual(b.losses, a.losses);
    assert.equal(maxDiffNamed(modelArrays(b.m), modelArrays(a.m)), 0);
    assert.equal(maxDiffNamed(await b.dp.workerWeights(0), await a.dp.workerWeights(0)), 0);
    // An announced next step that is not taken is refused: the worker computes on it already.
    await a.dp.step(a.x, a.y, 0.05, { whileWaiting: () => true });
    await assert.rejects(a.dp.syncBatchNorm(), /whileWaiting announced a next step that was not taken/);
    // A shorter batch (the shards cut elsewhere) is another batch.
    await assert.rejects(
      a.dp.step(a.x.subarray(0, 30 * 784), a.y.subarray(0, 30), 0.05),
      /whileWaiting returned true, yet the next step came with another batch or batchStats/,
    );
    await b.dp.step(b.x, b.y, 0.05, { whileWaiting: () => true });
    b.x[b.x.length - 1]! += 1;
    const other = /whileWaiting returned true, yet the next step came with another batch/;
    await assert.rejects(b.dp.step(b.x, b.y, 0.05), other);
    await assert.rejects(b.dp.step(b.x, b.y, 0.05), other); // and every step after
    for (const t of [a, b]) {
      await t.dp.dispose();
      disposeModel(t.m);
      t.opt.dispose();
    }
  });

  it('with batch statistics per shard, keeps the replicas identical and averages the running statistics', async () => {
    const idx = Array.from({ length: 64 }, (_, i) => i);
    const x = makeBatch(data.train, idx, 'none', null);
    const y = Int32Array.from(idx.map((i) => data.train.labels[i]!));
    const m = createModel('resnet8', [28, 28, 1], 10, 4);
    const opt = new Sgd({ momentum: 0.9, weightDecay: 5e-4 });
    const dp = await DataParallel.create(m, opt, 2, { seed: 4, momentum: 0.9, weightDecay: 5e-4 });
    const losses: number[] = [];
    for (let s = 0; s < 15; s++) losses.push((await dp.step(x, y, 0.05)).loss);
    assert.ok(losses[14]! < 0.7 * losses[0]!, `loss ${losses[0]} -> ${losses[14]}`);
    await dp.syncBatchNorm();
    const mine = modelArrays(m);
    const theirs = await dp.workerWeights(0);
    assert.ok(maxDiffNamed(theirs, mine, Object.keys(theirs)) < 1e-6);
    // A single thread on the whole batch lands close (batch norm differs only by shard statistics).
    const ref = createModel('resnet8', [28, 28, 1], 10, 4);
    const optRef = new Sgd({ momentum: 0.9, weightDecay: 5e-4 });
    const step = makeTrainStep(ref, optRef);
    const refLosses: number[] = [];
    for (let s = 0; s < 15; s++) refLosses.push(step(x, y, 0.05).loss);
    assert.ok(Math.abs(refLosses[14]! - losses[14]!) < 0.5, `${refLosses[14]} vs ${losses[14]}`);
    await dp.dispose();
    disposeModel(m);
    disposeModel(ref);
    opt.dispose();
    optRef.dispose();
  });
});
