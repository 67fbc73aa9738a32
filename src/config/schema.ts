/**
 * One schema per command for a run's configuration; the defaults live here and nowhere else
 * (`*_DEFAULTS` are the schemas applied to nothing). Resolution order: defaults < config file
 * (--config, YAML or JSON) < flags. The resolved configuration is written next to the results as
 * `config.json`, and read back by one function (`readRunConfig`), validated by the same schema.
 */
import { existsSync, readFileSync } from 'node:fs';
import { closest, distance } from 'fastest-levenshtein';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { DATASET_NAMES } from '../data/registry.ts';
import { ConfigError } from '../errors.ts';
import type { BackboneSpec } from '../models/backbone.ts';
import { BACKBONE_NAMES, isOnnxSpec, ONNX_PREFIX } from '../models/registry.ts';
import { SAMPLER_NAMES } from '../sampling/samplers.ts';

/**
 * Stage-1 losses: plain cross-entropy, balanced softmax (Ren et al., NeurIPS 2020: CE(z + log prior))
 * and the logit-adjusted loss (Menon et al., ICLR 2021: CE(z + tau log prior)); train/loss.ts.
 */
export const LOSS_NAMES = ['ce', 'balanced-softmax', 'logit-adjusted'] as const;
export type LossName = (typeof LOSS_NAMES)[number];

/**
 * The stage-2 methods' own settings (`crtEpochs`, `tau`, ...). Each method's schema lives on its
 * registry entry (classifiers/registry.ts), above config in the dependency order, so the registry
 * installs the check here when it loads; the stage-2 schemas below accept exactly those keys and
 * validate them by the method's schema (defaults are applied where the method is built).
 */
export interface MethodSettings {
  /** Every method setting's key. */
  keys(): string[];
  /** Problems of the method settings among `values` (other keys are ignored). */
  issues(values: Record<string, unknown>): { path: PropertyKey[]; message: string }[];
}

let methodSettings: MethodSettings | null = null;

export function installMethodSettings(m: MethodSettings): void {
  methodSettings = m;
}

/** `schema` that also accepts the method settings, each validated; any other key is unknown. */
function withMethodSettings<S extends z.ZodRawShape>(schema: z.ZodObject<S>) {
  return schema.catchall(z.unknown()).superRefine((v, ctx) => {
    const known = new Set([...Object.keys(schema.shape), ...(methodSettings?.keys() ?? [])]);
    const unknown = Object.keys(v).filter((k) => !known.has(k));
    if (unknown.length > 0) ctx.addIssue({ code: 'unrecognized_keys', keys: unknown, input: v });
    for (const i of methodSettings?.issues(v) ?? [])
      ctx.addIssue({ code: 'custom', path: i.path, message: i.message, input: v });
  });
}

const names = (list: readonly string[], what: string) =>
  z.string().refine((v) => list.includes(v), { message: `unknown ${what}; valid: ${list.join(', ')}` });

export const DataConfigSchema = z.object({
  dataset: names(DATASET_NAMES, 'dataset').default('fashion-mnist-lt'),
  dataDir: z.string().optional(),
  imbalance: z.number().min(1).optional(),
  maxPerClass: z.number().int().positive().optional(),
  valPerClass: z.number().int().min(0).optional(),
  subsetSeed: z.number().int().min(0).optional(),
  trainList: z.string().optional(),
  valList: z.string().optional(),
  testList: z.string().optional(),
  dataRoot: z.string().optional(),
  /** List files: a classes file (one name a line, in label order). */
  classes: z.string().optional(),
  /** Image folder without val/: seed of the validation images drawn from train/ (default 0). */
  valSeed: z.number().int().min(0).optional(),
  /** List files and image folders: the square side images are resized and cropped to. */
  imageSize: z.number().int().min(8).max(1024).optional(),
  download: z.boolean().optional(),
  manyThreshold: z.number().int().min(0).default(100),
  fewThreshold: z.number().int().min(0).default(20),
});

export type DataConfig = z.infer<typeof DataConfigSchema>;

const numberList = z
  .string()
  .regex(
    /^\s*-?[\d.e+-]+(\s*,\s*-?[\d.e+-]+)*\s*$/,
    'expected comma-separated numbers, e.g. 0.485,0.456,0.406',
  )
  .refine((v) => v.split(',').every((x) => Number.isFinite(Number(x))), 'expected comma-separated numbers');

export const TrainConfigSchema = DataConfigSchema.extend({
  /** A registry name, or `onnx:PATH` (a frozen ONNX feature extractor: `train` then only extracts features). */
  backbone: z
    .string()
    .refine((v) => BACKBONE_NAMES.includes(v as never) || (isOnnxSpec(v) && v.length > ONNX_PREFIX.length), {
      message: `unknown backbone; valid: ${BACKBONE_NAMES.join(', ')}, or ${ONNX_PREFIX}PATH`,
    })
    .default('resnet8'),
  /** ONNX backbone: the square side the model takes (default its fixed size, else the images'). */
  onnxInputSize: z.number().int().min(1).max(4096).optional(),
  onnxLayout: z.enum(['nchw', 'nhwc']).optional(),
  /** Per-channel mean and std subtracted / divided after scaling to [0, 1], comma-separated. */
  onnxMean: numberList.optional(),
  onnxStd: numberList.optional(),
  /** The feature output (default the first); 4-D outputs are average-pooled. */
  onnxOutput: z.string().min(1).optional(),
  /** Initializers of the model's final linear layer (the stage-1 classifier for Joint, tau-norm, LWS). */
  onnxFcWeight: z.string().min(1).optional(),
  onnxFcBias: z.string().min(1).optional(),
  sampler: names(SAMPLER_NAMES, 'sampler').default('instance-balanced'),
  samplerQ: z.number().min(0).max(1).optional(),
  epochs: z.number().int().positive().default(30),
  batchSize: z.number().int().positive().default(128),
  lr: z.number().positive().default(0.1),
  weightDecay: z.number().min(0).default(5e-4),
  momentum: z.number().min(0).lt(1).default(0.9),
  warmupEpochs: z.number().int().min(0).default(0),
  seed: z.number().int().min(0).default(0),
  augment: z.enum(['auto', 'crop-flip', 'resized-crop-flip', 'none']).default('auto'),
  /** Data-parallel training threads (and stage-2 class shards); default all cores. */
  threads: z.number().int().min(1).max(64).optional(),
  /** Stage-1 loss: cross-entropy, or CE(z + tau log prior) (docs/methods.md). */
  loss: z.enum(LOSS_NAMES).default('ce'),
  /** tau of the logit-adjusted stage-1 loss (balanced softmax is tau = 1). */
  lossTau: z.number().min(0).max(5).optional(),
});

export type TrainConfig = z.infer<typeof TrainConfigSchema>;

const list = (v: string | undefined) => (v === undefined ? undefined : v.split(',').map(Number));

/** The backbone a configuration names, with its options (the ONNX flags, and `threads` for onnxruntime). */
export function backboneSpec(cfg: TrainConfig): BackboneSpec {
  if (!isOnnxSpec(cfg.backbone)) return { name: cfg.backbone };
  const options = {
    path: cfg.backbone.slice(ONNX_PREFIX.length),
    inputSize: cfg.onnxInputSize,
    layout: cfg.onnxLayout,
    mean: list(cfg.onnxMean),
    std: list(cfg.onnxStd),
    output: cfg.onnxOutput,
    fcWeight: cfg.onnxFcWeight,
    fcBias: cfg.onnxFcBias,
    threads: cfg.threads,
  };
  return {
    name: 'onnx',
    options: Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)),
  };
}

/**
 * Stage 2: the methods, the settings every trained head shares, and each method's own settings,
 * which come from its registry entry (classifiers/registry.ts: `crtEpochs`, `tau`, `ncmFeatures`,
 * ...; `methodOptions` holds any method's settings by name, e.g. a registered one's).
 */
export const Stage2ConfigSchema = z.object({
  methods: z.string().default('all'),
  /** Any method's settings by its name, e.g. those of a method added with registerClassifier. */
  methodOptions: z.record(z.string(), z.record(z.string(), z.unknown())).optional(),
  stage2Lr: z.number().positive().optional(),
  /** Default: the stage-1 batch size. */
  stage2BatchSize: z.number().int().positive().optional(),
  samplesPerClass: z.number().int().positive().default(4),
  mode: z.enum(['auto', 'features', 'augmented']).default('auto'),
  /** Threads the cRT / LWS classes are split over; default all cores. */
  threads: z.number().int().min(1).max(64).optional(),
  /**
   * MiB of test logits report.html embeds for its live section (a stratified subsample of test
   * rows above it; 0: no live section).
   */
  liveMib: z.number().min(0).max(4096).default(8),
  /** Calibration of every method's scores: a temperature fitted on validation; default temperature when there is a validation split. */
  calibrate: z.enum(['none', 'temperature']).optional(),
});

export type Stage2Config = z.infer<typeof Stage2ConfigSchema>;

const PipelineShape = TrainConfigSchema.extend(Stage2ConfigSchema.shape);

/** The whole pipeline (demo): stage 1 and stage 2 settings in one file. */
export const PipelineConfigSchema = withMethodSettings(PipelineShape);
export type PipelineConfig = z.infer<typeof PipelineConfigSchema>;

/**
 * `retrain`: stage 2 on a run (`run`) or a feature file (`features`). The stage-1 settings cRT and
 * LWS follow (LR, weight decay, seed, batch size) come from the run, else from TRAIN_DEFAULTS;
 * given here, they override. Thresholds likewise default to the run's.
 */
export const RetrainConfigSchema = withMethodSettings(
  Stage2ConfigSchema.extend({
    run: z.string().optional(),
    features: z.string().optional(),
    lr: z.number().positive().optional(),
    weightDecay: z.number().min(0).optional(),
    seed: z.number().int().min(0).optional(),
    batchSize: z.number().int().positive().optional(),
    manyThreshold: z.number().int().min(0).optional(),
    fewThreshold: z.number().int().min(0).optional(),
  }),
);
export type RetrainConfig = z.infer<typeof RetrainConfigSchema>;

/** `study samplers`: the pipeline once per stage-1 sampler of the grid (the `sampler` setting is the grid's). */
export const StudyConfigSchema = withMethodSettings(
  PipelineShape.omit({ sampler: true, samplerQ: true }).extend({
    samplers: z.array(z.string()).min(1).optional(),
    /** Stage-1 losses of the grid (default: the `loss` setting alone). */
    losses: z.array(z.enum(LOSS_NAMES)).min(1).optional(),
    /** Seeds each cell of the grid runs with (default: the `seed` setting alone). */
    seeds: z.array(z.number().int().min(0)).min(1).optional(),
  }),
);
export type StudyConfig = z.infer<typeof StudyConfigSchema>;

export const TRAIN_DEFAULTS: TrainConfig = TrainConfigSchema.parse({});
export const STAGE2_DEFAULTS: Stage2Config = Stage2ConfigSchema.parse({});
export const PIPELINE_DEFAULTS: PipelineConfig = PipelineConfigSchema.parse({});

/** The schema of each command that writes a `config.json`, by the `command` it records. */
export const COMMAND_SCHEMAS = {
  train: TrainConfigSchema.strict(),
  demo: PipelineConfigSchema,
  retrain: RetrainConfigSchema,
  /** One run of a study's grid (a whole pipeline). */
  'study samplers': PipelineConfigSchema,
  /** `demo --seeds`: one run per seed in `seed-<n>/`, their summary beside them. */
  seeds: PipelineConfigSchema.extend({ seeds: z.array(z.number().int().min(0)).min(1) }),
  /** The study's own folder: the grid, its runs in subfolders. */
  study: StudyConfigSchema.strict(),
} as const;
export type RunCommand = keyof typeof COMMAND_SCHEMAS;

/** A run folder's `config.json`, validated by its command's schema. */
export type RunConfig =
  | { command: 'train' | 'demo' | 'study samplers'; config: TrainConfig & Partial<Stage2Config> }
  | { command: 'retrain'; config: RetrainConfig }
  | { command: 'study'; config: StudyConfig }
  | { command: 'seeds'; config: PipelineConfig & { seeds: number[] } };

/** Reads and validates a run folder's `config.json` (the one reader of it). */
export function readRunConfig(path: string): RunConfig {
  if (!existsSync(path)) throw new ConfigError(`${path}: no such file (not a longtail run folder)`);
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new ConfigError(`${path}: not valid JSON (${(e as Error).message.split('\n')[0]})`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    throw new ConfigError(`${path}: expected a JSON object of settings`);
  const { command, ...settings } = value as Record<string, unknown>;
  if (typeof command !== 'string' || !Object.hasOwn(COMMAND_SCHEMAS, command)) {
    throw new ConfigError(
      `${path}: 'command' must be one of ${Object.keys(COMMAND_SCHEMAS).join(', ')}, got ${JSON.stringify(command)}`,
    );
  }
  const schema = COMMAND_SCHEMAS[command as RunCommand];
  const config = resolveConfig(schema, [{ source: path, values: settings }]);
  return { command, config } as RunConfig;
}

/** Reads a YAML or JSON config file into a plain object. */
export function readConfigFile(path: string): Record<string, unknown> {
  if (!existsSync(path)) throw new ConfigError(`--config ${path}: no such file`);
  const text = readFileSync(path, 'utf8');
  let value: unknown;
  try {
    value = path.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
  } catch (e) {
    throw new ConfigError(
      `${path}: not valid ${path.endsWith('.json') ? 'JSON' : 'YAML'} (${(e as Error).message.split('\n')[0]})`,
    );
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new ConfigError(
      `${path}: expected a mapping of settings (e.g. 'epochs: 30'), got ${Array.isArray(value) ? 'a list' : typeof value}`,
    );
  }
  return value as Record<string, unknown>;
}

/** Validates merged settings against a schema; errors name the field and the source. */
export function resolveConfig<S extends z.ZodType>(
  schema: S,
  layers: { source: string; values: Record<string, unknown> }[],
): z.infer<S> {
  const merged: Record<string, unknown> = {};
  for (const l of layers) for (const [k, v] of Object.entries(l.values)) if (v !== undefined) merged[k] = v;
  const r = schema.safeParse(merged);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    const field = issue.path.join('.') || '(config)';
    if (issue.code === 'unrecognized_keys') {
      const keys = (issue as { keys: string[] }).keys;
      const from = [...layers].reverse().find((l) => keys.some((k) => l.values[k] !== undefined))?.source;
      const valid = Object.keys(knownKeys(schema));
      const hints = keys.map((k) => {
        const near = valid.length > 0 ? closest(k, valid) : undefined;
        return near !== undefined && similar(k, near) ? `${k} (did you mean ${near}?)` : k;
      });
      throw new ConfigError(
        `${from ?? '(config)'}: unknown setting(s) ${hints.join(', ')}; settings are the flags in camelCase, e.g. ${valid.slice(0, 6).join(', ')}`,
      );
    }
    const from =
      [...layers].reverse().find((l) => l.values[String(issue.path[0])] !== undefined)?.source ?? 'defaults';
    const got = merged[String(issue.path[0])];
    throw new ConfigError(
      `${field}: ${issue.message}${got !== undefined ? ` (got ${JSON.stringify(got)} from ${from})` : ` (in ${from})`}`,
    );
  }
  return r.data;
}

/** The keys an object schema accepts (for hints). */
function knownKeys(schema: z.ZodType): Record<string, unknown> {
  const shape = (schema as unknown as { shape?: Record<string, unknown> }).shape ?? {};
  const stage2 = 'methods' in shape ? (methodSettings?.keys() ?? []) : [];
  return { ...shape, ...Object.fromEntries(stage2.map((k) => [k, true])) };
}

/** Close enough to be a typo: a few letters apart (case ignored). */
function similar(a: string, b: string): boolean {
  return distance(a.toLowerCase(), b.toLowerCase()) <= Math.max(2, Math.floor(a.length / 3));
}
