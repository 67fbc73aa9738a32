/**
 * Fashion-MNIST-LT (the embedded default) and MNIST-LT, by docs/formats.md: exponential profile in
 * label order, first n_c of each class (file order) train, last 20 of each class validate,
 * official test set untouched.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DataError } from '../errors.ts';
import { readFileChecked, readFileChunks } from '../io/read-file.ts';
import { resolveInside } from '../io/safe-path.ts';
import { checkSplits } from './dataset.ts';
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

/** The files a SHA256SUMS of an MNIST-style folder may name: the four IDX files, plain or gzipped. */
export const IDX_CHECKSUM_FILES: readonly string[] = Object.values(IDX_FILES).flatMap((f) => [f, `${f}.gz`]);

/**
 * Verifies a folder against its SHA256SUMS file; returns the first problem, or null.
 * The checksum file may only name the data set's own files (`known`, bare names): an entry naming
 * anything else (another file, a path, `..`) is refused, so a planted SHA256SUMS cannot make us
 * hash or reveal files outside the data set. Each named file must resolve inside `dir` (symlinks
 * followed) and be a regular file; it is hashed in 1 MiB pieces.
 */
export function verifyChecksums(dir: string, known: readonly string[] = IDX_CHECKSUM_FILES): string | null {
  const sumsPath = join(dir, 'SHA256SUMS');
  if (!existsSync(sumsPath)) return `${sumsPath} is missing`;
  try {
    const lines = readFileChecked(sumsPath, 'checksum file', { maxBytes: 1 << 20 })
      .toString('utf8')
      .split('\n');
    for (const [i, line] of lines.entries()) {
      if (line.trim() === '') continue;
      const where = `${sumsPath}:${i + 1}`;
      const m = /^([0-9a-fA-F]{64})\s+\*?(.+)$/.exec(line.trim());
      if (!m) return `${where}: expected '<sha256>  <file>'`;
      const name = m[2]!;
      if (!known.includes(name)) {
        return `${where}: '${name}' is not one of this data set's files; SHA256SUMS may only list ${known.join(', ')}`;
      }
      if (!existsSync(join(dir, name))) return `${join(dir, name)} is missing`;
      const file = resolveInside(dir, name, where);
      const hash = createHash('sha256');
      readFileChunks(file, 'data file', (chunk) => hash.update(chunk));
      const got = hash.digest('hex');
      const want = m[1]!.toLowerCase();
      if (got !== want)
        return `${join(dir, name)}: checksum mismatch (SHA-256 ${got}, SHA256SUMS says ${want}): the file is corrupt or was changed`;
    }
  } catch (e) {
    if (e instanceof DataError) return e.message;
    throw e;
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

/** Loads Fashion-MNIST-LT (`fashion: true`) or MNIST-LT from IDX files by docs/formats.md. */
export function loadMnistLt(
  kind: 'fashion-mnist-lt' | 'mnist-lt',
  opts: MnistLtOptions = {},
): LongTailDataset {
  const { maxPerClass = 1000, imbalance = 100, valPerClass = 20 } = opts;
  const counts = exponentialCounts(10, maxPerClass, imbalance); // settings first, before reading data
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
  const trainImages = idxPath(dir, IDX_FILES.trainImages);
  const testImages = idxPath(dir, IDX_FILES.testImages);
  const full = readIdxImageSet(trainImages, idxPath(dir, IDX_FILES.trainLabels));
  const test = readIdxImageSet(testImages, idxPath(dir, IDX_FILES.testLabels));
  const { train, val } = fileOrderSplit(full, counts, valPerClass, `${kind} (${dir})`);
  checkSplits({
    train: { set: train, source: trainImages },
    val: val && { set: val, source: trainImages },
    test: { set: test, source: testImages },
  });
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
