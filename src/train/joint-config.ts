/**
 * Stage 1's settings: the type, the defaults and their validation. Validation is the run
 * configuration's own schema (config/schema.ts), so a library caller of trainJoint gets the same
 * rule and the same message, naming the field as the config does, as a CLI user.
 */
import { type LossName, resolveConfig, TrainConfigSchema } from '../config/schema.ts';
import { ConfigError } from '../errors.ts';
import type { Augmentation } from './augment.ts';

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
  /**
   * `bf16`: the training step's convolutions in bf16 where that is faster (fp32 sums, master
   * weights, optimiser state and batch norm); needs AVX512_BF16. Default `fp32`.
   */
  precision?: 'fp32' | 'bf16';
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

/**
 * The schema's rules for the numeric settings. Backbone and sampler names are left to their
 * registries, whose errors name the unknown value and list the valid ones.
 */
const JOINT_RULES = TrainConfigSchema.pick({
  samplerQ: true,
  epochs: true,
  batchSize: true,
  lr: true,
  weightDecay: true,
  momentum: true,
  warmupEpochs: true,
  seed: true,
  augment: true,
  threads: true,
  loss: true,
  lossTau: true,
  precision: true,
});

/** Throws a ConfigError naming the first setting that breaks a rule (`epochs: Too small: ...`). */
export function validateJointConfig(c: JointConfig): void {
  resolveConfig(JOINT_RULES, [{ source: 'the training config', values: { ...c } }]);
  // A rule across two fields, which the schema does not hold.
  if (!(c.warmupEpochs < c.epochs)) {
    throw new ConfigError(
      `warmupEpochs: must be less than epochs (got ${c.warmupEpochs} with epochs ${c.epochs})`,
    );
  }
}

export function resolveAugmentation(aug: JointConfig['augment'], height: number): Augmentation {
  if (aug !== 'auto') return aug;
  return height <= 64 ? 'crop-flip' : 'resized-crop-flip';
}
