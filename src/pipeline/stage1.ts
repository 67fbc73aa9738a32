/**
 * Stage 1 as a run: data -> joint training (checkpoints, best epoch) -> features, in a run folder
 * that is opened only after every input has been validated; and the rules for resuming one.
 */

import { existsSync } from 'node:fs';
import { isAbsolute, relative, resolve, sep } from 'node:path';
import { readRunConfig, type TrainConfig, trainConfigSchema } from '../config/schema.ts';
import { makeContract, type PreprocessContract } from '../data/preprocess.ts';
import type { LongTailDataset } from '../data/types.ts';
import { ConfigError, DataError } from '../errors.ts';
import { type FeatureSet, loadFeatureFile, saveFeatureFile } from '../features/feature-set.ts';
import { writeJsonAtomic } from '../io/atomic.ts';
import {
  assertNotLocked,
  backboneIdentityFile,
  type ExternalBackbone,
  fileSha256,
  openRun,
  planRun,
  RUN_FILES,
  type RunFolder,
  runFile,
} from '../io/run-folder.ts';
import { createModel, disposeModel, type Model } from '../models/model.ts';
import { isOnnxBackbone } from '../models/onnx-backbone.ts';
import { checkOnnxPath } from '../models/onnx-file.ts';
import { backboneSpec, isOnnxSpec } from '../models/registry.ts';
import type { RunResults } from '../report/results.ts';
import { markParsed, parseOnce } from '../settings.ts';
import { type ResumeFiles, readResumeFiles } from '../train/checkpoint-store.ts';
import { ACCURACY_UNIT, stage1InPercent } from '../train/epoch.ts';
import {
  type EpochRecord,
  resumeJointFrom,
  runIdentityOf,
  type TrainOptions,
  trainJoint,
} from '../train/joint.ts';
import { loadStage1Model, stage1Progress } from '../train/stage1-model.ts';
import type { PipelineCallbacks } from './callbacks.ts';
import { featuresFromModel } from './features-from-model.ts';
import { checkModelFits, loadRunData, withThreads } from './run-setup.ts';

export type Stage1Summary = NonNullable<RunResults['stage1']>;

export interface Stage1Output {
  runDir: string;
  data: LongTailDataset;
  model: Model;
  features: FeatureSet;
  summary: Stage1Summary;
  seconds: { stage1: number; features: number };
}

/** Stage 1 in an open run folder: training (or its resumption), features.npz, stage1.json. */
export async function stage1InFolder(
  cfg: TrainConfig,
  data: LongTailDataset,
  folder: RunFolder,
  opts: { resume?: boolean; preloaded?: ResumeFiles } & PipelineCallbacks = {},
): Promise<Stage1Output> {
  if (isOnnxSpec(cfg.backbone)) return saveExtraction(extractWithOnnx(cfg, data, opts), folder);
  if (data.val === null)
    opts.warn?.(`${data.name} has no validation set: the last epoch is kept and tau falls back to 1`);
  opts.onPhase?.(
    `stage 1: ${cfg.backbone}, ${cfg.samplerQ !== undefined ? `q = ${cfg.samplerQ}` : cfg.sampler}, ${cfg.epochs} epochs`,
  );
  const t0 = performance.now();
  // The stage-1 part of the run configuration is the JointConfig, already parsed.
  const train: TrainOptions = {
    runDir: folder.dir,
    onStep: (s) => opts.onStep?.(s, cfg.epochs),
    onEpoch: (e) => opts.onEpoch?.(e, cfg.epochs),
  };
  const r = opts.preloaded
    ? await resumeJointFrom(data, cfg, opts.preloaded, train)
    : await trainJoint(data, cfg, { ...train, ...(opts.resume ? { resume: true } : {}) });
  try {
    const stage1 = (performance.now() - t0) / 1000;
    opts.onPhase?.('extracting features (train, val, test)');
    const t1 = performance.now();
    const features = featuresFromModel(r.model, data, opts.onFeatures);
    saveFeatureFile(folder.path('features'), features);
    const summary: Stage1Summary = {
      history: r.history,
      bestEpoch: r.bestEpoch,
      bestValAcc: r.bestValAcc,
      seconds: stage1,
      accuracyUnit: ACCURACY_UNIT,
    };
    writeJsonAtomic(folder.path('stage1'), summary);
    return {
      runDir: folder.dir,
      data,
      model: r.model,
      features,
      summary,
      seconds: { stage1, features: (performance.now() - t1) / 1000 },
    };
  } catch (e) {
    disposeModel(r.model);
    throw e;
  }
}

/**
 * "Stage 1" with a frozen ONNX backbone: no training, only features (train, val, test) and the
 * backbone's identity (backbone.json: how to rebuild it, the .onnx file and its SHA-256), so
 * `retrain --run`, `predict --run` and `export --run` work on the folder as on a trained run.
 */
interface Extraction {
  data: LongTailDataset;
  model: Model;
  features: FeatureSet;
  record: ExternalBackbone;
  seconds: number;
}

/** Features through the ONNX backbone, before any folder is touched (a NaN output fails here). */
function extractWithOnnx(cfg: TrainConfig, data: LongTailDataset, opts: PipelineCallbacks): Extraction {
  const t = data.train;
  const spec = backboneSpec(cfg);
  const file = resolve(String(spec.options!.path));
  checkOnnxPath(file); // a FIFO or /dev/zero would hang the hash
  const sha256 = fileSha256(file);
  const inputShape: [number, number, number] = [t.height, t.width, t.channels];
  const model = createModel(
    { name: 'onnx', options: { ...spec.options, path: file } },
    inputShape,
    data.classNames.length,
    cfg.seed,
  );
  try {
    opts.onPhase?.(`extracting features with ${file} (train, val, test)`);
    const t1 = performance.now();
    const features = featuresFromModel(model, data, opts.onFeatures);
    const seconds = (performance.now() - t1) / 1000;
    if (fileSha256(file) !== sha256)
      throw new ConfigError(`${file}: changed while features were extracted; try again`);
    const record: ExternalBackbone = {
      spec: { name: 'onnx', options: { ...spec.options, path: file } },
      file,
      sha256,
      inputShape,
      numClasses: data.classNames.length,
      preprocessing: onnxContract(model, spec.options ?? {}, inputShape),
    };
    return { data, model, features, record, seconds };
  } catch (e) {
    disposeModel(model);
    throw e;
  }
}

/**
 * The preprocessing contract of an ONNX-backbone run: images at the data's side (decoded and
 * resized by the contract's resize), then the backbone's mean, std and layout. A model that takes
 * another side resizes once more inside the backbone (bilinear), which the contract cannot say;
 * docs/preprocessing.md.
 */
function onnxContract(
  model: Model,
  options: Record<string, unknown>,
  inputShape: readonly [number, number, number],
): PreprocessContract {
  const b = model.backbone;
  if (!isOnnxBackbone(b)) throw new Error('onnxContract: not an ONNX backbone');
  const three = (v: Float32Array, given: unknown) => {
    // The numbers as given (0.485, not its float32), to 3 channels as the contract has them.
    const ok = Array.isArray(given) && (given.length === 1 || given.length === v.length);
    const src = ok ? (given as number[]) : Array.from(v);
    return src.length === 3 ? src : [src[0]!, src[0]!, src[0]!];
  };
  return makeContract({
    size: inputShape[0],
    colour: inputShape[2] === 1 ? 'grey' : 'rgb',
    mean: three(b.preprocess.mean, options.mean),
    std: three(b.preprocess.std, options.std),
    layout: b.preprocess.layout,
  });
}

function saveExtraction(x: Extraction, folder: RunFolder): Stage1Output {
  try {
    saveFeatureFile(folder.path('features'), x.features);
    // The model's path relative to the run (tried first), so a run moved or copied together with
    // its model still finds it; the absolute path stays as a hint, the SHA-256 decides.
    const rel = relative(folder.dir, x.record.file).split(sep).join('/');
    const record: ExternalBackbone = isAbsolute(rel) ? x.record : { ...x.record, relativeFile: rel };
    writeJsonAtomic(folder.path('backbone'), record);
    const summary: Stage1Summary = { history: [], bestEpoch: 0, bestValAcc: null, seconds: 0 };
    writeJsonAtomic(folder.path('stage1'), summary);
    return {
      runDir: folder.dir,
      data: x.data,
      model: x.model,
      features: x.features,
      summary,
      seconds: { stage1: 0, features: x.seconds },
    };
  } catch (e) {
    disposeModel(x.model);
    throw e;
  }
}

/**
 * Stage 1 into a new run folder (`out`, default `runs/train-<time>`): the data is loaded and the
 * model built before the folder is created, so a mistake leaves nothing behind. The returned
 * model is the caller's to dispose.
 */
export async function runStage1(
  cfg: TrainConfig,
  out?: string,
  opts: { force?: boolean } & PipelineCallbacks = {},
): Promise<Stage1Output> {
  cfg = withThreads(parseOnce(trainConfigSchema(), cfg, 'the training configuration'));
  const plan = planRun('train', out, opts);
  const data = await loadRunData(cfg, opts);
  // An ONNX backbone: everything that can fail (the model, its outputs, NaN) fails before the folder opens.
  const extraction = isOnnxSpec(cfg.backbone) ? extractWithOnnx(cfg, data, opts) : null;
  if (!extraction) checkModelFits(cfg, data);
  let folder: RunFolder;
  try {
    folder = openRun(plan);
  } catch (e) {
    if (extraction) disposeModel(extraction.model);
    throw e;
  }
  try {
    opts.onRunFolder?.(folder.dir);
    writeJsonAtomic(folder.path('config'), {
      command: 'train',
      ...(extraction ? withoutTraining(cfg) : cfg),
    });
    if (extraction) return saveExtraction(extraction, folder);
    return await stage1InFolder(cfg, data, folder, opts);
  } finally {
    folder.release();
  }
}

/**
 * Settings of stage-1 training that an ONNX-backbone run (features only, no training) never
 * uses, so its config.json does not record them. lr, weight decay, seed, batch size, augment and
 * momentum stay: retrain --run starts cRT and LWS from them.
 */
const TRAINING_ONLY = [
  'epochs',
  'warmupEpochs',
  'sampler',
  'samplerQ',
  'loss',
  'lossTau',
  'precision',
] as const;

function withoutTraining(cfg: TrainConfig): Partial<TrainConfig> {
  return Object.fromEntries(
    Object.entries(cfg).filter(([k]) => !(TRAINING_ONLY as readonly string[]).includes(k)),
  ) as Partial<TrainConfig>;
}

/** Settings a resumed run may change: `epochs` (to extend it) and `threads`. */
export const RESUME_MAY_CHANGE: readonly (keyof TrainConfig)[] = ['epochs', 'threads'];

/**
 * A resumed run's configuration: its saved settings, with the given ones that may change.
 * Any other given setting that differs from the saved one is an error naming each.
 */
export function resumedConfig(saved: TrainConfig, given: Partial<TrainConfig>, dir: string): TrainConfig {
  const conflicts: string[] = [];
  const cfg: TrainConfig = { ...saved };
  for (const [k, v] of Object.entries(given) as [keyof TrainConfig, unknown][]) {
    if (v === undefined) continue;
    if (RESUME_MAY_CHANGE.includes(k)) (cfg as Record<string, unknown>)[k] = v;
    else if (JSON.stringify(saved[k]) !== JSON.stringify(v))
      conflicts.push(`${k} ${JSON.stringify(v)} (the run has ${JSON.stringify(saved[k])})`);
  }
  if (conflicts.length > 0) {
    throw new ConfigError(
      `--resume ${dir}: ${conflicts.join(', ')}: a resumed run keeps its settings; only ${RESUME_MAY_CHANGE.join(' (to extend it) and ')} may change. Start a new run with --out for other settings`,
    );
  }
  // The saved settings were validated when read, the given ones when resolved, and the rule
  // across them (warm-up below epochs) is checked here: nothing to parse again.
  if (!(cfg.warmupEpochs < cfg.epochs))
    throw new ConfigError(
      `--resume ${dir}: --epochs ${cfg.epochs}: must be more than the run's warmupEpochs (${cfg.warmupEpochs})`,
    );
  return markParsed(cfg);
}

/**
 * Continues an interrupted (or extends a finished) stage 1 in `dir` from its last checkpoint.
 * `given` are settings the user passed again: `epochs` and `threads` may change, any other must
 * equal the run's (see resumedConfig). With another thread count the run continues correctly
 * but no longer replays an uninterrupted run exactly (batch-norm shards change).
 */
export async function resumeStage1(
  dir: string,
  given: Partial<TrainConfig> = {},
  opts: PipelineCallbacks = {},
): Promise<Stage1Output> {
  const rc = readRunConfig(runFile(dir, 'config'));
  if (rc.command === 'retrain' || rc.command === 'study' || rc.command === 'seeds')
    throw new ConfigError(
      `--resume ${dir}: a ${rc.command} folder has no stage 1 of its own to resume; resume its stage-1 run`,
    );
  // Validated by its command's schema as it was read: a demo's holds stage 2's settings too, which
  // stage 1 ignores and the rewritten config.json keeps.
  const saved: TrainConfig = rc.config;
  const cfg = resumedConfig(saved, given, dir);
  const done = stage1Progress(dir, saved.epochs).done;
  if (done === 0)
    throw new ConfigError(
      `--resume ${dir}: no completed epoch to resume from (no ${RUN_FILES.checkpoint}); start the run again with --out ${dir} --force`,
    );
  if (cfg.epochs < done)
    throw new ConfigError(
      `--resume ${dir}: --epochs ${cfg.epochs} is fewer than the ${done} epochs already completed`,
    );
  const plan = planRun(rc.command, dir, { resume: true });
  const data = await loadRunData(cfg, opts);
  // Read and check the checkpoint (CRC-32s, finite weights, the run's settings) and best.npz
  // before the folder is opened: a damaged one is refused with config.json and the manifest as they were.
  const preloaded = isOnnxSpec(cfg.backbone) ? undefined : readResumeFiles(dir, runIdentityOf(data, cfg));
  const folder = openRun(plan);
  try {
    opts.onRunFolder?.(folder.dir);
    writeJsonAtomic(folder.path('config'), { command: rc.command, ...cfg });
    return await stage1InFolder(cfg, data, folder, {
      ...opts,
      resume: true,
      ...(preloaded ? { preloaded } : {}),
    });
  } finally {
    folder.release();
  }
}

/** A finished stage-1 run, loaded for stage 2. The caller disposes `model`. */
export interface Stage1Run {
  dir: string;
  config: TrainConfig;
  data: LongTailDataset;
  model: Model;
  features: FeatureSet;
  summary: Stage1Summary | null;
  /** SHA-256 of its best.npz: the identity of the backbone stage-2 results record. */
  backboneSha256: string;
}

/**
 * Loads a finished stage-1 run: its validated configuration, data set, best model and features.
 * Refuses a run whose stage 1 has not finished (say how to finish it), a retrain run, and a run
 * another process is writing.
 */
export async function loadStage1Run(
  dir: string,
  cb: PipelineCallbacks = {},
  backboneFile?: string,
): Promise<Stage1Run> {
  const rc = readRunConfig(runFile(dir, 'config'));
  if (rc.command === 'retrain') {
    throw new ConfigError(
      `${dir}: is a retrain run (stage 2 only); give the stage-1 run it was made from${rc.config.run ? ` (${rc.config.run})` : ''}`,
    );
  }
  if (rc.command === 'study' || rc.command === 'seeds')
    throw new ConfigError(
      `${dir}: holds several runs (${rc.command}); give one of them (${dir}/${rc.command === 'study' ? '<sampler>' : 'seed-<n>'})`,
    );
  const config: TrainConfig = rc.config;
  assertNotLocked(dir);
  const p = stage1Progress(dir, config.epochs);
  if (!p.finished) {
    throw new ConfigError(
      `${dir}: stage 1 stopped after epoch ${p.done} of ${config.epochs}; finish it with \`longtail train --resume ${dir}\` first`,
    );
  }
  const best = backboneIdentityFile(dir, backboneFile);
  const backboneSha256 = fileSha256(best);
  const data = await loadRunData(config, cb);
  const model = loadStage1Model(dir, backboneFile);
  try {
    const featPath = runFile(dir, 'features');
    let features: FeatureSet;
    if (existsSync(featPath)) {
      features = loadFeatureFile(featPath, data.classNames);
      features.trainCounts = data.trainCounts;
    } else {
      cb.onPhase?.('extracting features (train, val, test)');
      features = featuresFromModel(model, data, cb.onFeatures);
    }
    if (fileSha256(best) !== backboneSha256)
      throw new DataError(
        `${best}: changed while it was being read (another run is writing ${dir}); try again`,
      );
    // stage1.json as stage1Progress read and validated it (runs written before 0.2 hold fractions).
    const summary = p.summary === null ? null : stage1InPercent(p.summary, p.summary.accuracyUnit);
    return { dir, config, data, model, features, summary, backboneSha256 };
  } catch (e) {
    disposeModel(model);
    throw e;
  }
}

export type { EpochRecord };
