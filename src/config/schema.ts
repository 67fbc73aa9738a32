/**
 * One schema per command for a run's configuration; the defaults live here and nowhere else
 * (`*_DEFAULTS` are the schemas applied to nothing). Resolution order: defaults < config file
 * (--config, YAML or JSON) < flags. The resolved configuration is written next to the results as
 * `config.json`, and read back by one function (`readRunConfig`), validated by the same schema.
 */
import { existsSync, readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { DATASET_NAMES, DATASET_SETTINGS } from '../data/registry.ts';
import { ConfigError } from '../errors.ts';
import { BACKBONE_NAMES, backboneSettings, isOnnxSpec, ONNX_PREFIX } from '../models/registry.ts';
import { nearestName, type RuleIssue, ruleOf } from '../registry.ts';
import { SAMPLER_NAMES, samplerSettings } from '../sampling/samplers.ts';

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

/** A setting's help line (`--help`), and the default the help shows when a loader, not the schema, has it. */
const help = (description: string, shownDefault?: string) =>
  shownDefault === undefined ? { description } : { description, shownDefault };

/** A name from a registry; an unknown one is refused with the nearest as a "did you mean". */
const names = (list: readonly string[], what: string) =>
  z.string().superRefine((v, ctx) => {
    if (list.includes(v)) return;
    const near = nearestName(v, list);
    ctx.addIssue({
      code: 'custom',
      message: `unknown ${what}${near === undefined ? '' : ` (did you mean ${near}?)`}; valid: ${list.join(', ')}`,
    });
  });

/**
 * The data settings: the source's name, every source's own settings (composed from the entries of
 * data/registry.ts, which own their rules and help) and the shot-split thresholds.
 */
export const DataConfigSchema = z.object({
  dataset: names(DATASET_NAMES, 'dataset')
    .default('fashion-mnist-lt')
    .meta(help(`data set: ${DATASET_NAMES.join(', ')}`)),
  ...DATASET_SETTINGS,
  manyThreshold: z.number().int().min(0).default(100).meta(help('many-shot: more than n training images')),
  fewThreshold: z.number().int().min(0).default(20).meta(help('few-shot: fewer than n training images')),
});

export type DataConfig = z.infer<typeof DataConfigSchema>;

/**
 * The backbone: a registry name or `onnx:PATH`, and every backbone's own options as settings
 * (`onnxInputSize`, ...), composed from the entries of models/registry.ts, which own their rules,
 * help and defaults.
 */
export const BACKBONE_SETTINGS = {
  backbone: z
    .string()
    .superRefine((v, ctx) => {
      if (BACKBONE_NAMES.includes(v as never) || (isOnnxSpec(v) && v.length > ONNX_PREFIX.length)) return;
      const near = nearestName(v, BACKBONE_NAMES);
      ctx.addIssue({
        code: 'custom',
        message: `unknown backbone${near === undefined ? '' : ` (did you mean ${near}?)`}; valid: ${BACKBONE_NAMES.join(', ')}, or ${ONNX_PREFIX}PATH`,
      });
    })
    .default('resnet8')
    .meta(
      help(
        `backbone: ${BACKBONE_NAMES.join(', ')}, or onnx:PATH (a frozen ONNX feature extractor: train then only extracts features)`,
      ),
    ),
  ...backboneSettings(),
};

/** Threads: data-parallel stage 1 and class-split stage-2 heads (a setting of both stages). */
const threads = z
  .number()
  .int()
  .min(1)
  .max(64)
  .optional()
  .meta(
    help('threads, each with its own backend: data-parallel stage 1, class-split stage-2 heads', 'all cores'),
  );

/** Stage 1: sampling, the optimiser and its schedule, the loss, augmentation, the seed. */
export const STAGE1_SETTINGS = {
  sampler: names(SAMPLER_NAMES, 'sampler')
    .default('instance-balanced')
    .meta(help(`stage-1 sampler: ${SAMPLER_NAMES.join(', ')}`)),
  samplerQ: z
    .number()
    .min(0)
    .max(1)
    .optional()
    .meta(help('sample class j with probability n_j^q / sum n^q (overrides --sampler)')),
  // Each sampler's own options (`classAwareSamplesPerClass`), from its entry in sampling/samplers.ts.
  ...samplerSettings(),
  epochs: z.number().int().positive().default(30).meta(help('stage-1 epochs')),
  batchSize: z.number().int().positive().default(128).meta(help('batch size')),
  lr: z.number().positive().default(0.1).meta(help('initial learning rate, cosine to 0')),
  weightDecay: z.number().min(0).default(5e-4).meta(help('weight decay', '5e-4')),
  momentum: z.number().min(0).lt(1).default(0.9).meta(help('SGD momentum')),
  warmupEpochs: z.number().int().min(0).default(0).meta(help('linear warm-up epochs')),
  seed: z.number().int().min(0).default(0).meta(help('random seed: weights, sampling, augmentation')),
  augment: z
    .enum(['auto', 'crop-flip', 'resized-crop-flip', 'none'])
    .default('auto')
    .meta(help('training augmentation')),
  threads,
  loss: z
    .enum(LOSS_NAMES)
    .default('ce')
    .meta(
      help(
        'stage-1 loss: ce, balanced-softmax (CE(z + log prior)) or logit-adjusted (CE(z + tau log prior))',
      ),
    ),
  lossTau: z.number().min(0).max(5).optional().meta(help('tau of --loss logit-adjusted', '1')),
  precision: z
    .enum(['fp32', 'bf16'])
    .default('fp32')
    .meta(
      help(
        'stage-1 arithmetic: fp32, or bf16 convolutions with fp32 sums, master weights and optimiser state (a CPU with AVX512_BF16)',
      ),
    ),
};

export const TrainConfigSchema = DataConfigSchema.extend({ ...BACKBONE_SETTINGS, ...STAGE1_SETTINGS });

export type TrainConfig = z.infer<typeof TrainConfigSchema>;

/**
 * Stage 2: the methods, the settings every trained head shares, and each method's own settings,
 * which come from its registry entry (classifiers/registry.ts: `crtEpochs`, `tau`, `ncmFeatures`,
 * ...; `methodOptions` holds any method's settings by name, e.g. a registered one's).
 */
export const Stage2ConfigSchema = z.object({
  methods: z
    .string()
    .default('all')
    .meta(help('stage-2 methods, comma-separated, or all (the flag is --method)')),
  /** Any method's settings by its name, e.g. those of a method added with registerClassifier. */
  methodOptions: z.record(z.string(), z.record(z.string(), z.unknown())).optional(),
  stage2Lr: z
    .number()
    .positive()
    .optional()
    .meta(
      help(
        'learning rate of the trained heads (cRT, LWS, ...)',
        'the stage-1 LR, unless the method sets its own',
      ),
    ),
  stage2BatchSize: z
    .number()
    .int()
    .positive()
    .optional()
    .meta(help('batch size of the trained heads', 'the stage-1 batch size, else 128')),
  samplesPerClass: z
    .number()
    .int()
    .positive()
    .default(4)
    .meta(help('class-aware sampler: images per class in a row')),
  mode: z
    .enum(['auto', 'features', 'augmented'])
    .default('auto')
    .meta(
      help(
        'input of the trained heads: augmented (through the frozen backbone, official) or features (cached, fast); auto = augmented when a backbone is available',
      ),
    ),
  threads,
  liveMib: z
    .number()
    .min(0)
    .max(4096)
    .default(8)
    .meta(
      help(
        'MiB of test logits report.html embeds for its live sliders; above it the page works on a stratified subsample of test rows (raise it for many classes; 0: no live section)',
      ),
    ),
  calibrate: z
    .enum(['none', 'temperature', 'bcts'])
    .optional()
    .meta(
      help(
        'bcts: fit a temperature and a bias per class per method on validation (NLL); temperature: a temperature only; used by ECE, the prior corrections and the deployed head; none: raw scores',
        'bcts with 10+ validation images a class, temperature with fewer, none without',
      ),
    ),
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
export const TRAIN_DEFAULTS: TrainConfig = TrainConfigSchema.parse({});

/** A stage-1 setting that retrain takes from the run, else from the stage-1 default. */
const fromRun = <K extends 'lr' | 'weightDecay' | 'seed'>(key: K, description: string) =>
  STAGE1_SETTINGS[key]
    .unwrap()
    .optional()
    .meta(
      help(
        description,
        `the run's, else ${STAGE1_SETTINGS[key].meta()?.shownDefault ?? TRAIN_DEFAULTS[key]}`,
      ),
    );

export const RetrainConfigSchema = withMethodSettings(
  Stage2ConfigSchema.extend({
    run: z.string().optional(),
    features: z.string().optional(),
    lr: fromRun('lr', 'the stage-1 learning rate cRT / LWS start from, unless --stage2-lr'),
    weightDecay: fromRun('weightDecay', 'weight decay for cRT / LWS'),
    seed: fromRun('seed', 'seed for cRT / LWS'),
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
        const near = nearestName(k, valid);
        return near !== undefined ? `${k} (did you mean ${near}?)` : k;
      });
      throw new ConfigError(
        `${from ?? '(config)'}: unknown setting(s) ${hints.join(', ')}; settings are the flags in camelCase, e.g. ${valid.slice(0, 6).join(', ')}`,
      );
    }
    const key = String(issue.path[0]);
    const from = [...layers].reverse().find((l) => l.values[key] !== undefined)?.source ?? 'defaults';
    let got: unknown = merged;
    for (const p of issue.path) got = (got as Record<PropertyKey, unknown> | undefined)?.[p as string];
    const rule = ruleOf(issue as RuleIssue, got);
    // Said as the user said it: the flag and its value, or the setting and the file it came from.
    if (from === 'flags' && issue.path.length === 1)
      throw new ConfigError(`${flagOf(key)} ${showValue(got)}: ${rule}`);
    throw new ConfigError(
      `${field}: ${rule}${got !== undefined ? ` (got ${JSON.stringify(got)} from ${from})` : ` (in ${from})`}`,
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

/** `crtEpochs` -> `--crt-epochs`: every setting's flag is its key in kebab case. */
export const flagOf = (key: string): string =>
  key === 'methods' ? '--method' : `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;

const showValue = (v: unknown) => (Array.isArray(v) ? v.join(',') : String(v));
