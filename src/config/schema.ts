/**
 * One schema per command for a run's configuration, composed from the settings each component
 * owns: the data sources' (data/registry.ts), stage 1's (train/joint-config.ts: the backbones',
 * the samplers' and its own) and the stage-2 methods' (classifiers/registry.ts), plus the
 * settings every trained head shares. The schemas are built when asked (`trainConfigSchema()`,
 * ...), so a data source, backbone or method registered before the CLI is built has its settings,
 * flags and help; the `*Schema` constants are the built-in registries' (and give the types).
 * Resolution order: defaults < config file (--config, YAML or JSON) < flags, validated once
 * (settings.ts: resolveConfig). The resolved configuration is written next to the results as
 * `config.json` and read back by one function (`readRunConfig`), validated by the same schema.
 */
import { existsSync, readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { type CLASSIFIERS, methodEntries } from '../classifiers/registry.ts';
import { datasetNames, datasetSettings } from '../data/registry.ts';
import { ConfigError } from '../errors.ts';
import { asSetting, resolveConfig, withRenamedSettings } from '../settings.ts';
import {
  help,
  jointRules,
  jointSettings,
  LOSS_NAMES,
  registryName,
  threadsSetting,
} from '../train/joint-config.ts';

export { flagOf, resolveConfig } from '../settings.ts';
export { LOSS_NAMES, type LossName } from '../train/joint-config.ts';

/**
 * The data settings: the source's name, every source's own settings (composed from the entries of
 * data/registry.ts, which own their rules and help) and the shot-split thresholds.
 */
export function dataSettings() {
  return {
    dataset: registryName(datasetNames, 'dataset')
      .default('fashion-mnist-lt')
      .meta(help(`data set: ${datasetNames().join(', ')}`)),
    ...datasetSettings(),
    manyThreshold: z.number().int().min(0).default(100).meta(help('many-shot: more than n training images')),
    fewThreshold: z.number().int().min(0).default(20).meta(help('few-shot: fewer than n training images')),
  };
}

export const dataConfigSchema = () => z.object(dataSettings()).strict();
export const DataConfigSchema = dataConfigSchema();
export type DataConfig = z.infer<typeof DataConfigSchema>;

/** `train`: the data and stage 1 (the stage-1 part is a JointConfig as it stands). */
export const trainConfigSchema = () =>
  z
    .object({ ...dataSettings(), ...jointSettings() })
    .strict()
    .superRefine(jointRules);
export const TrainConfigSchema = trainConfigSchema();
export type TrainConfig = z.infer<typeof TrainConfigSchema>;

type Intersection<U> = (U extends unknown ? (x: U) => void : never) extends (x: infer I) => void ? I : never;
/** The built-in methods' settings, each optional, typed by the method's own schema. */
type MethodSettings = Intersection<
  {
    [M in keyof typeof CLASSIFIERS]: {
      [K in keyof (typeof CLASSIFIERS)[M]['options']['shape']]: z.ZodOptional<
        z.ZodType<z.output<(typeof CLASSIFIERS)[M]['options']['shape'][K]>>
      >;
    };
  }[keyof typeof CLASSIFIERS]
>;

/**
 * Every registered method's settings (`crtEpochs`, `tau`, ...), each by its method's rule and
 * optional: the method applies its default when its options are parsed (once, when the stage-2
 * plan is made), so config.json records only what was set, and the help shows the default.
 */
export function methodSettings(): MethodSettings {
  const out: Record<string, z.ZodType> = {};
  for (const e of methodEntries())
    for (const [key, schema] of Object.entries(e.options.shape as Record<string, z.ZodType>))
      out[key] = asSetting(schema, `${e.name}: ${key}`);
  return out as MethodSettings;
}

/**
 * Stage 2's settings: the methods, the settings every trained head shares (the class-aware
 * sampler's `classAwarePerClass` is the sampler's own, a stage-1 setting shared by both stages),
 * `methodOptions` (any method's settings by its name, e.g. a registered one's) and each method's
 * own settings from its registry entry.
 */
export function stage2SharedSettings() {
  return {
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
    mode: z
      .enum(['auto', 'features', 'augmented'])
      .default('auto')
      .meta(
        help(
          'input of the trained heads: augmented (through the frozen backbone, official) or features (cached, fast); auto = augmented when a backbone is available',
        ),
      ),
    threads: threadsSetting,
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
  };
}

export const stage2Settings = () => ({ ...stage2SharedSettings(), ...methodSettings() });

export const stage2ConfigSchema = () => z.object(stage2Settings()).strict();
export const Stage2ConfigSchema = stage2ConfigSchema();
export type Stage2Config = z.infer<typeof Stage2ConfigSchema>;

/** The whole pipeline (demo): stage 1 and stage 2 settings in one file. */
const pipelineSettings = () => ({ ...dataSettings(), ...jointSettings(), ...stage2Settings() });
export const pipelineConfigSchema = () => z.object(pipelineSettings()).strict().superRefine(jointRules);
export const PipelineConfigSchema = pipelineConfigSchema();
export type PipelineConfig = z.infer<typeof PipelineConfigSchema>;

/** A stage-1 setting that retrain takes from the run, else from the stage-1 default. */
function fromRun(key: 'lr' | 'weightDecay' | 'seed', description: string) {
  const s = jointSettings()[key];
  const fallback = s.meta()?.shownDefault ?? String((s.def as { defaultValue?: unknown }).defaultValue);
  return s
    .unwrap()
    .optional()
    .meta(help(description, `the run's, else ${fallback}`));
}

/**
 * `retrain`: stage 2 on a run (`run`) or a feature file (`features`). The stage-1 settings cRT and
 * LWS follow (LR, weight decay, seed, batch size) come from the run, else from the stage-1
 * defaults; given here, they override. Thresholds likewise default to the run's.
 */
export const retrainConfigSchema = () =>
  z
    .object({
      ...stage2Settings(),
      classAwarePerClass: jointSettings().classAwarePerClass,
      run: z.string().optional(),
      features: z.string().optional(),
      lr: fromRun('lr', 'the stage-1 learning rate cRT / LWS start from, unless --stage2-lr'),
      weightDecay: fromRun('weightDecay', 'weight decay for cRT / LWS'),
      seed: fromRun('seed', 'seed for cRT / LWS'),
      batchSize: z.number().int().positive().optional(),
      manyThreshold: z.number().int().min(0).optional(),
      fewThreshold: z.number().int().min(0).optional(),
    })
    .strict();
export const RetrainConfigSchema = retrainConfigSchema();
export type RetrainConfig = z.infer<typeof RetrainConfigSchema>;

/** `study samplers`: the pipeline once per stage-1 sampler of the grid (the `sampler` setting is the grid's). */
export const studyConfigSchema = () => {
  const { sampler: _s, samplerQ: _q, ...rest } = pipelineSettings();
  return z
    .object({
      ...rest,
      samplers: z.array(z.string()).min(1).optional(),
      /** Stage-1 losses of the grid (default: the `loss` setting alone). */
      losses: z.array(z.enum(LOSS_NAMES)).min(1).optional(),
      /** Seeds each cell of the grid runs with (default: the `seed` setting alone). */
      seeds: z.array(z.number().int().min(0)).min(1).optional(),
    })
    .strict()
    .superRefine(jointRules);
};
export const StudyConfigSchema = studyConfigSchema();
export type StudyConfig = z.infer<typeof StudyConfigSchema>;

/** `demo --seeds`: one run per seed in `seed-<n>/`, their summary beside them. */
const seedsConfigSchema = () =>
  z
    .object({ ...pipelineSettings(), seeds: z.array(z.number().int().min(0)).min(1) })
    .strict()
    .superRefine(jointRules);

/** The stage-1 defaults (what retrain on a feature file follows). */
export const TRAIN_DEFAULTS: TrainConfig = TrainConfigSchema.parse({});
export const STAGE2_DEFAULTS: Stage2Config = Stage2ConfigSchema.parse({});
export const PIPELINE_DEFAULTS: PipelineConfig = PipelineConfigSchema.parse({});

/** The schema of each command that writes a `config.json`, by the `command` it records (built when asked). */
export function commandSchemas() {
  return {
    train: trainConfigSchema(),
    demo: pipelineConfigSchema(),
    retrain: retrainConfigSchema(),
    /** One run of a study's grid (a whole pipeline). */
    'study samplers': pipelineConfigSchema(),
    seeds: seedsConfigSchema(),
    /** The study's own folder: the grid, its runs in subfolders. */
    study: studyConfigSchema(),
  } as const;
}
export type RunCommand = keyof ReturnType<typeof commandSchemas>;
const COMMANDS: readonly RunCommand[] = ['train', 'demo', 'retrain', 'study samplers', 'seeds', 'study'];

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
  if (typeof command !== 'string' || !COMMANDS.includes(command as RunCommand)) {
    throw new ConfigError(
      `${path}: 'command' must be one of ${COMMANDS.join(', ')}, got ${JSON.stringify(command)}`,
    );
  }
  const schema = commandSchemas()[command as RunCommand];
  const config = resolveConfig(schema, [{ source: path, values: withRenamedSettings(settings) }]);
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
  return withRenamedSettings(value as Record<string, unknown>);
}
