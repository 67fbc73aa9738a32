/**
 * The training loop shared by the trained heads (cRT, LWS, balanced softmax, weight balancing):
 * class-aware sampling (the official stage-2 sampler) or instance-balanced, cross-entropy (with
 * the head's per-class logit offset or class weights, if any), SGD with momentum and weight
 * decay, cosine learning rate per epoch, and an optional max-norm projection after each step.
 * The gradient is written out (sharded/shard-step.ts) and the classes can be split over threads.
 * Batches come from a TrainFeatureSource: cached features, or the frozen backbone with training
 * augmentation (the official code's way).
 */
import { ConfigError } from '../errors.ts';
import type { FeatureSplit } from '../features/feature-set.ts';
import { cosineLr } from '../optim/schedule.ts';
import { createSampler, samplerOptionsOf } from '../sampling/samplers.ts';
import { type HeadState, ShardedHead } from './sharded/head-threads.ts';
import type { HeadKind } from './sharded/shard-step.ts';
import type { HeadSettings, Stage2Context, TrainFeatureSource } from './types.ts';

export interface HeadTrainingOptions extends HeadSettings {
  /** Stage-2 sampler (default class-aware, the official one). */
  sampler?: 'class-aware' | 'instance-balanced';
  /** LWS: the share of the training features' bytes its kept products may take (default SCALED_CACHE_SHARE). */
  cacheShare?: number;
}

/** How a head's loss and update differ from plain cross-entropy and SGD. */
export interface HeadLoss {
  /** [C] logit offset inside the softmax (balanced softmax: log prior). */
  offset?: Float32Array | null;
  /** [C] per-class loss weights (class-balanced loss). */
  classWeights?: Float32Array | null;
  /** Max norm of each weight row, enforced after every step (MaxNorm). */
  maxNorm?: number | null;
}

/**
 * Cached features as a training source: a gather of rows into one reused array (a fresh array a
 * step pays its page faults every step; docs/benchmarks.md has the cost).
 */
export function cachedSource(train: FeatureSplit, d: number): TrainFeatureSource {
  let out = new Float32Array(0);
  return {
    mode: 'features',
    batch: (idx) => {
      if (out.length !== idx.length * d) out = new Float32Array(idx.length * d);
      for (let k = 0; k < idx.length; k++)
        out.set(train.features.subarray(idx[k]! * d, (idx[k]! + 1) * d), k * d);
      return out;
    },
  };
}

export interface HeadTrainingResult {
  /** Mean training loss per epoch. */
  losses: number[];
  mode: TrainFeatureSource['mode'];
  epochs: number;
  lr: number;
}

/**
 * Heads smaller than this many weights (C x d) train on one thread whatever `threads` says: a
 * worker's start and a barrier per step cost more than a small head's products (a 10-class head
 * on 64-d features is 640 multiply-adds a row). 1000 x 512 is far above.
 */
export const MIN_SPLIT_WEIGHTS = 1 << 16;

/**
 * LWS (the scaled kind) can keep the frozen products X W^T (C floats a row) of the training rows
 * drawn most often in the run, up to this share of the training features' bytes, and reuse them
 * when the row comes back (same bits). Class-aware sampling draws every class about equally
 * often, so a row of a class with n_c images comes back about (steps x batch / C) / n_c times an
 * epoch: the few- and medium-shot classes' rows again and again, the many-shot ones about once.
 * Off: at ImageNet-LT's shape a share of 0.05 (44 MiB, 11,587 rows) skips 33 % of the products in
 * one epoch and 41 % over five, yet LWS's CPU time fell only 2-3 % (within the noise) and its
 * peak grew 50-70 MiB (docs/benchmarks.md): the step is not the product alone.
 */
export const SCALED_CACHE_SHARE = 0;

/**
 * The training rows worth keeping products of: those drawn at least twice in the whole run
 * (`order(e)`: epoch e's order, of which the first `used` are drawn; it derives from (seed, e),
 * so it can be read ahead), most-drawn first (ties by row), at most `budget` of them.
 */
export function rowsToKeep(
  order: (epoch: number) => Int32Array,
  epochs: number,
  used: number,
  n: number,
  budget: number,
): Int32Array {
  if (budget < 1) return new Int32Array(0);
  const draws = new Int32Array(n);
  for (let e = 0; e < epochs; e++) {
    const o = order(e);
    for (let k = 0; k < used; k++) draws[o[k]!]!++;
  }
  const rows: number[] = [];
  for (let r = 0; r < n; r++) if (draws[r]! >= 2) rows.push(r);
  rows.sort((a, b) => draws[b]! - draws[a]! || a - b);
  return Int32Array.from(rows.slice(0, Math.floor(budget)));
}

export interface HeadTrainingOutput extends HeadTrainingResult {
  state: HeadState;
  threads: number;
}

/**
 * Trains a linear head (cRT: weight and bias from `init`) or per-class scales of a frozen one
 * (LWS), split by classes over `ctx.threads` threads when the head has at least
 * MIN_SPLIT_WEIGHTS weights (the result does not depend on it).
 */
export function trainHead(
  method: string,
  ctx: Stage2Context,
  head: { kind: HeadKind; weight: Float32Array; bias: Float32Array } & HeadLoss,
  opts: Required<Omit<HeadSettings, 'classAwarePerClass'>> & HeadTrainingOptions,
): HeadTrainingOutput {
  const fs = ctx.features;
  const { epochs, batchSize, lr, weightDecay, momentum, seed } = opts;
  const samplerName = opts.sampler ?? 'class-aware';
  if (!(epochs >= 1 && Number.isInteger(epochs)))
    throw new ConfigError(`${method}: epochs must be a positive integer, got ${epochs}`);
  const empty = fs.trainCounts.indexOf(0);
  if (empty >= 0 && samplerName === 'class-aware')
    throw new ConfigError(
      `${method}: class ${empty} has no training feature; class-balanced training needs every class`,
    );
  const n = fs.train.labels.length;
  if (batchSize > n) {
    throw new ConfigError(
      `${method}: batch size ${batchSize} is larger than the ${n} training images (set --stage2-batch-size)`,
    );
  }
  const source = ctx.source ?? cachedSource(fs.train, fs.dim);
  const cacheable = source.mode === 'features';
  const sampler = createSampler(
    samplerName,
    { labels: fs.train.labels, numClasses: fs.numClasses, batchSize, seed, epochs },
    // The class-aware sampler's options from its own setting (classAwarePerClass), parsed by its entry.
    samplerName === 'class-aware' ? samplerOptionsOf({ ...opts, sampler: samplerName }) : {},
  );
  const cacheRows =
    head.kind === 'scaled' && cacheable
      ? rowsToKeep(
          (e) => sampler.epoch(e),
          epochs,
          sampler.stepsPerEpoch * batchSize,
          n,
          ((opts.cacheShare ?? SCALED_CACHE_SHARE) * n * fs.dim) / fs.numClasses,
        )
      : null;
  const trainer = new ShardedHead({
    ...head,
    offset: head.offset ?? null,
    classWeights: head.classWeights ?? null,
    maxNorm: head.maxNorm ?? null,
    dim: fs.dim,
    numClasses: fs.numClasses,
    momentum,
    weightDecay,
    batchSize,
    threads: fs.numClasses * fs.dim >= MIN_SPLIT_WEIGHTS ? (ctx.threads ?? 1) : 1,
    // Augmented features differ every epoch: no row's products may be reused then.
    cacheRows,
    // LWS on the cached features: the shards read each batch's rows from them by index (no
    // gather, no copy to the workers); the head decides whether it can (head-threads.ts).
    features: head.kind === 'scaled' && ctx.source === undefined ? fs.train.features : null,
  });
  const threads = trainer.threads;
  const losses: number[] = [];
  const labels = new Int32Array(batchSize);
  try {
    for (let e = 0; e < epochs; e++) {
      const rate = cosineLr(e, epochs, lr);
      const order = sampler.epoch(e);
      let sum = 0;
      for (let s = 0; s < sampler.stepsPerEpoch; s++) {
        const idx = order.subarray(s * batchSize, (s + 1) * batchSize);
        const feats = trainer.readsRows ? null : source.batch(idx, e, s);
        for (let k = 0; k < batchSize; k++) labels[k] = fs.train.labels[idx[k]!]!;
        sum += trainer.step(feats, labels, rate, cacheable ? idx : null);
        ctx.onProgress?.(method, e * sampler.stepsPerEpoch + s + 1, epochs * sampler.stepsPerEpoch);
      }
      losses.push(sum / sampler.stepsPerEpoch);
      if (!Number.isFinite(losses[e]!))
        throw new ConfigError(
          `${method}: the loss became ${losses[e]} in epoch ${e + 1}; try a smaller learning rate`,
        );
    }
    return { losses, mode: source.mode, epochs, lr, state: trainer.finish(), threads };
  } finally {
    trainer.dispose();
  }
}
