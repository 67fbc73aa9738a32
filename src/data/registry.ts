/** The data sets a user names with --dataset. */
import { ConfigError } from '../errors.ts';
import { checkName } from '../registry.ts';
import { loadCifarLt } from './cifar.ts';
import { downloadCifar } from './download.ts';
import { loadMnistLt } from './fashion-mnist.ts';
import { loadImageFolder } from './image-folder.ts';
import { type LoadListOptions, loadListDataset } from './image-list.ts';
import type { LongTailDataset } from './types.ts';

export interface DatasetOptions {
  /** Folder with the data set's files (IDX for the MNISTs, binary batches for CIFAR). */
  dataDir?: string;
  /** IF = n_max / n_min. */
  imbalance?: number;
  /** n_max, images in the largest class. */
  maxPerClass?: number;
  /** Balanced validation images per class. Default 20. */
  valPerClass?: number;
  /** Seed of a random per-class subset (CIFAR-LT). */
  subsetSeed?: number;
  trainList?: string;
  valList?: string;
  testList?: string;
  dataRoot?: string;
  /** List files: a classes file (one name a line, in label order). */
  classes?: string;
  /** Image folder without val/: seed of the validation images drawn from train/. */
  valSeed?: number;
  /** Square side for list and image-folder images. */
  imageSize?: number;
  /** CIFAR: download the official archive into --data-dir when its files are not there. */
  download?: boolean;
  onProgress?: LoadListOptions['onProgress'];
  /** Told what a loader skipped (e.g. files in an image folder that are not images). */
  onWarning?: (message: string) => void;
}

function need(value: string | undefined, flag: string, dataset: string): string {
  if (value === undefined || value === '') throw new ConfigError(`--dataset ${dataset} needs ${flag}`);
  return value;
}

async function cifarDir(kind: 'cifar10' | 'cifar100', o: DatasetOptions): Promise<string> {
  const dir = need(o.dataDir, '--data-dir', `${kind}-lt`);
  if (o.download) await downloadCifar(kind, dir);
  return dir;
}

export const DATASETS = {
  'fashion-mnist-lt': {
    description: 'Fashion-MNIST-LT, bundled (PROTOCOL.md): n_max 1000, IF 100, 2,478 training images',
    load: async (o: DatasetOptions) => loadMnistLt('fashion-mnist-lt', o),
  },
  'mnist-lt': {
    description: 'MNIST-LT from the four official IDX files in --data-dir, same protocol',
    load: async (o: DatasetOptions) =>
      loadMnistLt('mnist-lt', { ...o, dataDir: need(o.dataDir, '--data-dir', 'mnist-lt') }),
  },
  'cifar10-lt': {
    description: 'CIFAR-10-LT (LDAM-DRW protocol) from the official binary files in --data-dir',
    load: async (o: DatasetOptions) =>
      loadCifarLt('cifar10', {
        ...o,
        seed: o.subsetSeed,
        dataDir: await cifarDir('cifar10', o),
      }),
  },
  'cifar100-lt': {
    description: 'CIFAR-100-LT (LDAM-DRW protocol) from the official binary files in --data-dir',
    load: async (o: DatasetOptions) =>
      loadCifarLt('cifar100', {
        ...o,
        seed: o.subsetSeed,
        dataDir: await cifarDir('cifar100', o),
      }),
  },
  list: {
    description:
      'image list files (ImageNet-LT / Places-LT / iNaturalist format): --train-list, --test-list, --data-root',
    load: async (o: DatasetOptions) =>
      loadListDataset({
        trainList: need(o.trainList, '--train-list', 'list'),
        testList: need(o.testList, '--test-list', 'list'),
        dataRoot: need(o.dataRoot ?? o.dataDir, '--data-root', 'list'),
        ...(o.valList ? { valList: o.valList } : {}),
        ...(o.classes ? { classesFile: o.classes } : {}),
        ...(o.imageSize ? { imageSize: o.imageSize } : {}),
        ...(o.onProgress ? { onProgress: o.onProgress } : {}),
      }),
  },
  imagefolder: {
    description:
      'your own images: --data-dir with train/, test/ (and optionally val/), one subfolder per class (ImageFolder layout)',
    load: async (o: DatasetOptions) =>
      loadImageFolder({
        dataDir: need(o.dataDir, '--data-dir', 'imagefolder'),
        ...(o.valPerClass !== undefined ? { valPerClass: o.valPerClass } : {}),
        ...(o.valSeed !== undefined ? { valSeed: o.valSeed } : {}),
        ...(o.imageSize ? { imageSize: o.imageSize } : {}),
        ...(o.onProgress ? { onProgress: o.onProgress } : {}),
        ...(o.onWarning ? { onWarning: o.onWarning } : {}),
      }),
  },
} as const;

export type DatasetName = keyof typeof DATASETS;
export const DATASET_NAMES = Object.keys(DATASETS) as DatasetName[];

export function checkDatasetName(name: string): DatasetName {
  return checkName(DATASETS, 'dataset', name);
}

/** Loads a data set by name. */
export async function loadDataset(name: string, opts: DatasetOptions = {}): Promise<LongTailDataset> {
  return DATASETS[checkDatasetName(name)].load(opts);
}
