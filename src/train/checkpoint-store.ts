/**
 * A stage-1 run's checkpoints (timm's CheckpointSaver): owns checkpoint.npz (the last completed
 * epoch, with momentum and history: resume from here), best.npz (the best validation epoch)
 * and epochs.jsonl (one line per epoch) in a run folder, and tracks the best epoch in memory.
 * Without a run folder it writes nothing and only tracks the best epoch.
 */
import { appendFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { ConfigError } from '../errors.ts';
import { RUN_FILES, recordWrite, runFile } from '../io/run-folder.ts';
import type { BackboneSpec } from '../models/backbone.ts';
import { loadModelArrays, type Model, modelArrays } from '../models/model.ts';
import { type NamedArrays, ParamMismatchError } from '../models/params.ts';
import { resolveBackboneSpec, showBackboneSpec } from '../models/registry.ts';
import type { Sgd } from '../optim/sgd.ts';
import { samplerOptions, samplerOptionsOf } from '../sampling/samplers.ts';
import {
  CHECKPOINT_FORMAT,
  type Checkpoint,
  type CheckpointMeta,
  firstNonFinite,
  loadCheckpoint,
  saveCheckpoint,
} from './checkpoint.ts';
import { ACCURACY_UNIT, type EpochRecord, stage1InPercent, TrainingError } from './epoch.ts';
import { type JointConfig, resolveAugmentation } from './joint-config.ts';

/** What a checkpoint was trained as; saved in every checkpoint's meta and checked on resume. */
export interface RunIdentity {
  /** The backbone and its options (a bare name: that backbone at its defaults). */
  backbone: string | BackboneSpec;
  inputShape: [number, number, number];
  numClasses: number;
  dataset: string;
  config: JointConfig;
}

/**
 * Settings a resumed run must share with the checkpoint, or it would not continue the same
 * run. `epochs` may grow (extending a finished run) and `threads` may change; either way the
 * result then differs from an uninterrupted run: the cosine schedule (and progressive sampling)
 * follow the total epochs, and with several threads batch norm uses each shard's statistics.
 */
const MUST_MATCH = [
  'seed',
  'sampler',
  'samplerQ',
  'batchSize',
  'lr',
  'weightDecay',
  'momentum',
  'warmupEpochs',
] as const satisfies readonly (keyof JointConfig)[];

/** A checkpoint's settings: a JointConfig, or an older checkpoint's (sampler options nested). */
type SavedJointConfig = JointConfig & { samplerOptions?: Record<string, unknown> };

const show = (v: unknown) => (v === undefined ? '(unset)' : String(v));

/** Every setting in which the run differs from the checkpoint, as `name saved vs given`. */
export function resumeConflicts(saved: CheckpointMeta, run: RunIdentity): string[] {
  const out: string[] = [];
  const differ = (name: string, a: unknown, b: unknown) => {
    if (a !== b) out.push(`${name} ${show(a)} vs ${show(b)}`);
  };
  // A bare name (older checkpoints) is that backbone at its default options.
  differ(
    'backbone',
    showBackboneSpec(resolveBackboneSpec(saved.backbone)),
    showBackboneSpec(resolveBackboneSpec(run.backbone)),
  );
  differ('classes', saved.numClasses, run.numClasses);
  differ('input', saved.inputShape.join('x'), run.inputShape.join('x'));
  const cfg = saved.config as SavedJointConfig | undefined;
  if (cfg === undefined) return out; // no settings saved: the identity above is all there is to check
  for (const k of MUST_MATCH) differ(k, cfg[k], run.config[k]);
  // The sampler's own options as resolved: a checkpoint from before samplers had options holds
  // none, which is the sampler at its defaults.
  if (cfg.sampler !== undefined && cfg.sampler === run.config.sampler) {
    // Checkpoints written before the options were settings hold them as `samplerOptions`.
    const opts = (c: SavedJointConfig) =>
      JSON.stringify(
        c.samplerOptions !== undefined ? samplerOptions(c.sampler, c.samplerOptions) : samplerOptionsOf(c),
      );
    differ('sampler options', opts(cfg), opts(run.config));
  }
  // Compared as resolved: 'auto' and what it means for these images are the same augmentation.
  const height = run.inputShape[0];
  // Absent in checkpoints written before the setting existed: those trained in fp32.
  differ('precision', cfg.precision ?? 'fp32', run.config.precision ?? 'fp32');
  differ(
    'augment',
    resolveAugmentation(cfg.augment ?? 'auto', height),
    resolveAugmentation(run.config.augment, height),
  );
  if (run.config.epochs < saved.epoch)
    out.push(`epochs: the checkpoint has completed ${saved.epoch}, given ${run.config.epochs}`);
  return out;
}

/** A run's checkpoint.npz and best.npz (null if absent), read and checked for a resume. */
export interface ResumeFiles {
  path: string;
  checkpoint: Checkpoint;
  best: Checkpoint | null;
}

/**
 * Reads and checks what a resume continues from, writing nothing: checkpoint.npz (its CRC-32s,
 * finite weights, and settings equal to `run`'s: resumeConflicts) and best.npz if present.
 * `train --resume` calls it before the run folder is opened, so a damaged checkpoint is refused
 * before config.json or the manifest are rewritten.
 */
export function readResumeFiles(runDir: string | undefined, run: RunIdentity): ResumeFiles {
  const path = runDir === undefined ? undefined : runFile(runDir, 'checkpoint');
  if (!path || !existsSync(path))
    throw new ConfigError(`--resume: no ${RUN_FILES.checkpoint} in ${runDir ?? '(no run folder)'}`);
  const checkpoint = loadCheckpoint(path);
  const m = checkpoint.meta;
  const conflicts = resumeConflicts(m, run);
  if (conflicts.length > 0) {
    throw new ConfigError(
      `${path}: checkpoint is for ${showBackboneSpec(m.backbone)}, ${m.numClasses} classes, input ${m.inputShape.join('x')}; ` +
        `this run is ${showBackboneSpec(run.backbone)}, ${run.numClasses} classes, input ${run.inputShape.join('x')}. ` +
        `Settings that differ (saved vs given): ${conflicts.join('; ')}. ` +
        'Resume with the saved settings, or train in a new run folder.',
    );
  }
  const bestPath = runFile(runDir!, 'best');
  return { path, checkpoint, best: existsSync(bestPath) ? loadCheckpoint(bestPath) : null };
}

export class CheckpointStore {
  readonly history: EpochRecord[] = [];
  bestEpoch = -1;
  bestValAcc: number | null = null;
  private bestWeights: NamedArrays | null = null;
  private readonly files: { checkpoint: string; best: string; epochs: string } | null;

  constructor(
    private readonly runDir: string | undefined,
    private readonly run: RunIdentity,
  ) {
    if (runDir) mkdirSync(runDir, { recursive: true });
    this.files = runDir
      ? {
          checkpoint: runFile(runDir, 'checkpoint'),
          best: runFile(runDir, 'best'),
          epochs: runFile(runDir, 'epochs'),
        }
      : null;
  }

  /** A fresh run: an empty epoch log. Returns the first epoch to train (0). */
  begin(): number {
    if (this.files) {
      writeFileSync(this.files.epochs, '');
      recordWrite(this.files.epochs); // appended to, not written atomically: into the run's manifest by hand
    }
    return 0;
  }

  /**
   * Continues from checkpoint.npz: weights into `model`, momentum into `opt`, history and best
   * epoch into this store. Returns the number of completed epochs. The checkpoint must be of
   * this run's settings (resumeConflicts), else a ConfigError lists each one that differs.
   */
  resume(model: Model, opt: Sgd, preloaded?: ResumeFiles): number {
    const { path, checkpoint: ck, best } = preloaded ?? readResumeFiles(this.runDir, this.run);
    const m = ck.meta;
    try {
      loadModelArrays(model, ck.weights, path);
    } catch (e) {
      if (e instanceof ParamMismatchError) throw new ConfigError(e.message);
      throw e;
    }
    opt.loadState(ck.momentum);
    // Checkpoints written before 0.2 hold fractions; the history continues in percent.
    const saved = stage1InPercent(
      { history: (m.history as EpochRecord[]) ?? [], bestValAcc: (m.bestValAcc as number | null) ?? null },
      m.accuracyUnit,
    );
    this.history.splice(0, this.history.length, ...saved.history);
    this.bestEpoch = (m.bestEpoch as number) ?? -1;
    this.bestValAcc = saved.bestValAcc;
    const files = this.files!;
    if (best !== null) this.bestWeights = best.weights;
    writeFileSync(files.epochs, this.history.map((h) => `${JSON.stringify(h)}\n`).join(''));
    recordWrite(files.epochs);
    return m.epoch;
  }

  /** The checkpoint a failed run can restart from, if one has been written. */
  lastGood(): string | null {
    return this.files && existsSync(this.files.checkpoint) ? this.files.checkpoint : null;
  }

  /**
   * Records a completed epoch: best.npz if it is the best so far (by validation accuracy, ties to
   * the later epoch; without validation, the last), then checkpoint.npz and its epochs.jsonl line.
   * Weights or momentum that are not finite are refused before anything is written.
   */
  saveEpoch(model: Model, opt: Sgd, rec: EpochRecord): void {
    const weights = modelArrays(model);
    const momentum = opt.state();
    const bad = firstNonFinite(weights) ?? firstNonFinite(momentum);
    if (bad) {
      const last = this.lastGood();
      throw new TrainingError(
        `${bad.name} became ${bad.value} at epoch ${rec.epoch} (learning rate ${rec.lr.toPrecision(3)}); ` +
          `try a smaller --lr.${last ? ` The last good checkpoint is ${last} (epoch ${rec.epoch - 1}).` : ''}`,
      );
    }
    this.history.push(rec);
    const base: CheckpointMeta = {
      format: CHECKPOINT_FORMAT,
      version: 1,
      ...this.run,
      epoch: rec.epoch,
    };
    if (rec.valAcc === null || this.bestValAcc === null || rec.valAcc >= this.bestValAcc) {
      this.bestEpoch = rec.epoch;
      this.bestValAcc = rec.valAcc;
      this.bestWeights = weights;
      if (this.files)
        saveCheckpoint(this.files.best, { meta: { ...base, best: true }, weights, momentum: {} });
    }
    if (this.files) {
      const { bestEpoch, bestValAcc, history } = this;
      saveCheckpoint(this.files.checkpoint, {
        meta: { ...base, history, bestEpoch, bestValAcc, accuracyUnit: ACCURACY_UNIT },
        weights,
        momentum,
      });
      appendFileSync(this.files.epochs, `${JSON.stringify(rec)}\n`);
    }
  }

  /** Puts the best epoch's weights into `model` (it keeps its own when no epoch has completed). */
  restoreBest(model: Model): void {
    if (this.bestWeights) loadModelArrays(model, this.bestWeights, 'best epoch');
  }
}
