/**
 * A tiny long-tailed image folder (`--dataset imagefolder`): train/, val/ and test/, one subfolder
 * of small grayscale PNGs per class. For command-line tests whose assertions are about files, exit
 * codes and bookkeeping, not accuracy: a run on it costs about a second of CPU, where a run on
 * Fashion-MNIST-LT extracts and evaluates 10,000 test images (and runs EM on them) in every stage 2.
 *
 * Class c draws a bright band in column group c on seeded noise, so even one epoch learns
 * something and the methods' results differ.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';

export interface TinyFolder {
  /** Images per class in each split (the same number of classes in each). */
  train: readonly number[];
  val: readonly number[];
  test: readonly number[];
  /** Side in pixels. */
  size: number;
}

/** 4 classes, 24/16/10/6 training images (many > 20, few < 8 with TINY_FOLDER_ARGS), 16 px. */
export const TINY_FOLDER: TinyFolder = {
  train: [24, 16, 10, 6],
  val: [3, 3, 3, 3],
  test: [6, 6, 6, 6],
  size: 16,
};

/** Writes the folder at `root` (classes `c0`, `c1`, ...); the same bytes for the same spec. */
export async function writeImageFolder(root: string, spec: TinyFolder = TINY_FOLDER): Promise<string> {
  let s = 12345;
  const rand = () => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return s >>> 24;
  };
  const { size } = spec;
  const classes = spec.train.length;
  for (const split of ['train', 'val', 'test'] as const) {
    for (let c = 0; c < classes; c++) {
      const dir = join(root, split, `c${c}`);
      mkdirSync(dir, { recursive: true });
      for (let k = 0; k < spec[split][c]!; k++) {
        const px = Buffer.alloc(size * size);
        for (let i = 0; i < px.length; i++)
          px[i] = (rand() >> 2) + (Math.floor(((i % size) * classes) / size) === c ? 150 : 0);
        await sharp(px, { raw: { width: size, height: size, channels: 1 } })
          .png()
          .toFile(join(dir, `${k}.png`));
      }
    }
  }
  return root;
}

/** The data flags of a run on TINY_FOLDER written at `root` (shot thresholds to its counts). */
export const tinyFolderArgs = (root: string, spec: TinyFolder = TINY_FOLDER): string[] => [
  '--dataset',
  'imagefolder',
  '--data-dir',
  root,
  '--image-size',
  String(spec.size),
  '--many-threshold',
  '20',
  '--few-threshold',
  '8',
];
