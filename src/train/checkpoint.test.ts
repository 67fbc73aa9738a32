import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { tempDir } from '../../test/helpers/tmp.ts';
import { initBackend } from '../backend/backend.ts';
import { DataError } from '../errors.ts';
import { runFile } from '../io/run-folder.ts';
import { createModel, disposeModel, modelArrays } from '../models/model.ts';
import { Sgd } from '../optim/sgd.ts';
import { CHECKPOINT_FORMAT, type CheckpointMeta, loadCheckpoint, saveCheckpoint } from './checkpoint.ts';
import { CheckpointStore, type RunIdentity, resumeConflicts } from './checkpoint-store.ts';
import { TrainingError } from './epoch.ts';
import { DEFAULT_JOINT_CONFIG } from './joint-config.ts';

const identity: RunIdentity = {
  backbone: 'resnet8',
  inputShape: [28, 28, 1],
  numClasses: 10,
  dataset: 'test',
  config: { ...DEFAULT_JOINT_CONFIG, epochs: 3 },
};
const meta = (over: Partial<CheckpointMeta> = {}): CheckpointMeta => ({
  format: CHECKPOINT_FORMAT,
  version: 1,
  ...identity,
  epoch: 2,
  ...over,
});
const arr = (...v: number[]) => ({ shape: [v.length], data: Float32Array.from(v) });

/** A new model, optimiser and store in a fresh run folder, and an epoch record to save. */
function freshRun() {
  const dir = tempDir();
  const store = new CheckpointStore(dir, identity);
  store.begin();
  return {
    dir,
    store,
    m: createModel('resnet8', [28, 28, 1], 10, 0),
    opt: new Sgd({ momentum: 0.9, weightDecay: 0 }),
    rec: { epoch: 1, lr: 0.1, loss: 1, trainAcc: 0.5, valAcc: 0.5, imagesPerSec: 1, seconds: 1 },
  };
}

describe('checkpoints', () => {
  before(async () => {
    await initBackend('wasm');
  });

  it('refuse, on load, weights or momentum holding NaN or infinity, naming the file and the array', () => {
    const dir = tempDir();
    for (const [where, bad] of [
      ['param', Number.NaN],
      ['momentum', Number.POSITIVE_INFINITY],
    ] as const) {
      const path = join(dir, `${where}.npz`);
      const good = { 'conv1.weight': arr(1, 2), 'fc.bias': arr(3) };
      const poisoned = { 'conv1.weight': arr(1, 2), 'fc.bias': arr(3, bad) };
      saveCheckpoint(path, {
        meta: meta(),
        weights: where === 'param' ? poisoned : good,
        momentum: where === 'momentum' ? poisoned : good,
      });
      assert.throws(
        () => loadCheckpoint(path),
        (e: Error) =>
          e instanceof DataError &&
          !e.message.includes('\n') &&
          e.message.startsWith(`${path}: ${where}/fc.bias holds ${bad} (index 1)`),
      );
    }
  });

  it('are never written with weights that are not finite (best.npz and checkpoint.npz)', () => {
    const { dir, m, opt, store, rec } = freshRun();
    const w = m.head.weight;
    tf.tidy(() => w.assign(tf.mul(w, Number.NaN)));
    assert.throws(
      () => store.saveEpoch(m, opt, rec),
      (e: Error) =>
        e instanceof TrainingError && /fc\.weight became NaN at epoch 1.*smaller --lr/.test(e.message),
    );
    assert.ok(!existsSync(runFile(dir, 'best')), 'best.npz written with NaN weights');
    assert.ok(!existsSync(runFile(dir, 'checkpoint')), 'checkpoint.npz written with NaN weights');
    assert.equal(store.bestEpoch, -1);
    opt.dispose();
    disposeModel(m);
  });

  it('keep the best epoch on disk and in memory, and restore it', () => {
    const { dir, m, opt, store, rec } = freshRun();
    store.saveEpoch(m, opt, rec);
    const best = modelArrays(m);
    tf.tidy(() => m.head.bias.assign(tf.add(m.head.bias, 1)));
    store.saveEpoch(m, opt, { ...rec, epoch: 2, valAcc: 0.4 });
    assert.equal(store.bestEpoch, 1);
    assert.equal(loadCheckpoint(runFile(dir, 'best')).meta.epoch, 1);
    assert.equal(loadCheckpoint(runFile(dir, 'checkpoint')).meta.epoch, 2);
    store.restoreBest(m);
    assert.deepEqual(modelArrays(m)['fc.bias']!.data, best['fc.bias']!.data);
    opt.dispose();
    disposeModel(m);
  });

  it('name every setting in which a resumed run differs from its checkpoint, saved vs given', () => {
    assert.deepEqual(resumeConflicts(meta(), identity), []);
    const given: RunIdentity = {
      ...identity,
      backbone: 'resnet20',
      numClasses: 7,
      inputShape: [32, 32, 3],
      config: {
        ...identity.config,
        seed: 1,
        sampler: 'square-root',
        samplerQ: 0.5,
        batchSize: 64,
        lr: 0.05,
        weightDecay: 0,
        momentum: 0.5,
        warmupEpochs: 1,
        augment: 'none',
        precision: 'bf16',
      },
    };
    assert.deepEqual(resumeConflicts(meta(), given), [
      'backbone resnet8 vs resnet20',
      'classes 10 vs 7',
      'input 28x28x1 vs 32x32x3',
      'seed 0 vs 1',
      'sampler instance-balanced vs square-root',
      'samplerQ (unset) vs 0.5',
      'batchSize 128 vs 64',
      'lr 0.1 vs 0.05',
      'weightDecay 0.0005 vs 0',
      'momentum 0.9 vs 0.5',
      'warmupEpochs 0 vs 1',
      'precision fp32 vs bf16',
      'augment crop-flip vs none',
    ]);
    // A checkpoint from before the setting (none saved) trained in fp32.
    const fp32 = { ...identity, config: { ...identity.config, precision: 'fp32' as const } };
    assert.deepEqual(resumeConflicts(meta(), fp32), []);
    // More epochs extend the run, and the thread count may change; fewer epochs than done may not.
    const more = { ...identity, config: { ...identity.config, epochs: 10, threads: 4 } };
    assert.deepEqual(resumeConflicts(meta(), more), []);
    // 'auto' is what it resolves to for these images.
    const explicit = { ...identity, config: { ...identity.config, augment: 'crop-flip' as const } };
    assert.deepEqual(resumeConflicts(meta(), explicit), []);
    const fewer = { ...identity, config: { ...identity.config, epochs: 1 } };
    assert.deepEqual(resumeConflicts(meta(), fewer), ['epochs: the checkpoint has completed 2, given 1']);
  });
});
