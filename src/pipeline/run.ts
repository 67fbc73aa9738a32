/**
 * The decoupled pipeline end to end, shared by the CLI commands and the library API:
 * data -> stage 1 (joint training) -> features -> stage 2 (joint, NCM, cRT, tau-norm, LWS)
 * -> results.json, results.md, charts, report.html.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { backendInfo } from '../backend/backend.ts';
import { type MethodName, parseMethods } from '../classifiers/registry.ts';
import type { Stage2Context } from '../classifiers/types.ts';
import type { DataConfig, PipelineConfig, Stage2Config, TrainConfig } from '../config/schema.ts';
import { loadDataset } from '../data/registry.ts';
import type { LongTailDataset } from '../data/types.ts';
import { saveFolded } from '../deploy/folded.ts';
import { ConfigError, DataError } from '../errors.ts';
import { shotSplits } from '../eval/shot-splits.ts';
import { type FeatureSet, loadFeatureFile, saveFeatureFile } from '../features/feature-set.ts';
import { writeFileAtomic, writeJsonAtomic } from '../io/atomic.ts';
import { createModel, disposeModel, loadModelArrays, type Model } from '../models/model.ts';
import { allCharts } from '../report/charts.ts';
import { reportHtml } from '../report/html.ts';
import { resultsMarkdown } from '../report/markdown.ts';
import { writeChart } from '../report/render.ts';
import { type RunResults, RunResultsSchema } from '../report/results.ts';
import { loadCheckpoint } from '../train/checkpoint.ts';
import {
  type EpochRecord,
  type JointConfig,
  resolveAugmentation,
  type StepInfo,
  trainJoint,
} from '../train/joint.ts';
import { augmentedSource, featuresFromModel } from './features.ts';
import { type MethodResult, runStage2 } from './stage2.ts';

export interface PipelineCallbacks {
  /** A phase starts ("loading data", "stage 1", ...). */
  onPhase?: (name: string) => void;
  onStep?: (s: StepInfo, epochs: number) => void;
  onEpoch?: (r: EpochRecord, epochs: number) => void;
  onFeatures?: (split: string, done: number, total: number) => void;
  onStage2Progress?: (method: string, done: number, total: number) => void;
  onMethod?: (r: MethodResult) => void;
  warn?: (message: string) => void;
}

export function environment(): RunResults['environment'] {
  const b = backendInfo();
  return {
    backend: b.name + (b.simd ? ' (SIMD)' : '') + (b.trainingKernels === 'native' ? ' + native kernels' : ''),
    tfjs: b.tfjsVersion,
    node: process.versions.node,
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model?.trim() ?? 'unknown',
    platform: `${os.platform()} ${os.arch()}`,
  };
}

export async function loadRunData(cfg: DataConfig, cb: PipelineCallbacks = {}): Promise<LongTailDataset> {
  cb.onPhase?.(`loading ${cfg.dataset}`);
  return loadDataset(cfg.dataset, {
    ...(cfg.dataDir !== undefined ? { dataDir: cfg.dataDir } : {}),
    ...(cfg.imbalance !== undefined ? { imbalance: cfg.imbalance } : {}),
    ...(cfg.maxPerClass !== undefined ? { maxPerClass: cfg.maxPerClass } : {}),
    ...(cfg.valPerClass !== undefined ? { valPerClass: cfg.valPerClass } : {}),
    ...(cfg.subsetSeed !== undefined ? { subsetSeed: cfg.subsetSeed } : {}),
    ...(cfg.trainList !== undefined ? { trainList: cfg.trainList } : {}),
    ...(cfg.valList !== undefined ? { valList: cfg.valList } : {}),
    ...(cfg.testList !== undefined ? { testList: cfg.testList } : {}),
    ...(cfg.dataRoot !== undefined ? { dataRoot: cfg.dataRoot } : {}),
    ...(cfg.imageSize !== undefined ? { imageSize: cfg.imageSize } : {}),
    ...(cfg.download ? { download: true } : {}),
    onProgress: (d, t) => cb.onFeatures?.('decoding images', d, t),
  });
}

/** The thread count made explicit (all cores unless set), so the saved configuration says it. */
function withThreads<T extends TrainConfig>(cfg: T): T {
  return { ...cfg, threads: cfg.threads ?? os.availableParallelism() };
}

export function jointConfigOf(cfg: TrainConfig): JointConfig {
  return {
    backbone: cfg.backbone,
    sampler: cfg.sampler,
    ...(cfg.samplerQ !== undefined ? { samplerQ: cfg.samplerQ } : {}),
    epochs: cfg.epochs,
    batchSize: cfg.batchSize,
    lr: cfg.lr,
    weightDecay: cfg.weightDecay,
    momentum: cfg.momentum,
    warmupEpochs: cfg.warmupEpochs,
    seed: cfg.seed,
    augment: cfg.augment,
    threads: cfg.threads ?? os.availableParallelism(),
  };
}

function datasetInfo(
  fs: FeatureSet,
  name: string,
  source: string,
  thresholds: { many: number; few: number },
): RunResults['dataset'] {
  return {
    name,
    classNames: fs.classNames,
    trainCounts: fs.trainCounts,
    valSize: fs.val?.labels.length ?? 0,
    testSize: fs.test.labels.length,
    splits: shotSplits(fs.trainCounts, thresholds),
    thresholds,
    source,
  };
}

export interface Stage1Output {
  data: LongTailDataset;
  model: Model;
  features: FeatureSet;
  history: EpochRecord[];
  bestEpoch: number;
  bestValAcc: number | null;
  seconds: { stage1: number; features: number };
}

/** Stage 1 into `outDir`: checkpoints, epochs.jsonl, config.json, features.npz. */
export async function runStage1(
  cfg: TrainConfig,
  outDir: string,
  opts: { resume?: boolean } & PipelineCallbacks = {},
): Promise<Stage1Output> {
  cfg = withThreads(cfg);
  mkdirSync(outDir, { recursive: true });
  const data = await loadRunData(cfg, opts);
  if (data.val === null)
    opts.warn?.(`${data.name} has no validation set: the last epoch is kept and tau falls back to 1`);
  writeJsonAtomic(join(outDir, 'config.json'), { command: 'train', ...cfg });
  opts.onPhase?.(
    `stage 1: ${cfg.backbone}, ${cfg.samplerQ !== undefined ? `q = ${cfg.samplerQ}` : cfg.sampler}, ${cfg.epochs} epochs`,
  );
  const t0 = performance.now();
  const r = await trainJoint(data, jointConfigOf(cfg), {
    runDir: outDir,
    ...(opts.resume ? { resume: true } : {}),
    onStep: (s) => opts.onStep?.(s, cfg.epochs),
    onEpoch: (e) => opts.onEpoch?.(e, cfg.epochs),
  });
  const stage1 = (performance.now() - t0) / 1000;
  opts.onPhase?.('extracting features (train, val, test)');
  const t1 = performance.now();
  const features = featuresFromModel(r.model, data, opts.onFeatures);
  saveFeatureFile(join(outDir, 'features.npz'), features);
  writeJsonAtomic(join(outDir, 'stage1.json'), {
    history: r.history,
    bestEpoch: r.bestEpoch,
    bestValAcc: r.bestValAcc,
    seconds: stage1,
  });
  return {
    data,
    model: r.model,
    features,
    history: r.history,
    bestEpoch: r.bestEpoch,
    bestValAcc: r.bestValAcc,
    seconds: { stage1, features: (performance.now() - t1) / 1000 },
  };
}

function stage2Options(
  s2: Stage2Config,
  cfg: { lr?: number; weightDecay?: number; seed?: number; batchSize?: number },
  warn?: (m: string) => void,
) {
  const common = {
    batchSize: s2.stage2BatchSize ?? cfg.batchSize ?? 128,
    lr: s2.stage2Lr ?? cfg.lr ?? 0.1,
    weightDecay: cfg.weightDecay ?? 5e-4,
    samplesPerClass: s2.samplesPerClass,
    seed: cfg.seed ?? 0,
  };
  return {
    crt: { ...common, epochs: s2.crtEpochs },
    lws: { ...common, epochs: s2.lwsEpochs },
    tauNorm: { ...(s2.tau !== undefined ? { tau: s2.tau } : {}), ...(warn ? { warn } : {}) },
    ncm: { featureType: s2.ncmFeatures, distance: s2.ncmDistance },
  };
}

export interface Stage2RunInput {
  features: FeatureSet;
  /** The stage-1 model and data, for the augmented mode (the official way); absent for a feature file. */
  model?: Model;
  data?: LongTailDataset;
  /** Stage-1 settings the stage-2 defaults follow (LR, weight decay, seed, augmentation). */
  train?: Partial<TrainConfig>;
}

/** Stage 2 and the report into `outDir`. */
export async function runStage2AndReport(
  input: Stage2RunInput,
  s2: Stage2Config,
  outDir: string,
  meta: {
    command: string;
    config: Record<string, unknown>;
    datasetName: string;
    source: string;
    thresholds: { many: number; few: number };
    stage1: RunResults['stage1'];
    seconds: { stage1: number; features: number; start: number };
    warnings?: string[];
    /** Folder of the stage-1 model these classifiers sit on (for predict / export); null for a feature file. */
    stage1Run: string | null;
  },
  cb: PipelineCallbacks = {},
): Promise<RunResults> {
  mkdirSync(outDir, { recursive: true });
  const warnings = [...(meta.warnings ?? [])];
  const warn = (m: string) => {
    warnings.push(m);
    cb.warn?.(m);
  };
  let methods: MethodName[] = parseMethods(s2.methods);
  if (s2.methods === 'all' && !input.features.classifier) {
    // "all" means all that apply: without the stage-1 classifier only NCM and cRT can run.
    const skipped: MethodName[] = methods.filter((m) => m === 'joint' || m === 'tau-norm' || m === 'lws');
    methods = methods.filter((m) => !skipped.includes(m));
    warn(
      `no stage-1 classifier (classifier_weight / classifier_bias) in the features: skipping ${skipped.join(', ')}`,
    );
  }
  let mode = s2.mode;
  if (mode === 'augmented' && !input.model)
    throw new ConfigError('--mode augmented needs a stage-1 run (--run), not a feature file');
  if (mode === 'auto') mode = input.model ? 'augmented' : 'features';
  const ctx: Stage2Context = {
    features: input.features,
    seed: input.train?.seed ?? 0,
    threads: s2.threads ?? os.availableParallelism(),
    onProgress: cb.onStage2Progress,
  };
  if (mode === 'augmented' && input.model && input.data) {
    const aug = resolveAugmentation(input.train?.augment ?? 'auto', input.data.train.height);
    ctx.source = augmentedSource(input.model, input.data, aug, input.train?.seed ?? 0);
  }
  cb.onPhase?.(
    `stage 2: ${methods.join(', ')} (${mode === 'augmented' ? 'through the frozen backbone, augmented' : 'on cached features'})`,
  );
  const t2 = performance.now();
  const { results, classifiers } = runStage2(ctx, methods, {
    ...stage2Options(s2, input.train ?? {}, warn),
    thresholds: meta.thresholds,
    ...(cb.onMethod ? { onMethod: cb.onMethod } : {}),
  });
  const stage2 = (performance.now() - t2) / 1000;
  const run: RunResults = {
    schemaVersion: 1,
    tool: 'longtail',
    command: meta.command,
    createdAt: new Date().toISOString(),
    dataset: datasetInfo(input.features, meta.datasetName, meta.source, meta.thresholds),
    config: { ...meta.config, ...s2, mode },
    environment: environment(),
    stage1: meta.stage1,
    methods: results,
    warnings,
    seconds: {
      total: (performance.now() - meta.seconds.start) / 1000,
      stage1: meta.seconds.stage1,
      features: meta.seconds.features,
      stage2,
    },
  };
  RunResultsSchema.parse(run);
  saveFolded(outDir, classifiers, {
    stage1Run: meta.stage1Run,
    classNames: input.features.classNames,
    dim: input.features.dim,
  });
  await writeReport(outDir, run, cb);
  return run;
}

/** results.json, results.md, charts (SVG, PNG, spec) and report.html. */
export async function writeReport(
  outDir: string,
  run: RunResults,
  cb: PipelineCallbacks = {},
): Promise<void> {
  cb.onPhase?.(`writing the report to ${outDir}`);
  writeJsonAtomic(join(outDir, 'results.json'), run);
  const charts = allCharts(run);
  const rendered: { name: string; svg: string }[] = [];
  mkdirSync(join(outDir, 'charts'), { recursive: true });
  for (const [name, spec] of Object.entries(charts)) {
    const files = await writeChart(join(outDir, 'charts', name), spec);
    rendered.push({ name, svg: readFileSync(files.svg, 'utf8') });
  }
  writeFileAtomic(
    join(outDir, 'results.md'),
    resultsMarkdown(
      run,
      Object.keys(charts).map((c) => `charts/${c}`),
    ),
  );
  writeFileAtomic(join(outDir, 'report.html'), reportHtml(run, rendered));
}

/** The whole study: stage 1, then every asked stage-2 method, then the report. */
export async function runPipeline(
  cfg: PipelineConfig,
  outDir: string,
  opts: { command?: string; resume?: boolean } & PipelineCallbacks = {},
): Promise<RunResults> {
  const start = performance.now();
  cfg = withThreads(cfg);
  const warnings: string[] = [];
  const s1 = await runStage1(cfg, outDir, {
    ...opts,
    warn: (m) => {
      warnings.push(m);
      opts.warn?.(m);
    },
  });
  try {
    writeJsonAtomic(join(outDir, 'config.json'), { command: opts.command ?? 'demo', ...cfg });
    return await runStage2AndReport(
      { features: s1.features, model: s1.model, data: s1.data, train: cfg },
      cfg,
      outDir,
      {
        command: opts.command ?? 'demo',
        config: cfg,
        datasetName: s1.data.name,
        source: s1.data.source,
        thresholds: { many: cfg.manyThreshold, few: cfg.fewThreshold },
        stage1: {
          history: s1.history,
          bestEpoch: s1.bestEpoch,
          bestValAcc: s1.bestValAcc,
          seconds: s1.seconds.stage1,
        },
        seconds: { ...s1.seconds, start },
        warnings,
        stage1Run: outDir,
      },
      opts,
    );
  } finally {
    disposeModel(s1.model);
  }
}

/** Loads a finished stage-1 run: its configuration, data set and best model. */
export async function loadStage1Run(runDir: string, cb: PipelineCallbacks = {}) {
  const cfgPath = join(runDir, 'config.json');
  if (!existsSync(cfgPath)) throw new DataError(`${runDir}: not a longtail run folder (no config.json)`);
  const cfg = JSON.parse(readFileSync(cfgPath, 'utf8')) as TrainConfig;
  const bestPath = join(runDir, 'best.npz');
  if (!existsSync(bestPath))
    throw new DataError(`${runDir}: stage 1 has not finished an epoch (no best.npz)`);
  const ck = loadCheckpoint(bestPath);
  const data = await loadRunData(cfg, cb);
  const model = createModel(ck.meta.backbone, ck.meta.inputShape, ck.meta.numClasses, cfg.seed ?? 0);
  loadModelArrays(model, ck.weights, bestPath);
  const featPath = join(runDir, 'features.npz');
  let features: FeatureSet;
  if (existsSync(featPath)) {
    features = loadFeatureFile(featPath, data.classNames);
    features.trainCounts = data.trainCounts;
  } else {
    cb.onPhase?.('extracting features (train, val, test)');
    features = featuresFromModel(model, data, cb.onFeatures);
  }
  const s1Path = join(runDir, 'stage1.json');
  const stage1 = existsSync(s1Path)
    ? (JSON.parse(readFileSync(s1Path, 'utf8')) as RunResults['stage1'])
    : null;
  return { cfg, data, model, features, stage1 };
}
