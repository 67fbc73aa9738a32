/**
 * Stage 1: joint training of backbone + linear classifier with cross-entropy, SGD (momentum,
 * weight decay), a cosine schedule and any sampler. Evaluates on the validation set after every
 * epoch and keeps the best epoch's weights (the official code's choice). Checkpoints every
 * epoch, atomically; a resumed run reaches the same weights as an uninterrupted one, because
 * every random choice derives from (seed, epoch).
 *
 * Composed of an epoch runner (epoch.ts) and a checkpoint store (checkpoint-store.ts).
 */
import type * as tf from '@tensorflow/tfjs-core';
import { enterBf16Training } from '../backend/training-kernels.ts';
import { plainImages } from '../data/batches.ts';
import type { LongTailDataset } from '../data/types.ts';
import { ConfigError } from '../errors.ts';
import { forwardInBatches } from '../models/forward.ts';
import { createModel, disposeModel, type Model } from '../models/model.ts';
import { backboneSpec, showBackboneSpec } from '../models/registry.ts';
import { cosineLr } from '../optim/schedule.ts';
import { Sgd } from '../optim/sgd.ts';
import { createSampler, samplerOptionsOf } from '../sampling/samplers.ts';
import { CheckpointStore, type ResumeFiles, type RunIdentity } from './checkpoint-store.ts';
import { type EpochRecord, EpochRunner, type StepInfo, toPercent } from './epoch.ts';
import { type JointConfig, jointPart, resolveAugmentation, validateJointConfig } from './joint-config.ts';
import { lossOffset } from './loss.ts';
import { DataParallel } from './parallel/data-parallel.ts';

export { type EpochRecord, type StepInfo, TrainingError } from './epoch.ts';
export {
  DEFAULT_JOINT_CONFIG,
  type JointConfig,
  JointConfigSchema,
  jointConfigSchema,
  resolveAugmentation,
  validateJointConfig,
} from './joint-config.ts';

export interface TrainOptions {
  /** Where checkpoints and epochs.jsonl go; nothing is written without it. */
  runDir?: string;
  /** Continue from the run folder's checkpoint (its settings must match; see checkpoint-store.ts). */
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

/** Top-1 accuracy of a model on a set (eval mode), overall (not per class). */
export function accuracy(model: Model, set: LongTailDataset['test'], batchSize = 256): number {
  const n = set.labels.length;
  const net = (x: tf.Tensor4D) => model.head.apply(model.backbone.features(x, false)); // [b, classes]
  const logits = forwardInBatches(net, plainImages(set), n, [set.height, set.width, set.channels], {
    batchSize,
  });
  const C = model.numClasses;
  let correct = 0;
  for (let i = 0; i < n; i++) {
    // The first of equal maxima, as tf.argMax.
    let best = 0;
    for (let c = 1; c < C; c++) if (logits[i * C + c]! > logits[i * C + best]!) best = c;
    if (best === set.labels[i]) correct++;
  }
  return correct / n;
}

/** What a checkpoint of this training must match to be resumed (resumeConflicts). */
export function runIdentityOf(data: LongTailDataset, cfg: JointConfig): RunIdentity {
  const { train } = data;
  return {
    backbone: backboneSpec(cfg),
    inputShape: [train.height, train.width, train.channels],
    numClasses: data.classNames.length,
    dataset: data.name,
    config: jointPart(cfg),
  };
}

/** Trains stage 1. The returned model is the caller's to dispose. */
export function trainJoint(
  data: LongTailDataset,
  cfg: JointConfig,
  opts: TrainOptions = {},
): Promise<TrainResult> {
  return train(data, cfg, opts);
}

/**
 * Resumes stage 1 from the run folder's checkpoint as its caller read and checked it
 * (readResumeFiles): `train --resume` (pipeline/stage1.ts) reads it before it opens the folder, so
 * a damaged one is refused with the folder as it was, and it is not read twice. Plumbing, so not
 * in TrainOptions or the public API.
 */
export function resumeJointFrom(
  data: LongTailDataset,
  cfg: JointConfig,
  preloaded: ResumeFiles,
  opts: Omit<TrainOptions, 'resume'> = {},
): Promise<TrainResult> {
  return train(data, cfg, { ...opts, resume: true }, preloaded);
}

async function train(
  data: LongTailDataset,
  cfg: JointConfig,
  opts: TrainOptions,
  preloaded?: ResumeFiles,
): Promise<TrainResult> {
  // A configuration the CLI or the pipeline validated is not validated again; a library caller's is.
  cfg = validateJointConfig(cfg);
  const { train, val } = data;
  const numClasses = data.classNames.length;
  const inputShape: [number, number, number] = [train.height, train.width, train.channels];
  // The backbone with its options (`<name>X` settings) parsed by its entry: the model, the
  // checkpoint and the workers receive this spec.
  const spec = backboneSpec(cfg);
  const model = createModel(spec, inputShape, numClasses, cfg.seed);
  const opt = new Sgd({ momentum: cfg.momentum, weightDecay: cfg.weightDecay });
  let dp: DataParallel | null = null;
  let leaveBf16: (() => void) | null = null;
  try {
    // Refused before anything is written; this thread's kernels switch back when training ends.
    if (cfg.precision === 'bf16') leaveBf16 = enterBf16Training();
    if (!model.backbone.trainable)
      throw new ConfigError(
        `backbone ${showBackboneSpec(spec)} is frozen: stage 1 cannot train it; use its features for stage 2`,
      );
    const sampler = createSampler(
      cfg.sampler,
      { labels: train.labels, numClasses, batchSize: cfg.batchSize, seed: cfg.seed, epochs: cfg.epochs },
      cfg.samplerQ !== undefined ? { q: cfg.samplerQ } : samplerOptionsOf(cfg),
    );
    const store = new CheckpointStore(opts.runDir, runIdentityOf(data, cfg));
    const start = opts.resume ? store.resume(model, opt, preloaded) : store.begin();
    // Each shard needs at least 2 images for its batch statistics.
    const threads = Math.max(1, Math.min(Math.floor(cfg.threads ?? 1), Math.floor(cfg.batchSize / 2)));
    dp = await DataParallel.create(model, opt, threads, {
      seed: cfg.seed,
      momentum: cfg.momentum,
      weightDecay: cfg.weightDecay,
      logitOffset: lossOffset(cfg.loss ?? 'ce', data.trainCounts, cfg.lossTau),
      precision: cfg.precision ?? 'fp32',
    });
    const runner = new EpochRunner(train, sampler, dp, {
      batchSize: cfg.batchSize,
      seed: cfg.seed,
      augmentation: resolveAugmentation(cfg.augment, train.height),
    });
    const t0 = performance.now();
    for (let epoch = start; epoch < cfg.epochs; epoch++) {
      if (opts.stopAfterEpoch !== undefined && epoch >= opts.stopAfterEpoch) break;
      const lr = cosineLr(epoch, cfg.epochs, cfg.lr, cfg.warmupEpochs);
      const stats = await runner.run(epoch, lr, { onStep: opts.onStep, lastGood: store.lastGood() });
      const valAcc = val ? toPercent(accuracy(model, val)) : null;
      const { loss, trainAcc, imagesPerSec, seconds } = stats;
      const rec: EpochRecord = { epoch: epoch + 1, lr, loss, trainAcc, valAcc, imagesPerSec, seconds };
      store.saveEpoch(model, opt, rec);
      opts.onEpoch?.(rec);
    }
    store.restoreBest(model);
    const { history, bestEpoch, bestValAcc } = store;
    return { model, history, bestEpoch, bestValAcc, seconds: (performance.now() - t0) / 1000 };
  } catch (e) {
    disposeModel(model);
    throw e;
  } finally {
    await dp?.dispose();
    opt.dispose();
    leaveBf16?.();
  }
}
