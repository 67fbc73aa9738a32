import os from 'node:os';
import { basename, resolve } from 'node:path';
import { type MethodName, methodEntry, methodOptions, parseMethods } from '../classifiers/registry.ts';
import type { Stage2Context } from '../classifiers/types.ts';
import {
  type PipelineConfig,
  pipelineConfigSchema,
  type RetrainConfig,
  retrainConfigSchema,
  type Stage2Config,
  TRAIN_DEFAULTS,
  type TrainConfig,
} from '../config/schema.ts';
import type { LongTailDataset } from '../data/types.ts';
import { saveFolded } from '../deploy/folded.ts';
import { ConfigError } from '../errors.ts';
import { checkShotThresholds, type ShotThresholds, shotSplits } from '../eval/shot-splits.ts';
import { type FeatureSet, loadFeatureFile } from '../features/feature-set.ts';
import { backboneIdentityFile, fileSha256, planRun, type RunFolder, runFile } from '../io/run-folder.ts';
import { disposeModel, type Model } from '../models/model.ts';
import { type RunResults, RunResultsSchema } from '../report/results.ts';
import { writeReport } from '../report/write.ts';
import { parseOnce } from '../settings.ts';
import { resolveAugmentation } from '../train/joint.ts';
import { environment, type PipelineCallbacks } from './callbacks.ts';
import { augmentedSource } from './features-from-model.ts';
import { liveReportData } from './live-report-data.ts';
import { checkModelFits, inRunFolder, loadRunData, withThreads } from './run-setup.ts';
import { loadStage1Run, type Stage1Summary, stage1InFolder } from './stage1.ts';

export { loadStage1Run, type Stage1Run } from './stage1.ts';

import { defaultCalibrate, runStage2 } from './stage2.ts';

export type { PipelineCallbacks } from './callbacks.ts';

/** Everything stage 2 and its report need; built by the pipeline functions below, never by callers. */
interface Stage2Input {
  command: string;
  /** What results.json records as the configuration. */
  config: Record<string, unknown>;
  features: FeatureSet;
  /** The stage-1 model and data, for the augmented mode (the official way); absent for a feature file. */
  model?: Model;
  data?: LongTailDataset;
  /** The stage-1 settings stage 2 follows (LR, weight decay, seed, batch size, augmentation). */
  train: TrainConfig;
  thresholds: ShotThresholds;
  datasetName: string;
  source: string;
  stage1: Stage1Summary | null;
  /** The stage-1 run these classifiers sit on (for predict / export); null for a feature file. */
  stage1Run: { dir: string; backboneSha256: string } | null;
  seconds: { stage1: number; features: number; start: number };
  warnings: string[];
}

interface Stage2Plan {
  methods: MethodName[];
  mode: 'features' | 'augmented';
  /** Each method's options, parsed once by its schema (defaults applied). */
  options: Map<MethodName, Record<string, unknown>>;
}

/** Stage 2's settings, with the class-aware sampler's own (a stage-1 setting in a demo, retrain's own). */
type Stage2Settings = Stage2Config & { classAwarePerClass?: number | undefined };

/** Checks the stage-2 settings against what the input offers, before anything is written. */
function planStage2(
  s2: Stage2Settings,
  hasModel: boolean,
  fs: FeatureSet,
  warn: (m: string) => void,
): Stage2Plan {
  let methods = parseMethods(s2.methods);
  if (!fs.classifier) {
    const missing = methods.filter((m) => methodEntry(m).needsClassifier);
    if (missing.length > 0 && s2.methods !== 'all')
      throw new ConfigError(
        `${missing.join(', ')} ${missing.length > 1 ? 'need' : 'needs'} the stage-1 classifier (classifier_weight and classifier_bias in the feature file), which these features do not have`,
      );
    // "all" means all that apply.
    if (missing.length > 0) {
      methods = methods.filter((m) => !missing.includes(m));
      warn(
        `no stage-1 classifier (classifier_weight / classifier_bias) in the features: skipping ${missing.join(', ')}`,
      );
    }
  }
  // Each method's own settings, parsed by its schema once, before anything is written.
  const options = new Map(methods.map((m) => [m, methodOptions(methodEntry(m), s2)]));
  if (s2.mode === 'augmented' && !hasModel)
    throw new ConfigError('--mode augmented needs a stage-1 run (--run), not a feature file');
  const mode = s2.mode === 'auto' ? (hasModel ? 'augmented' : 'features') : s2.mode;
  return { methods, mode, options };
}

/**
 * Refuses a stage-2 batch larger than the training set before any folder is touched (the head's
 * own check comes only after stage 1, when --force has already replaced the old run).
 */
function checkStage2Batch(
  methods: readonly MethodName[],
  train: TrainConfig,
  s2: Stage2Settings,
  n: number,
): void {
  const batch = headSettings(train, s2).batchSize;
  const trained = methods.find((m) => methodEntry(m).trains);
  if (trained !== undefined && batch > n)
    throw new ConfigError(
      `${trained}: batch size ${batch} is larger than the ${n} training images (set --stage2-batch-size)`,
    );
}

/** The settings every trained head follows unless its own options say otherwise. */
function headSettings(train: TrainConfig, s2: Stage2Settings) {
  const perClass = s2.classAwarePerClass ?? train.classAwarePerClass;
  return {
    batchSize: s2.stage2BatchSize ?? train.batchSize,
    lr: s2.stage2Lr ?? train.lr,
    weightDecay: train.weightDecay,
    ...(perClass !== undefined ? { classAwarePerClass: perClass } : {}),
    seed: train.seed,
  };
}

/** Stage 2 and the report into an open run folder. */
async function stage2AndReport(
  input: Stage2Input,
  s2: Stage2Settings,
  plan: Stage2Plan,
  folder: RunFolder,
  cb: PipelineCallbacks,
): Promise<RunResults> {
  const warnings = input.warnings;
  const warn = (m: string) => {
    warnings.push(m);
    cb.warn?.(m);
  };
  const ctx: Stage2Context = {
    features: input.features,
    seed: input.train.seed,
    threads: s2.threads ?? os.availableParallelism(),
    head: headSettings(input.train, s2),
    thresholds: input.thresholds,
    warn,
    onProgress: cb.onStage2Progress,
  };
  if (plan.mode === 'augmented' && input.model && input.data) {
    const aug = resolveAugmentation(input.train.augment, input.data.train.height);
    ctx.source = augmentedSource(input.model, input.data, aug, input.train.seed);
  }
  cb.onPhase?.(
    `stage 2: ${plan.methods.join(', ')} (${plan.mode === 'augmented' ? 'through the frozen backbone, augmented' : 'on cached features'})`,
  );
  const t2 = performance.now();
  const { results, classifiers, calibrations } = runStage2(ctx, plan.methods, {
    options: plan.options,
    thresholds: input.thresholds,
    ...(s2.calibrate ? { calibrate: s2.calibrate } : {}),
    ...(cb.onMethod ? { onMethod: cb.onMethod } : {}),
  });
  if (
    (s2.calibrate ?? defaultCalibrate(input.features.val?.labels.length ?? 0, input.features.numClasses)) ===
    'none'
  )
    warn(
      s2.calibrate === 'none'
        ? "calibration off (--calibrate none): ECE and the prior corrections use raw scores; NCM's are not applicable"
        : "calibration off: no validation split to fit a temperature on; NCM's ECE and prior corrections are not applicable",
    );
  const stage2 = (performance.now() - t2) / 1000;
  const fs = input.features;
  // Nothing past stage 2 reads the training features (the report evaluates test rows only), and
  // writing the report is the run's largest runtime (charts): let them go first. The FeatureSet
  // is this run's own (loaded or extracted by the functions below).
  fs.train = { features: new Float32Array(0), labels: fs.train.labels };
  const run: RunResults = {
    schemaVersion: 2,
    tool: 'longtail',
    command: input.command,
    createdAt: new Date().toISOString(),
    dataset: {
      name: input.datasetName,
      classNames: fs.classNames,
      trainCounts: fs.trainCounts,
      valSize: fs.val?.labels.length ?? 0,
      testSize: fs.test.labels.length,
      splits: shotSplits(fs.trainCounts, input.thresholds),
      thresholds: input.thresholds,
      source: input.source,
      ...(input.data ? { profile: { ...input.data.profile } } : {}),
    },
    // With each method's settings as it ran them (its defaults included).
    config: {
      ...input.config,
      ...s2,
      ...Object.assign({}, ...plan.options.values()),
      mode: plan.mode,
    },
    environment: environment(),
    stage1: input.stage1,
    methods: results,
    warnings,
    seconds: {
      total: (performance.now() - input.seconds.start) / 1000,
      stage1: input.seconds.stage1,
      features: input.seconds.features,
      stage2,
    },
  };
  RunResultsSchema.parse(run);
  saveFolded(folder.dir, classifiers, {
    stage1Run: input.stage1Run?.dir ?? null,
    backboneSha256: input.stage1Run?.backboneSha256 ?? null,
    classNames: fs.classNames,
    dim: fs.dim,
    trainCounts: fs.trainCounts,
    calibrations,
  });
  await writeReport(folder.dir, run, {
    ...cb,
    live: liveReportData(fs, classifiers, results, input.thresholds, {
      budgetBytes: s2.liveMib * 2 ** 20,
      calibrations,
    }),
  });
  return run;
}

const thresholdsOf = (c: { manyThreshold?: number; fewThreshold?: number }, base = TRAIN_DEFAULTS) => ({
  many: c.manyThreshold ?? base.manyThreshold,
  few: c.fewThreshold ?? base.fewThreshold,
});

/**
 * The whole study (`longtail demo`): stage 1, then every asked stage-2 method, then the report,
 * in a new run folder `out` (default `runs/demo-<time>`; an existing non-empty folder only with
 * `force`). The folder is reported through `onRunFolder` once it is opened.
 */
export async function runPipeline(
  cfg: PipelineConfig,
  out?: string,
  opts: { command?: string; force?: boolean } & PipelineCallbacks = {},
): Promise<RunResults> {
  const start = performance.now();
  const command = opts.command ?? 'demo';
  cfg = withThreads(parseOnce(pipelineConfigSchema(), cfg, 'the pipeline configuration'));
  parseMethods(cfg.methods);
  const plan = planRun(command, out, opts);
  const data = await loadRunData(cfg, opts);
  checkModelFits(cfg, data);
  checkStage2Batch(parseMethods(cfg.methods), cfg, cfg, data.train.labels.length);
  const warnings: string[] = [];
  const warn = (m: string) => {
    warnings.push(m);
    opts.warn?.(m);
  };
  return inRunFolder(plan, { command, ...cfg }, opts, async (folder) => {
    const s1 = await stage1InFolder(cfg, data, folder, { ...opts, warn });
    try {
      const s2plan = planStage2(cfg, true, s1.features, warn);
      return await stage2AndReport(
        {
          command,
          config: cfg,
          features: s1.features,
          model: s1.model,
          data,
          train: cfg,
          thresholds: thresholdsOf(cfg),
          datasetName: data.name,
          source: data.source,
          stage1: s1.summary,
          stage1Run: { dir: folder.dir, backboneSha256: fileSha256(backboneIdentityFile(folder.dir)) },
          seconds: { ...s1.seconds, start },
          warnings,
        },
        cfg,
        s2plan,
        folder,
        opts,
      );
    } finally {
      disposeModel(s1.model);
    }
  });
}

/**
 * `longtail retrain`: stage 2 and its report on a finished stage-1 run (`cfg.run`) or a feature
 * file (`cfg.features`). Results go to `out`, by default `<run>/stage2` (so predict and export on
 * the run find them) or `runs/retrain-<time>` for a feature file. cRT and LWS follow the run's
 * stage-1 settings (LR, weight decay, seed, batch size; TRAIN_DEFAULTS for a feature file)
 * unless `cfg` sets them.
 */
export async function retrain(
  cfg: RetrainConfig,
  opts: { out?: string; force?: boolean; backboneFile?: string } & PipelineCallbacks = {},
): Promise<RunResults> {
  const start = performance.now();
  cfg = parseOnce(retrainConfigSchema(), cfg, 'the retrain configuration');
  if ((cfg.run === undefined) === (cfg.features === undefined))
    throw new ConfigError('retrain needs exactly one of --run RUN or --features FILE_OR_DIR');
  if (opts.backboneFile !== undefined && cfg.run === undefined)
    throw new ConfigError('--backbone-file goes with --run (an ONNX-backbone run whose model has moved)');
  parseMethods(cfg.methods);
  const overrides: Partial<TrainConfig> = {
    ...(cfg.lr !== undefined ? { lr: cfg.lr } : {}),
    ...(cfg.weightDecay !== undefined ? { weightDecay: cfg.weightDecay } : {}),
    ...(cfg.seed !== undefined ? { seed: cfg.seed } : {}),
    ...(cfg.batchSize !== undefined ? { batchSize: cfg.batchSize } : {}),
  };
  const warnings: string[] = [];
  const warn = (m: string) => {
    warnings.push(m);
    opts.warn?.(m);
  };
  if (cfg.run !== undefined) {
    if (opts.out !== undefined && resolve(opts.out) === resolve(cfg.run))
      throw new ConfigError(
        `--out ${opts.out}: is the stage-1 run itself; retrain writes next to it (default ${runFile(cfg.run, 'stage2')})`,
      );
    // Writing X/stage2 holds X's lock too: a new train --force X waits its turn (and vice versa).
    const plan = planRun('retrain', opts.out ?? runFile(cfg.run, 'stage2'), {
      ...opts,
      ...(opts.out === undefined ? { within: cfg.run } : {}),
    });
    const r = await loadStage1Run(cfg.run, opts, opts.backboneFile);
    try {
      const s2plan = planStage2(cfg, true, r.features, warn);
      checkStage2Batch(s2plan.methods, { ...r.config, ...overrides }, cfg, r.features.train.labels.length);
      checkShotThresholds(thresholdsOf(cfg, { ...TRAIN_DEFAULTS, ...r.config }));
      return await inRunFolder(plan, { command: 'retrain', ...cfg }, opts, (folder) =>
        stage2AndReport(
          {
            command: 'retrain',
            config: { ...r.config, ...cfg },
            features: r.features,
            model: r.model,
            data: r.data,
            train: { ...r.config, ...overrides },
            thresholds: thresholdsOf(cfg, { ...TRAIN_DEFAULTS, ...r.config }),
            datasetName: r.data.name,
            source: r.data.source,
            stage1: r.summary,
            stage1Run: { dir: r.dir, backboneSha256: r.backboneSha256 },
            seconds: { stage1: r.summary?.seconds ?? 0, features: 0, start },
            warnings,
          },
          cfg,
          s2plan,
          folder,
          opts,
        ),
      );
    } finally {
      disposeModel(r.model);
    }
  }
  const path = cfg.features!;
  const plan = planRun('retrain', opts.out, opts);
  opts.onPhase?.(`reading ${path}`);
  // Validation and test stay in the file and are evaluated by blocks of rows (peak memory).
  const features = loadFeatureFile(path, undefined, { evalInFile: true });
  const s2plan = planStage2(cfg, false, features, warn);
  checkStage2Batch(s2plan.methods, { ...TRAIN_DEFAULTS, ...overrides }, cfg, features.train.labels.length);
  checkShotThresholds(thresholdsOf(cfg));
  return inRunFolder(plan, { command: 'retrain', ...cfg }, opts, (folder) =>
    stage2AndReport(
      {
        command: 'retrain',
        config: cfg,
        features,
        train: { ...TRAIN_DEFAULTS, ...overrides },
        thresholds: thresholdsOf(cfg),
        datasetName: basename(path),
        source: path,
        stage1: null,
        stage1Run: null,
        seconds: { stage1: 0, features: 0, start },
        warnings,
      },
      cfg,
      s2plan,
      folder,
      opts,
    ),
  );
}
