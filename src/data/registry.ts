/**
 * The data sets a user names with --dataset. Each entry owns its settings: a zod object whose
 * fields carry their rule, their help text (`.meta({ description })`) and, where the loader has
 * one, the default the help shows. The run configuration, the flags and their help are composed
 * from these schemas (config/schema.ts, cli/options.ts), and `load` receives its own options,
 * parsed by its own schema: a setting added to an entry reaches its loader with no other file
 * touched. Settings several sources share are one schema (below), so they mean one thing.
 */
import { z } from 'zod';
import { ConfigError } from '../errors.ts';
import { checkName, ruleOf } from '../registry.ts';
import { asSetting } from '../settings.ts';
import { loadCifarLt } from './cifar.ts';
import type { DecodeImagesOptions } from './decode-images.ts';
import { downloadCifar } from './download.ts';
import { loadMnistLt } from './fashion-mnist.ts';
import { loadImageFolder } from './image-folder.ts';
import { loadListDataset } from './image-list.ts';
import type { LongTailDataset } from './types.ts';

/** What a loader reports back while it works; never part of a configuration. */
export interface DataHooks {
  onProgress?: DecodeImagesOptions['onProgress'];
  /** Told what a loader skipped (e.g. files in an image folder that are not images). */
  onWarning?: (message: string) => void;
}

/** A setting's help line, and the default the help shows when the loader (not the schema) has it. */
const help = (description: string, shownDefault?: string) =>
  shownDefault === undefined ? { description } : { description, shownDefault };

// Settings shared by several sources.
const dataDir = z
  .string()
  .optional()
  .meta(
    help(
      'folder with the data set files (IDX for the MNISTs, binary batches for CIFAR; imagefolder: train/, test/, val/)',
    ),
  );
const imbalance = z.number().min(1).optional().meta(help('imbalance factor n_max / n_min', '100'));
const maxPerClass = z
  .number()
  .int()
  .positive()
  .optional()
  .meta(help('n_max, images in the largest class', '1000; CIFAR 5000 / 500'));
const valPerClass = z
  .number()
  .int()
  .min(0)
  .optional()
  .meta(help('balanced validation images per class', '20'));
const imageSize = z
  .number()
  .int()
  .min(8)
  .max(1024)
  .optional()
  .meta(help('list, imagefolder: square image side after resize and centre crop, 8-1024', '64'));

const mnistOptions = z.object({ dataDir, imbalance, maxPerClass, valPerClass });
const cifarOptions = mnistOptions.extend({
  subsetSeed: z
    .number()
    .int()
    .min(0)
    .optional()
    .meta(help("CIFAR-LT: seed of the per-class subset (0: the reference code's subset)", '0')),
  download: z
    .boolean()
    .optional()
    .meta(
      help(
        'CIFAR: fetch the official binary archive into --data-dir when its files are not there (MD5 checked)',
      ),
    ),
});

/** A data source: its help line, its own settings and its loader, typed by those settings. */
export interface DatasetEntry<S extends z.ZodObject = z.ZodObject> {
  readonly description: string;
  readonly options: S;
  load(options: z.infer<S>, hooks: DataHooks): Promise<LongTailDataset>;
}

/** An entry with its loader typed by its own settings (for registerDataset too). */
export const defineDataset = <S extends z.ZodObject>(e: DatasetEntry<S>) => e;
const entry = defineDataset;

function need(value: string | undefined, flag: string, dataset: string): string {
  if (value === undefined || value === '') throw new ConfigError(`--dataset ${dataset} needs ${flag}`);
  return value;
}

const cifar = (kind: 'cifar10' | 'cifar100', description: string) =>
  entry({
    description,
    options: cifarOptions,
    load: async ({ subsetSeed, download, ...o }) => {
      const dir = need(o.dataDir, '--data-dir', `${kind}-lt`);
      if (download) await downloadCifar(kind, dir);
      return loadCifarLt(kind, { ...o, seed: subsetSeed, dataDir: dir });
    },
  });

export const DATASETS = {
  'fashion-mnist-lt': entry({
    description: 'Fashion-MNIST-LT, bundled: n_max 1000, IF 100, 2,478 training images',
    options: mnistOptions,
    load: async (o) => loadMnistLt('fashion-mnist-lt', o),
  }),
  'mnist-lt': entry({
    description: 'MNIST-LT from the four official IDX files in --data-dir, same protocol',
    options: mnistOptions,
    load: async (o) => loadMnistLt('mnist-lt', { ...o, dataDir: need(o.dataDir, '--data-dir', 'mnist-lt') }),
  }),
  'cifar10-lt': cifar(
    'cifar10',
    'CIFAR-10-LT (LDAM-DRW protocol) from the official binary files in --data-dir',
  ),
  'cifar100-lt': cifar(
    'cifar100',
    'CIFAR-100-LT (LDAM-DRW protocol) from the official binary files in --data-dir',
  ),
  list: entry({
    description:
      'image list files (ImageNet-LT / Places-LT / iNaturalist format): --train-list, --test-list, --data-root',
    options: z.object({
      trainList: z.string().optional().meta(help('list: training list file (`path label` per line)')),
      valList: z.string().optional().meta(help('list: validation list file')),
      testList: z.string().optional().meta(help('list: test list file')),
      dataRoot: z.string().optional().meta(help('list: folder the list paths are relative to')),
      dataDir,
      classes: z
        .string()
        .optional()
        .meta(help('list: class names, one a line in label order', 'the names sorted')),
      imageSize,
    }),
    load: async (o, hooks) =>
      loadListDataset({
        trainList: need(o.trainList, '--train-list', 'list'),
        testList: need(o.testList, '--test-list', 'list'),
        dataRoot: need(o.dataRoot ?? o.dataDir, '--data-root', 'list'),
        ...(o.valList ? { valList: o.valList } : {}),
        ...(o.classes ? { classesFile: o.classes } : {}),
        ...(o.imageSize ? { imageSize: o.imageSize } : {}),
        ...(hooks.onProgress ? { onProgress: hooks.onProgress } : {}),
      }),
  }),
  imagefolder: entry({
    description:
      'your own images: --data-dir with train/, test/ (and optionally val/), one subfolder per class (ImageFolder layout)',
    options: z.object({
      dataDir,
      valPerClass,
      valSeed: z
        .number()
        .int()
        .min(0)
        .optional()
        .meta(help('imagefolder without val/: seed of the validation images drawn from train/', '0')),
      imageSize,
    }),
    load: async (o, hooks) =>
      loadImageFolder({
        dataDir: need(o.dataDir, '--data-dir', 'imagefolder'),
        ...(o.valPerClass !== undefined ? { valPerClass: o.valPerClass } : {}),
        ...(o.valSeed !== undefined ? { valSeed: o.valSeed } : {}),
        ...(o.imageSize ? { imageSize: o.imageSize } : {}),
        ...(hooks.onProgress ? { onProgress: hooks.onProgress } : {}),
        ...(hooks.onWarning ? { onWarning: hooks.onWarning } : {}),
      }),
  }),
} as const;

/** A data source's name: a built-in one, or one added with registerDataset. */
export type DatasetName = keyof typeof DATASETS | (string & {});
/** The built-in data sources. */
export const DATASET_NAMES = Object.keys(DATASETS) as (keyof typeof DATASETS)[];

// Every entry, built-in and registered, by name.
const ENTRIES: Record<string, DatasetEntry> = { ...(DATASETS as unknown as Record<string, DatasetEntry>) };

/** Every data source a run can name, built-in and registered. */
export function datasetNames(): string[] {
  return Object.keys(ENTRIES);
}

export function checkDatasetName(name: string): DatasetName {
  return checkName(ENTRIES, 'dataset', name);
}

/** The built-in sources' settings in one shape (a key shared by several sources appears once). */
export const DATASET_SETTINGS = {
  ...DATASETS['fashion-mnist-lt'].options.shape,
  ...DATASETS['cifar10-lt'].options.shape,
  ...DATASETS.list.options.shape,
  ...DATASETS.imagefolder.options.shape,
};

/**
 * Every source's settings, built-in and registered, in one shape (composed when asked): each
 * optional, so config.json records only what was set; a source applies its defaults when it
 * parses its own settings (loadDataset).
 */
export function datasetSettings(): typeof DATASET_SETTINGS & Record<string, z.ZodType> {
  const out: Record<string, z.ZodType> = { ...DATASET_SETTINGS };
  for (const [name, e] of Object.entries(ENTRIES))
    for (const [k, v] of Object.entries(e.options.shape as Record<string, z.ZodType>))
      if (!Object.hasOwn(DATASET_SETTINGS, k)) out[k] = asSetting(v, `${name}: ${k}`);
  return out as typeof DATASET_SETTINGS & Record<string, z.ZodType>;
}

/**
 * Adds a data source at run time (library API). Its settings become run settings, flags and help
 * lines of every command built after this call; a setting another source has must be that
 * source's very schema (shared settings mean one thing).
 */
export function registerDataset<S extends z.ZodObject>(name: string, e: DatasetEntry<S>): void {
  if (!/^[a-z][a-z0-9-]*$/.test(name))
    throw new ConfigError(`registerDataset: name '${name}' must be lower-case letters, digits and dashes`);
  if (Object.hasOwn(ENTRIES, name))
    throw new ConfigError(`registerDataset: a data set named '${name}' exists already`);
  const taken: Record<string, unknown> = Object.assign(
    {},
    ...Object.values(ENTRIES).map((x) => x.options.shape),
  );
  for (const [k, v] of Object.entries(e.options.shape as Record<string, z.ZodType>)) {
    if (taken[k] !== undefined && taken[k] !== v)
      throw new ConfigError(
        `registerDataset: setting '${k}' of '${name}' is another source's; use that source's schema or another name`,
      );
  }
  ENTRIES[name] = e as unknown as DatasetEntry;
}

/** Removes a data source added with registerDataset (the built-in ones stay). */
export function unregisterDataset(name: string): void {
  if (Object.hasOwn(DATASETS, name)) throw new ConfigError(`unregisterDataset: '${name}' is built in`);
  delete ENTRIES[name];
}

/**
 * Loads a data set by name. `settings` may hold more than this source's (a whole run
 * configuration): the source takes its own keys, parsed by its schema.
 */
export async function loadDataset(
  name: string,
  settings: Record<string, unknown> = {},
  hooks: DataHooks = {},
): Promise<LongTailDataset> {
  const e = ENTRIES[checkDatasetName(name)]!;
  const own = Object.fromEntries(Object.keys(e.options.shape).map((k) => [k, settings[k]]));
  const r = e.options.safeParse(own);
  if (!r.success) {
    const i = r.error.issues[0]!;
    throw new ConfigError(`--dataset ${name}: ${String(i.path[0])}: ${ruleOf(i, own[String(i.path[0])])}`);
  }
  const h: DataHooks = {
    ...(typeof settings.onProgress === 'function'
      ? { onProgress: settings.onProgress as DataHooks['onProgress'] }
      : {}),
    ...(typeof settings.onWarning === 'function'
      ? { onWarning: settings.onWarning as DataHooks['onWarning'] }
      : {}),
    ...hooks,
  };
  return e.load(r.data, h);
}
