/**
 * Stage 1: joint training of backbone + linear classifier with cross-entropy, SGD (momentum,
 * weight decay), a cosine schedule and any sampler. Evaluates on the validation set after every
 * epoch and keeps the best epoch's weights (the official code's choice). Checkpoints every
 * epoch, atomically; a resumed run reaches the same weights as an uninterrupted one, because
 * every random choice derives from (seed, epoch).
 */
import { appendFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type { LossName } from '../config/schema.ts';
import type { LongTailDataset } from '../data/types.ts';
import { ConfigError, UserError } from '../errors.ts';
import { createModel, disposeModel, loadModelArrays, type Model, modelArrays } from '../models/model.ts';
import { ParamMismatchError } from '../models/params.ts';
import { createRng } from '../random/rng.ts';
import { createSampler } from '../sampling/samplers.ts';
import { type Augmentation, makeBatch } from './augment.ts';
import { CHECKPOINT_FORMAT, type CheckpointMeta, loadCheckpoint, saveCheckpoint } from './checkpoint.ts';
import { lossOffset } from './loss.ts';
import { Sgd } from './optimizer.ts';
import { DataParallel } from './parallel/data-parallel.ts';
import { cosineLr } from './schedule.ts';

export interface JointConfig {
  backbone: string;
  sampler: string;
  /** Overrides `sampler` with the q family, p_j proportional to n_j^q. */
  samplerQ?: number;
  epochs: number;
  batchSize: number;
  lr: number;
  weightDecay: number;
  momentum: number;
  warmupEpochs: number;
  seed: number;
  /** `auto`: crop-flip for images up to 64 px, resized-crop-flip above. */
  augment: Augmentation | 'auto';
  /**
   * Data-parallel threads (worker_threads, each with its own backend). 1 trains on this thread.
   * With more, each shard normalises by its own batch statistics (see parallel/data-parallel.ts),
   * so results depend on the thread count; a run resumed with the same count replays exactly.
   */
  threads?: number;
  /** Stage-1 loss: `ce`, or CE(z + tau log prior) (`balanced-softmax`: tau = 1; `logit-adjusted`: tau = lossTau). */
  loss?: LossName;
  /** tau of the logit-adjusted loss (default 1). */
  lossTau?: number;
}

export const DEFAULT_JOINT_CONFIG: JointConfig = {
  backbone: 'resnet8',
  sampler: 'instance-balanced',
  epochs: 30,
  batchSize: 128,
  lr: 0.1,
  weightDecay: 5e-4,
  momentum: 0.9,
  warmupEpochs: 0,
  seed: 0,
  augment: 'auto',
};

export interface EpochRecord {
  epoch: number;
  lr: number;
  loss: number;
  trainAcc: number;
  valAcc: number | null;
  imagesPerSec: number;
  seconds: number;
}

export interface StepInfo {
  epoch: number;
  step: number;
  steps: number;
  loss: number;
  acc: number;
  imagesPerSec: number;
}

export interface TrainOptions {
  /** Where checkpoints and epochs.jsonl go; nothing is written without it. */
  runDir?: string;
  /** Continue from runDir/checkpoint.npz. */
  resume?: boolean;
  /** Stop after this many completed epochs (to simulate an interruption in tests). */
  stopAfterEpoch?: number;
  onStep?: (s: StepInfo) => void;
  onEpoch?: (r: EpochRecord) => void;
}

export interface TrainResult {
  /** The model at the best validation epoch (or the last epoch when there is no validation set). */
  model: Model;
  history: EpochRecord[];
  bestEpoch: number;
  bestValAcc: number | null;
  seconds: number;
}

export class TrainingError extends UserError {
  override name = 'TrainingError';
}

export function resolveAugmentation(aug: JointConfig['augment'], height: number): Augmentation {
  if (aug !== 'auto') return aug;
  return height <= 64 ? 'crop-flip' : 'resized-crop-flip';
}

export function validateJointConfig(c: JointConfig): void {
  const pos = (v: number, name: string, integer = false) => {
    if (!(v > 0) || (integer && !Number.isInteger(v))) {
      throw new ConfigError(`${name} must be a positive ${integer ? 'integer' : 'number'}, got ${v}`);
    }
  };
  pos(c.epochs, '--epochs', true);
  pos(c.batchSize, '--batch-size', true);
  pos(c.lr, '--lr');
  if (!(c.weightDecay >= 0)) throw new ConfigError(`--weight-decay must be >= 0, got ${c.weightDecay}`);
  if (!(c.momentum >= 0 && c.momentum < 1))
    throw new ConfigError(`momentum must be in [0, 1), got ${c.momentum}`);
  if (!(c.warmupEpochs >= 0 && c.warmupEpochs < c.epochs)) {
    throw new ConfigError(`warm-up epochs must be in [0, epochs), got ${c.warmupEpochs}`);
  }
}

/** Top-1 accuracy of a model on a set (eval mode), overall (not per class). */
export function accuracy(model: Model, set: LongTailDataset['test'], batchSize = 256): number {
  const n = set.labels.length;
  let correct = 0;
  for (let s = 0; s < n; s += batchSize) {
    const idx = Array.from({ length: Math.min(batchSize, n - s) }, (_, k) => s + k);
    const x = makeBatch(set, idx, 'none', null);
    const pred = tf.tidy(() =>
      tf.argMax(
        model.head.apply(
          model.backbone.features(tf.tensor4d(x, [idx.length, set.height, set.width, set.channels]), false),
        ),
        1,
      ),
    );
    const p = pred.dataSync();
    pred.dispose();
    for (let k = 0; k < idx.length; k++) if (p[k] === set.labels[s + k]) correct++;
  }
  return correct / n;
}

const AUG_SALT = 0xa06;

/** Trains stage 1. The returned model is the caller's to dispose. */
export async function trainJoint(
  data: LongTailDataset,
  cfg: JointConfig,
  opts: TrainOptions = {},
): Promise<TrainResult> {
  validateJointConfig(cfg);
  const { train, val } = data;
  const numClasses = data.classNames.length;
  const inputShape: [number, number, number] = [train.height, train.width, train.channels];
  const aug = resolveAugmentation(cfg.augment, train.height);
  const model = createModel(cfg.backbone, inputShape, numClasses, cfg.seed);
  const opt = new Sgd({ momentum: cfg.momentum, weightDecay: cfg.weightDecay });
  const sampler = createSampler(
    cfg.sampler,
    {
      labels: train.labels,
      numClasses,
      batchSize: cfg.batchSize,
      seed: cfg.seed,
      epochs: cfg.epochs,
    },
    cfg.samplerQ !== undefined ? { q: cfg.samplerQ } : {},
  );
  // Each shard needs at least 2 images for its batch statistics.
  const threads = Math.max(1, Math.min(Math.floor(cfg.threads ?? 1), Math.floor(cfg.batchSize / 2)));
  const runDir = opts.runDir;
  if (runDir) mkdirSync(runDir, { recursive: true });
  const ckptPath = runDir ? join(runDir, 'checkpoint.npz') : null;
  const bestPath = runDir ? join(runDir, 'best.npz') : null;
  const epochsLog = runDir ? join(runDir, 'epochs.jsonl') : null;

  let history: EpochRecord[] = [];
  let start = 0;
  let bestEpoch = -1;
  let bestValAcc: number | null = null;
  let bestWeights = modelArrays(model);
  const disposers: (() => Promise<void>)[] = [];
  const baseMeta = {
    format: CHECKPOINT_FORMAT,
    version: 1 as const,
    backbone: cfg.backbone,
    inputShape,
    numClasses,
    config: cfg,
    dataset: data.name,
  };

  try {
    if (opts.resume) {
      if (!ckptPath || !existsSync(ckptPath))
        throw new ConfigError(`--resume: no checkpoint.npz in ${runDir ?? '(no run folder)'}`);
      const ck = loadCheckpoint(ckptPath);
      const m = ck.meta;
      if (
        m.backbone !== cfg.backbone ||
        m.numClasses !== numClasses ||
        m.inputShape.join('x') !== inputShape.join('x')
      ) {
        throw new ConfigError(
          `${ckptPath}: checkpoint is for ${m.backbone}, ${m.numClasses} classes, input ${m.inputShape.join('x')}; ` +
            `this run is ${cfg.backbone}, ${numClasses} classes, input ${inputShape.join('x')}`,
        );
      }
      try {
        loadModelArrays(model, ck.weights, ckptPath);
      } catch (e) {
        if (e instanceof ParamMismatchError) throw new ConfigError(e.message);
        throw e;
      }
      opt.loadState(ck.momentum);
      start = m.epoch;
      history = (m.history as EpochRecord[]) ?? [];
      bestEpoch = (m.bestEpoch as number) ?? -1;
      bestValAcc = (m.bestValAcc as number | null) ?? null;
      if (bestPath && existsSync(bestPath)) bestWeights = loadCheckpoint(bestPath).weights;
      if (epochsLog) writeFileSync(epochsLog, history.map((h) => `${JSON.stringify(h)}\n`).join(''));
    } else if (epochsLog) {
      writeFileSync(epochsLog, '');
    }

    const dp = await DataParallel.create(model, opt, threads, {
      seed: cfg.seed,
      momentum: cfg.momentum,
      weightDecay: cfg.weightDecay,
      logitOffset: lossOffset(cfg.loss ?? 'ce', data.trainCounts, cfg.lossTau),
    });
    disposers.push(() => dp.dispose());
    const t0 = performance.now();
    const { height: H, width: W, channels: C } = train;
    const B = cfg.batchSize;
    const batch = new Float32Array(B * H * W * C);
    const labels = new Int32Array(B);
    for (let epoch = start; epoch < cfg.epochs; epoch++) {
      if (opts.stopAfterEpoch !== undefined && epoch >= opts.stopAfterEpoch) break;
      const lr = cosineLr(epoch, cfg.epochs, cfg.lr, cfg.warmupEpochs);
      const order = sampler.epoch(epoch);
      const rng = createRng(cfg.seed, AUG_SALT, epoch);
      const te = performance.now();
      let lossSum = 0;
      let correct = 0;
      for (let step = 0; step < sampler.stepsPerEpoch; step++) {
        const idx = order.subarray(step * B, (step + 1) * B);
        makeBatch(train, idx, aug, rng, batch);
        for (let k = 0; k < B; k++) labels[k] = train.labels[idx[k]!]!;
        const { loss, correct: c } = await dp.step(batch, labels, lr);
        if (!Number.isFinite(loss)) {
          throw new TrainingError(
            `the loss became ${loss} at epoch ${epoch + 1}, step ${step + 1} (learning rate ${lr.toPrecision(3)}); ` +
              `try a smaller --lr.${ckptPath && existsSync(ckptPath) ? ` The last good checkpoint is ${ckptPath} (epoch ${epoch}).` : ''}`,
          );
        }
        lossSum += loss;
        correct += c;
        const seen = (step + 1) * B;
        opts.onStep?.({
          epoch,
          step: step + 1,
          steps: sampler.stepsPerEpoch,
          loss: lossSum / (step + 1),
          acc: correct / seen,
          imagesPerSec: seen / ((performance.now() - te) / 1000),
        });
        await new Promise((r) => setImmediate(r)); // let progress output flush
      }
      await dp.syncBatchNorm();
      const seconds = (performance.now() - te) / 1000;
      const valAcc = val ? accuracy(model, val) : null;
      const rec: EpochRecord = {
        epoch: epoch + 1,
        lr,
        loss: lossSum / sampler.stepsPerEpoch,
        trainAcc: correct / (sampler.stepsPerEpoch * B),
        valAcc,
        imagesPerSec: (sampler.stepsPerEpoch * B) / seconds,
        seconds,
      };
      history.push(rec);
      // Best by validation accuracy (ties: the later epoch); without a validation set, the last.
      if (valAcc === null || bestValAcc === null || valAcc >= bestValAcc) {
        bestEpoch = epoch + 1;
        bestValAcc = valAcc;
        bestWeights = modelArrays(model);
        if (bestPath) {
          saveCheckpoint(bestPath, {
            meta: { ...baseMeta, epoch: epoch + 1, best: true } as CheckpointMeta,
            weights: bestWeights,
            momentum: {},
          });
        }
      }
      if (ckptPath) {
        saveCheckpoint(ckptPath, {
          meta: { ...baseMeta, epoch: epoch + 1, history, bestEpoch, bestValAcc } as CheckpointMeta,
          weights: modelArrays(model),
          momentum: opt.state(),
        });
      }
      if (epochsLog) appendFileSync(epochsLog, `${JSON.stringify(rec)}\n`);
      opts.onEpoch?.(rec);
    }
    loadModelArrays(model, bestWeights, 'best epoch');
    return { model, history, bestEpoch, bestValAcc, seconds: (performance.now() - t0) / 1000 };
  } catch (e) {
    disposeModel(model);
    throw e;
  } finally {
    for (const d of disposers) await d();
    opt.dispose();
  }
}
