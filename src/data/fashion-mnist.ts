/**
 * Fashion-MNIST-LT (the embedded default) and MNIST-LT, by PROTOCOL.md: exponential profile in
 * label order, first n_c of each class (file order) train, last 20 of each class validate,
 * official test set untouched.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DataError } from '../errors.ts';
import { readIdxImageSet } from './idx.ts';
import { exponentialCounts, fileOrderSplit } from './long-tail.ts';
import type { LongTailDataset } from './types.ts';

export const FASHION_MNIST_CLASSES = [
  'T-shirt/top',
  'Trouser',
  'Pullover',
  'Dress',
  'Coat',
  'Sandal',
  'Shirt',
  'Sneaker',
  'Bag',
  'Ankle boot',
];
export const MNIST_CLASSES = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'];

export const IDX_FILES = {
  trainImages: 'train-images-idx3-ubyte',
  trainLabels: 'train-labels-idx1-ubyte',
  testImages: 't10k-images-idx3-ubyte',
  testLabels: 't10k-labels-idx1-ubyte',
} as const;

/** The repository's own copy of Fashion-MNIST. */
export const BUNDLED_FASHION_MNIST_DIR = resolve(
  dirname(fileURLToPath(import.meta.url)),
  '..',
  '..',
  'data',
  'fashion-mnist',
);

/** Verifies a folder against its SHA256SUMS file; returns the first problem, or null. */
export function verifyChecksums(dir: string): string | null {
  const sumsPath = join(dir, 'SHA256SUMS');
  if (!existsSync(sumsPath)) return `${sumsPath} is missing`;
  const lines = readFileSync(sumsPath, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '');
  for (const [i, line] of lines.entries()) {
    const m = /^([0-9a-f]{64})\s+\*?(.+)$/.exec(line.trim());
    if (!m) return `${sumsPath}:${i + 1}: expected '<sha256>  <file>'`;
    const file = join(dir, m[2]!);
    if (!existsSync(file)) return `${file} is missing`;
    const got = createHash('sha256').update(readFileSync(file)).digest('hex');
    if (got !== m[1])
      return `${file}: checksum mismatch (SHA-256 ${got}, SHA256SUMS says ${m[1]}): the file is corrupt or was changed`;
  }
  return null;
}

const verified = new Set<string>();

export function checkBundledFashionMnist(): { ok: boolean; dir: string; problem?: string } {
  const problem = verifyChecksums(BUNDLED_FASHION_MNIST_DIR);
  return problem === null
    ? { ok: true, dir: BUNDLED_FASHION_MNIST_DIR }
    : { ok: false, dir: BUNDLED_FASHION_MNIST_DIR, problem };
}

/** Finds `<name>` or `<name>.gz` in a folder. */
function idxPath(dir: string, name: string): string {
  for (const candidate of [join(dir, `${name}.gz`), join(dir, name)])
    if (existsSync(candidate)) return candidate;
  throw new DataError(`${dir}: missing ${name}.gz (or ${name}); expected the four official IDX files`);
}

export interface MnistLtOptions {
  /** Folder with the four IDX files; default: the bundled Fashion-MNIST (fashion only). */
  dataDir?: string;
  /** n_max, images in the largest class. Default 1000. */
  maxPerClass?: number;
  /** IF = n_max / n_min. Default 100. */
  imbalance?: number;
  /** Validation images per class, the last of each class in file order. Default 20. */
  valPerClass?: number;
}

/** Loads Fashion-MNIST-LT (`fashion: true`) or MNIST-LT from IDX files by PROTOCOL.md. */
export function loadMnistLt(
  kind: 'fashion-mnist-lt' | 'mnist-lt',
  opts: MnistLtOptions = {},
): LongTailDataset {
  const { maxPerClass = 1000, imbalance = 100, valPerClass = 20 } = opts;
  let dir = opts.dataDir;
  if (dir === undefined) {
    if (kind === 'mnist-lt')
      throw new DataError('mnist-lt needs --data-dir: a folder with the four MNIST IDX files');
    dir = BUNDLED_FASHION_MNIST_DIR;
  }
  if (!existsSync(dir)) throw new DataError(`${dir}: no such folder`);
  if (existsSync(join(dir, 'SHA256SUMS')) && !verified.has(dir)) {
    const problem = verifyChecksums(dir);
    if (problem !== null) throw new DataError(problem);
    verified.add(dir);
  }
  const full = readIdxImageSet(idxPath(dir, IDX_FILES.trainImages), idxPath(dir, IDX_FILES.trainLabels));
  const test = readIdxImageSet(idxPath(dir, IDX_FILES.testImages), idxPath(dir, IDX_FILES.testLabels));
  const counts = exponentialCounts(10, maxPerClass, imbalance);
  const { train, val } = fileOrderSplit(full, counts, valPerClass, `${kind} (${dir})`);
  return {
    name: kind,
    classNames: kind === 'fashion-mnist-lt' ? FASHION_MNIST_CLASSES : MNIST_CLASSES,
    train,
    val,
    test,
    trainCounts: counts,
    profile: { kind: 'exponential', maxPerClass, imbalance },
    source: dir,
  };
}
