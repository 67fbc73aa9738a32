import assert from 'node:assert/strict';
import { cpSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { tempDir } from '../../test/helpers/tmp.ts';
import { initBackend } from '../backend/backend.ts';
import { loadMnistLt } from '../data/fashion-mnist.ts';
import { ConfigError, DataError } from '../errors.ts';
import { runFile } from '../io/run-folder.ts';
import { createModel, disposeModel, modelArrays } from '../models/model.ts';
import { cosineLr } from '../optim/schedule.ts';
import { Sgd } from '../optim/sgd.ts';
import { makeBatch } from './augment.ts';
import { loadCheckpoint, saveCheckpoint } from './checkpoint.ts';
import { accuracy, DEFAULT_JOINT_CONFIG, TrainingError, trainJoint } from './joint.ts';
import { makeTrainStep } from './step.ts';

// A small slice: 30 down to 10 images per class (186 images), the protocol's 200 validation images.
const data = loadMnistLt('fashion-mnist-lt', { maxPerClass: 30, imbalance: 3 });
const small = { ...DEFAULT_JOINT_CONFIG, epochs: 3, batchSize: 32, lr: 0.05 };

describe('stage 1 training on wasm', () => {
  before(async () => {
    await initBackend('wasm');
  });

  it('lowers the loss over 20 steps on a batch, and the tensor count stays flat', () => {
    const m = createModel('resnet8', [28, 28, 1], 10, 0);
    const opt = new Sgd({ momentum: 0.9, weightDecay: 5e-4 });
    const step = makeTrainStep(m, opt);
    const idx = Array.from({ length: 32 }, (_, i) => i * 5);
    const x = makeBatch(data.train, idx, 'none', null);
    const y = Int32Array.from(idx.map((i) => data.train.labels[i]!));
    const losses: number[] = [];
    const counts: number[] = [];
    for (let s = 0; s < 20; s++) {
      losses.push(step(x, y, 0.05).loss);
      counts.push(tf.memory().numTensors);
    }
    assert.ok(losses[19]! < 0.5 * losses[0]!, `loss ${losses[0]} -> ${losses[19]}`);
    // After the first step created the momentum buffers, nothing accumulates.
    assert.deepEqual(new Set(counts.slice(1)).size, 1, `tensor counts ${counts}`);
    opt.dispose();
    disposeModel(m);
  });

  it('trains above chance on a few hundred images, with a flat tensor count across epochs', async () => {
    const counts: number[] = [];
    const r = await trainJoint(
      data,
      { ...small, epochs: 8, batchSize: 16 },
      { onEpoch: () => counts.push(tf.memory().numTensors) },
    );
    assert.equal(r.history.length, 8);
    assert.ok(r.history[7]!.loss < r.history[0]!.loss);
    const acc = accuracy(r.model, data.val!);
    assert.ok(acc > 0.35, `validation accuracy ${acc} (chance is 0.1)`);
    assert.equal(new Set(counts.slice(1)).size, 1, `tensor counts ${counts}`);
    assert.equal(r.bestValAcc, Math.max(...r.history.map((h) => h.valAcc!)));
    disposeModel(r.model);
  });

  for (const threads of [1, 2]) {
    it(`resumes an interrupted run to the same weights as an uninterrupted one (${threads} thread${threads > 1 ? 's' : ''})`, async () => {
      const cfg = { ...small, threads };
      const a = tempDir();
      const b = tempDir();
      const full = await trainJoint(data, cfg, { runDir: a });
      const cut = await trainJoint(data, cfg, { runDir: b, stopAfterEpoch: 2 });
      disposeModel(cut.model);
      assert.equal(readFileSync(join(b, 'epochs.jsonl'), 'utf8').trim().split('\n').length, 2);
      const resumed = await trainJoint(data, cfg, { runDir: b, resume: true });
      assert.equal(resumed.history.length, 3);
      const wa = modelArrays(full.model);
      const wb = modelArrays(resumed.model);
      for (const name of Object.keys(wa)) {
        const x = wa[name]!.data;
        const y = wb[name]!.data;
        for (let i = 0; i < x.length; i++)
          assert.ok(
            Math.abs(x[i]! - y[i]!) <= 1e-5 * (1 + Math.abs(x[i]!)),
            `${name}[${i}]: ${x[i]} vs ${y[i]}`,
          );
      }
      assert.equal(readFileSync(join(b, 'epochs.jsonl'), 'utf8').trim().split('\n').length, 3);
      disposeModel(full.model);
      disposeModel(resumed.model);
    });
  }

  it('refuses to resume from a checkpoint of another backbone, naming both', async () => {
    const dir = tempDir();
    const r = await trainJoint(data, { ...small, epochs: 1 }, { runDir: dir });
    disposeModel(r.model);
    await assert.rejects(
      trainJoint(data, { ...small, backbone: 'resnet20' }, { runDir: dir, resume: true }),
      (e: Error) =>
        e instanceof ConfigError && /checkpoint is for resnet8.*this run is resnet20/.test(e.message),
    );
    assert.ok(existsSync(join(dir, 'checkpoint.npz')));
  });

  it('resumes only with the settings it was trained with, naming each that differs', async () => {
    const dir = tempDir();
    disposeModel((await trainJoint(data, { ...small, epochs: 1 }, { runDir: dir })).model);
    await assert.rejects(
      trainJoint(data, { ...small, lr: 0.1, seed: 3 }, { runDir: dir, resume: true }),
      (e: Error) =>
        e instanceof ConfigError &&
        e.message.includes(runFile(dir, 'checkpoint')) &&
        /seed 0 vs 3; lr 0\.05 vs 0\.1\./.test(e.message),
    );
    // More epochs than the checkpoint has completed extend the run.
    const longer = await trainJoint(data, { ...small, epochs: 2 }, { runDir: dir, resume: true });
    assert.equal(longer.history.length, 2);
    disposeModel(longer.model);
    await assert.rejects(
      trainJoint(data, { ...small, epochs: 1 }, { runDir: dir, resume: true }),
      (e: Error) =>
        e instanceof ConfigError && /epochs: the checkpoint has completed 2, given 1/.test(e.message),
    );
  });

  it('refuses to resume from a checkpoint holding NaN, naming the file and the array', async () => {
    const dir = tempDir();
    disposeModel((await trainJoint(data, { ...small, epochs: 1 }, { runDir: dir })).model);
    for (const file of ['checkpoint', 'best'] as const) {
      const run = tempDir();
      cpSync(dir, run, { recursive: true });
      const path = runFile(run, file);
      const ck = loadCheckpoint(path);
      ck.weights['layer1.0.bn1.running_var']!.data[2] = Number.NaN;
      saveCheckpoint(path, ck);
      await assert.rejects(
        trainJoint(data, { ...small, epochs: 2 }, { runDir: run, resume: true }),
        (e: Error) =>
          e instanceof DataError && e.message.startsWith(`${path}: param/layer1.0.bn1.running_var holds NaN`),
      );
    }
  });

  it("checks a library caller's settings by the config schema, naming the field as the config does", async () => {
    for (const [bad, message] of [
      [{ batchSize: 0 }, /^batchSize: .*\(got 0 from the training config\)/],
      [{ momentum: 1 }, /^momentum: .*\(got 1 from/],
      [{ epochs: 2.5 }, /^epochs: /],
      [
        { warmupEpochs: 3 },
        /^warmupEpochs: must be less than epochs \(3\) \(got 3 from the training config\)$/,
      ],
    ] as const) {
      await assert.rejects(
        trainJoint(data, { ...small, ...bad }),
        (e: Error) => e instanceof ConfigError && message.test(e.message),
      );
    }
  });

  it('stops with a clear message when the loss is not finite', async () => {
    await assert.rejects(
      trainJoint(data, { ...small, lr: 1e12, epochs: 2 }),
      (e: Error) =>
        e instanceof TrainingError && /the loss became (NaN|Infinity).*try a smaller --lr/.test(e.message),
    );
  });

  it('follows a cosine schedule from lr to 0, with optional warm-up', () => {
    assert.equal(cosineLr(0, 10, 0.1), 0.1);
    assert.ok(Math.abs(cosineLr(5, 10, 0.1) - 0.05) < 1e-12);
    assert.equal(cosineLr(0, 10, 0.1, 1), 0.05);
    assert.equal(cosineLr(1, 10, 0.1, 1), 0.1);
  });
});
