/**
 * CIFAR-10-LT and CIFAR-100-LT from the official binary files (the standard LDAM-DRW protocol):
 * exponential profile from n_max = 5000 / 500, the same per-class subset as the reference code
 * (np.random.seed(0), one shuffle per class), official test set.
 *
 * The protocol has no validation set; longtail takes a balanced one (valPerClass images per
 * class) from the training images the long tail left out, when every class has that many left;
 * otherwise there is none and tau falls back to 1 (said in the results).
 */
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { DataError } from '../errors.ts';
import { readFileChecked } from '../io/read-file.ts';
import { checkSplits } from './dataset.ts';
import { exponentialCounts, numpySubsetIndices } from './long-tail.ts';
import { type ImageSet, type LongTailDataset, subset } from './types.ts';

export const CIFAR10_CLASSES = [
  'airplane',
  'automobile',
  'bird',
  'cat',
  'deer',
  'dog',
  'frog',
  'horse',
  'ship',
  'truck',
];

const RECORD_PIXELS = 3 * 32 * 32;

/** Parses official CIFAR binary records: `labelBytes` label bytes (the last is used) + 3072 CHW pixels. */
export function readCifarBinary(path: string, kind: 'cifar10' | 'cifar100'): ImageSet {
  const raw = readFileChecked(path, 'CIFAR binary file');
  const labelBytes = kind === 'cifar10' ? 1 : 2;
  const numClasses = kind === 'cifar10' ? 10 : 100;
  const rec = labelBytes + RECORD_PIXELS;
  if (raw.length === 0 || raw.length % rec !== 0) {
    throw new DataError(
      `${path}: size ${raw.length} is not a multiple of the ${rec}-byte ${kind === 'cifar10' ? 'CIFAR-10' : 'CIFAR-100'} record (truncated or not a CIFAR binary file)`,
    );
  }
  const n = raw.length / rec;
  const pixels = new Uint8Array(n * RECORD_PIXELS);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const o = i * rec;
    const label = raw[o + labelBytes - 1]!;
    if (label >= numClasses)
      throw new DataError(`${path}: record ${i} has label ${label}, expected 0..${numClasses - 1}`);
    labels[i] = label;
    // CHW planes (R, G, B) -> HWC.
    const src = o + labelBytes;
    const dst = i * RECORD_PIXELS;
    for (let p = 0; p < 1024; p++) {
      pixels[dst + 3 * p] = raw[src + p]!;
      pixels[dst + 3 * p + 1] = raw[src + 1024 + p]!;
      pixels[dst + 3 * p + 2] = raw[src + 2048 + p]!;
    }
  }
  return { pixels, labels, height: 32, width: 32, channels: 3 };
}

function concat(sets: ImageSet[]): ImageSet {
  const n = sets.reduce((a, s) => a + s.labels.length, 0);
  const pixels = new Uint8Array(n * RECORD_PIXELS);
  const labels = new Int32Array(n);
  let k = 0;
  for (const s of sets) {
    pixels.set(s.pixels, k * RECORD_PIXELS);
    labels.set(s.labels, k);
    k += s.labels.length;
  }
  return { pixels, labels, height: 32, width: 32, channels: 3 };
}

const LAYOUT = {
  cifar10: {
    sub: 'cifar-10-batches-bin',
    train: [
      'data_batch_1.bin',
      'data_batch_2.bin',
      'data_batch_3.bin',
      'data_batch_4.bin',
      'data_batch_5.bin',
    ],
    test: ['test_batch.bin'],
    names: 'batches.meta.txt',
  },
  cifar100: {
    sub: 'cifar-100-binary',
    train: ['train.bin'],
    test: ['test.bin'],
    names: 'fine_label_names.txt',
  },
} as const;

/** The folder holding the binary files: `dir` itself or its official sub-folder. */
function findDir(dir: string, kind: 'cifar10' | 'cifar100'): string {
  const l = LAYOUT[kind];
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new DataError(`${dir}: no such folder`);
  for (const d of [dir, join(dir, l.sub)]) if (existsSync(join(d, l.test[0]))) return d;
  throw new DataError(
    `${dir}: no ${l.test[0]} here or in ${l.sub}/; expected the official binary files (${[...l.train, ...l.test].join(', ')})`,
  );
}

export interface CifarLtOptions {
  dataDir: string;
  /** IF = n_max / n_min; the protocol uses 10, 50 or 100. Default 100. */
  imbalance?: number;
  /** Default 5000 (CIFAR-10) or 500 (CIFAR-100), the full class size. */
  maxPerClass?: number;
  /** Seed of the per-class subset; 0 is the reference code's. */
  seed?: number;
  /** Balanced validation images per class, from the images the long tail left out. Default 20. */
  valPerClass?: number;
}

export function loadCifarLt(kind: 'cifar10' | 'cifar100', opts: CifarLtOptions): LongTailDataset {
  const numClasses = kind === 'cifar10' ? 10 : 100;
  const { imbalance = 100, maxPerClass = kind === 'cifar10' ? 5000 : 500, seed = 0, valPerClass = 20 } = opts;
  const counts = exponentialCounts(numClasses, maxPerClass, imbalance); // settings first, before reading data
  const dir = findDir(opts.dataDir, kind);
  const l = LAYOUT[kind];
  const need = (f: string) => {
    const p = join(dir, f);
    if (!existsSync(p)) throw new DataError(`${dir}: missing ${f}`);
    return p;
  };
  const full = concat(l.train.map((f) => readCifarBinary(need(f), kind)));
  const test = concat(l.test.map((f) => readCifarBinary(need(f), kind)));
  const { keep, leftover } = numpySubsetIndices(full.labels, counts, seed, dir);
  const canVal = valPerClass > 0 && leftover.every((x) => x.length >= valPerClass);
  const val = canVal
    ? subset(
        full,
        leftover.flatMap((x) => x.slice(x.length - valPerClass)),
      )
    : null;
  const namesPath = join(dir, l.names);
  let classNames =
    kind === 'cifar10' ? CIFAR10_CLASSES : Array.from({ length: numClasses }, (_, i) => `class ${i}`);
  if (existsSync(namesPath)) {
    const names = readFileChecked(namesPath, 'class-name file')
      .toString('utf8')
      .split('\n')
      .map((s) => s.trim())
      .filter((s) => s !== '');
    if (names.length === numClasses) classNames = names;
  }
  const train = subset(full, keep);
  const trainSource = `${dir} (${l.train.join(', ')})`;
  checkSplits({
    train: { set: train, source: trainSource },
    val: val && { set: val, source: trainSource },
    test: { set: test, source: join(dir, l.test[0]) },
  });
  return {
    name: `${kind}-lt`,
    classNames,
    train,
    val,
    test,
    trainCounts: counts,
    profile: { kind: 'exponential', maxPerClass, imbalance },
    source: dir,
  };
}
