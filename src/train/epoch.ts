/**
 * One training epoch (timm's train_one_epoch): the sampler's order for the epoch, the
 * augmentation generator for the epoch, the steps, the loss check and progress. Both random
 * streams derive from (seed, epoch) only, so a resumed run replays an epoch exactly.
 */
import type { ImageSet } from '../data/types.ts';
import { UserError } from '../errors.ts';
import { createRng } from '../random/rng.ts';
import type { Sampler } from '../sampling/samplers.ts';
import { type Augmentation, makeBatch } from './augment.ts';

/**
 * Accuracies are percentages with two decimals everywhere longtail reports them (epoch records,
 * stage-1 summaries, results.json, the CLI's JSON): 62.5 means 62.5 %.
 */
export function toPercent(fraction: number): number {
  return Math.round(fraction * 10000) / 100;
}

/**
 * Marks stage-1 history written in percent (`accuracyUnit` in checkpoints and stage-1 summaries);
 * files without it were written before 0.2, when these accuracies were fractions.
 */
export const ACCURACY_UNIT = 'percent';

/** Stage-1 accuracies read from a file, in percent whatever the file's `accuracyUnit`. */
export function stage1InPercent<T extends { history: EpochRecord[]; bestValAcc: number | null }>(
  s: T,
  unit: unknown,
): T {
  if (unit === ACCURACY_UNIT) return s;
  return {
    ...s,
    history: s.history.map((h) => ({
      ...h,
      trainAcc: toPercent(h.trainAcc),
      valAcc: h.valAcc === null ? null : toPercent(h.valAcc),
    })),
    bestValAcc: s.bestValAcc === null ? null : toPercent(s.bestValAcc),
  };
}

export interface EpochRecord {
  epoch: number;
  lr: number;
  loss: number;
  /** Training accuracy over the epoch's batches, percent. */
  trainAcc: number;
  /** Validation accuracy after the epoch, percent (null without a validation set). */
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

export class TrainingError extends UserError {
  override name = 'TrainingError';
}

/** What runs the optimiser steps: this thread alone, or data-parallel replicas. */
export interface Stepper {
  /**
   * One optimiser step. `whileWaiting` must run exactly once, after `batch` and `labels` were
   * last read (the runner fills them with the next batch there). When it returns true, the next
   * call comes with the same arrays, holding what it put there: data-parallel workers start on
   * their next shards without waiting for that call.
   */
  step(
    batch: Float32Array,
    labels: Int32Array,
    lr: number,
    o: { whileWaiting?: () => boolean },
  ): Promise<{ loss: number; correct: number }>;
  /** Brings the replicas' batch-norm running statistics together (at the end of every epoch). */
  syncBatchNorm(): Promise<void>;
}

/** An epoch's training numbers (the validation accuracy is the caller's). */
export type EpochStats = Omit<EpochRecord, 'epoch' | 'lr' | 'valAcc'>;

const AUG_SALT = 0xa06;

export class EpochRunner {
  private readonly batch: Float32Array<ArrayBuffer>; // [B, H, W, C]
  private readonly labels: Int32Array<ArrayBuffer>; // [B]

  constructor(
    private readonly train: ImageSet,
    private readonly sampler: Sampler,
    private readonly stepper: Stepper,
    private readonly o: { batchSize: number; seed: number; augmentation: Augmentation },
  ) {
    this.batch = new Float32Array(o.batchSize * train.height * train.width * train.channels);
    this.labels = new Int32Array(o.batchSize);
  }

  /**
   * Trains epoch `epoch` (0-based) at learning rate `lr`. A loss that is not finite stops
   * training with a TrainingError; `lastGood` (a checkpoint path) is named in it when there is one.
   */
  async run(
    epoch: number,
    lr: number,
    { onStep, lastGood }: { onStep?: (s: StepInfo) => void; lastGood?: string | null } = {},
  ): Promise<EpochStats> {
    const { train, sampler, batch, labels } = this;
    const B = this.o.batchSize;
    const steps = sampler.stepsPerEpoch;
    const order = sampler.epoch(epoch);
    const rng = createRng(this.o.seed, AUG_SALT, epoch);
    const te = performance.now();
    let lossSum = 0;
    let correct = 0;
    // Batches are made in step order from one generator, whenever the stepper calls for the next.
    const prepare = (step: number) => {
      const idx = order.subarray(step * B, (step + 1) * B);
      makeBatch(train, idx, this.o.augmentation, rng, batch);
      for (let k = 0; k < B; k++) labels[k] = train.labels[idx[k]!]!;
    };
    if (steps > 0) prepare(0);
    for (let step = 0; step < steps; step++) {
      // The next batch is assembled while the workers compute this one's shards; within the
      // epoch it is the next call's (the workers may start on it with this step's update).
      const whileWaiting =
        step + 1 < steps
          ? () => {
              prepare(step + 1);
              return true;
            }
          : () => false;
      const { loss, correct: c } = await this.stepper.step(batch, labels, lr, { whileWaiting });
      if (!Number.isFinite(loss)) {
        throw new TrainingError(
          `the loss became ${loss} at epoch ${epoch + 1}, step ${step + 1} (learning rate ${lr.toPrecision(3)}); ` +
            `try a smaller --lr.${lastGood ? ` The last good checkpoint is ${lastGood} (epoch ${epoch}).` : ''}`,
        );
      }
      lossSum += loss;
      correct += c;
      const seen = (step + 1) * B;
      onStep?.({
        epoch,
        step: step + 1,
        steps,
        loss: lossSum / (step + 1),
        acc: toPercent(correct / seen),
        imagesPerSec: seen / ((performance.now() - te) / 1000),
      });
      await new Promise((r) => setImmediate(r)); // let progress output flush
    }
    await this.stepper.syncBatchNorm();
    const seconds = (performance.now() - te) / 1000;
    return {
      loss: lossSum / steps,
      trainAcc: toPercent(correct / (steps * B)),
      imagesPerSec: (steps * B) / seconds,
      seconds,
    };
  }
}
