/**
 * Your own images as an image folder (torchvision's ImageFolder, Keras'
 * `image_dataset_from_directory`): `DIR/train/`, `DIR/test/` and optionally `DIR/val/`, each with
 * one subfolder per class. The class name is the folder name; classes are sorted by code point
 * (locale-independent, as Python's `sorted`), and every split has the same class folders.
 *
 * Inside a class folder, images are found by extension (subfolders included); hidden entries
 * (`.DS_Store`, `._x`, `.git`) are ignored, other files are skipped with one warning naming them.
 * Images decode as list images do (decode-images.ts: any size, shorter side resized, centre crop,
 * RGB), under the same path rules: regular files only, no symlink leading out of the data folder.
 *
 * Without `val/`, a balanced validation set is drawn from the training images: for class c (in
 * label order), its images sorted by code point are shuffled by `createRng(valSeed, VAL_STREAM, c)`
 * and the first `valPerClass` held out. The held-out files are recorded in the data set's
 * profile; test images are never drawn from.
 */
import { readdirSync, type Stats, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import { DataError } from '../errors.ts';
import { quoted } from '../io/display.ts';
import { errCode, resolveInside } from '../io/safe-path.ts';
import { createRng } from '../random/rng.ts';
import { compareCodePoints, refuseCaseCollisions, sortByCodePoint } from './class-names.ts';
import { checkSplits } from './dataset.ts';
import {
  checkImageSize,
  checkSplitFits,
  type DecodeImagesOptions,
  decodeImages,
  type ImageRef,
} from './decode-images.ts';
import { IMAGE_EXT } from './inputs.ts';
import type { HeldOutValidation, LongTailDataset } from './types.ts';

/** The RNG stream key of the validation draw (a constant, so the draw depends on the seed alone). */
const VAL_STREAM = 0x7a1d;

/** The split folders: train/ and test/ are needed, val/ is optional. */
const SPLITS = ['train', 'val', 'test'] as const;
type Split = (typeof SPLITS)[number];

const LAYOUT =
  'an image folder holds train/ and test/ (and optionally val/), each with one subfolder per class';

export interface ImageFolderOptions extends DecodeImagesOptions {
  /** The folder holding train/, test/ and optionally val/. */
  dataDir: string;
  /** Without val/: validation images drawn per class from train/. Default 20; 0 for no validation set. */
  valPerClass?: number;
  /** Without val/: the seed of that draw. Default 0. */
  valSeed?: number;
  /** Told once, with every file that was skipped (not an image by its extension, not a class folder). */
  onWarning?: (message: string) => void;
}

/** Class name -> image paths relative to the data folder, sorted by code point. */
type ClassImages = Map<string, string[]>;

const hidden = (name: string) => name.startsWith('.');
const isImageName = (name: string) => IMAGE_EXT.has(extname(name).toLowerCase());

function statOrNull(path: string): Stats | null {
  try {
    return statSync(path);
  } catch {
    return null;
  }
}

/** Up to `max` names quoted, then how many more. */
function nameList(names: readonly string[], max = 10): string {
  const shown = names.slice(0, max).map(quoted).join(', ');
  return names.length > max ? `${shown} and ${names.length - max} more` : shown;
}

/** Entries of a folder, hidden ones left out, sorted by code point. */
function entries(dir: string): string[] {
  try {
    return readdirSync(dir)
      .filter((n) => !hidden(n))
      .sort(compareCodePoints);
  } catch (e) {
    throw new DataError(`${dir}: cannot list the folder (${errCode(e)})`);
  }
}

/**
 * The images under a class folder, subfolders included (a symlinked folder is followed once,
 * and only inside the data folder). Files that are not images by extension go to `skipped`.
 */
function imagesUnder(dataDir: string, rel: string, skipped: string[], seen: Set<string>): string[] {
  const out: string[] = [];
  for (const name of entries(join(dataDir, rel))) {
    const childRel = `${rel}/${name}`;
    const s = statOrNull(join(dataDir, childRel));
    if (s?.isDirectory()) {
      const real = resolveInside(dataDir, childRel, join(dataDir, rel));
      if (seen.has(real)) continue;
      seen.add(real);
      // One by one: a spread of more than ~120k names into push() overflows the stack.
      for (const f of imagesUnder(dataDir, childRel, skipped, seen)) out.push(f);
    } else if (isImageName(name)) {
      out.push(childRel); // a FIFO, a device or a dangling link is refused when it is read
    } else skipped.push(join(dataDir, childRel));
  }
  return out.sort(compareCodePoints);
}

/** One split folder's classes and images; null for a missing optional val/. */
function listSplit(dataDir: string, split: Split, skipped: string[]): ClassImages | null {
  const dir = join(dataDir, split);
  const s = statOrNull(dir);
  if (s === null) {
    if (split === 'val') return null;
    throw new DataError(`${dataDir}: no ${split}/ folder; ${LAYOUT}`);
  }
  if (!s.isDirectory()) throw new DataError(`${dir}: is a file, not a folder; ${LAYOUT}`);
  const realSplit = resolveInside(dataDir, split, dataDir);
  const classes: ClassImages = new Map();
  for (const name of entries(dir)) {
    const cs = statOrNull(join(dir, name));
    if (!cs?.isDirectory()) {
      skipped.push(join(dir, name));
      continue;
    }
    const real = resolveInside(dataDir, `${split}/${name}`, dir);
    classes.set(name, imagesUnder(dataDir, `${split}/${name}`, skipped, new Set([realSplit, real])));
  }
  return classes;
}

/** Refuses a split whose class folders are not exactly train/'s, naming the missing and the extra ones. */
function checkSameClasses(
  dataDir: string,
  split: Split,
  classes: ClassImages,
  names: readonly string[],
): void {
  const missing = names.filter((n) => !classes.has(n));
  const extra = sortByCodePoint([...classes.keys()].filter((n) => !names.includes(n)));
  if (missing.length === 0 && extra.length === 0) return;
  const parts = [
    ...(missing.length > 0 ? [`class folder(s) ${nameList(missing)} of train/ missing`] : []),
    ...(extra.length > 0 ? [`class folder(s) ${nameList(extra)} not in train/`] : []),
  ];
  throw new DataError(
    `${join(dataDir, split)}: ${parts.join('; ')}; every split needs the same ${names.length} class folders as train/`,
  );
}

/**
 * Draws `perClass` validation images from each class's training images (see the module comment);
 * refuses, naming them, the classes that would be left without a training image.
 */
function drawValidation(
  dataDir: string,
  train: ClassImages,
  names: readonly string[],
  perClass: number,
  seed: number,
): { train: string[][]; val: string[][] } {
  const small = names.filter((n) => train.get(n)!.length < perClass + 1);
  if (small.length > 0) {
    const shown = small
      .slice(0, 10)
      .map((n) => `${quoted(n)} (${train.get(n)!.length})`)
      .join(', ');
    throw new DataError(
      `${join(dataDir, 'train')}: class(es) ${shown}${small.length > 10 ? ` and ${small.length - 10} more` : ''} ` +
        `too small to draw ${perClass} validation images (--val-per-class ${perClass}) and keep one for training ` +
        `(each needs at least ${perClass + 1}); add images, add a val/ folder, or lower --val-per-class`,
    );
  }
  const out = { train: [] as string[][], val: [] as string[][] };
  names.forEach((n, c) => {
    const files = train.get(n)!;
    const order = createRng(seed, VAL_STREAM, c).permutation(files.length);
    const held = new Set(Array.from(order.subarray(0, perClass)));
    out.val.push(files.filter((_, i) => held.has(i)));
    out.train.push(files.filter((_, i) => !held.has(i)));
  });
  return out;
}

const refsOf = (perClass: readonly (readonly string[])[], where: string): ImageRef[] =>
  perClass.flatMap((files, label) => files.map((path) => ({ path, label, where })));

/** Loads an image folder (see the module comment) as a data set named `imagefolder`. */
export async function loadImageFolder(opts: ImageFolderOptions): Promise<LongTailDataset> {
  const { dataDir, valPerClass = 20, valSeed = 0 } = opts;
  checkImageSize(opts.imageSize ?? 64);
  const top = statOrNull(dataDir);
  if (top === null) throw new DataError(`${dataDir}: no such folder (--data-dir); ${LAYOUT}`);
  if (!top.isDirectory()) throw new DataError(`${dataDir}: is a file, not a folder (--data-dir); ${LAYOUT}`);

  const skipped: string[] = [];
  const split = Object.fromEntries(SPLITS.map((s) => [s, listSplit(dataDir, s, skipped)])) as Record<
    Split,
    ClassImages | null
  >;
  const train = split.train!;
  const names = sortByCodePoint(train.keys());
  if (names.length === 0)
    throw new DataError(`${join(dataDir, 'train')}: no class folders (one subfolder per class)`);
  refuseCaseCollisions(names, join(dataDir, 'train'));
  for (const s of ['test', 'val'] as const) {
    const c = split[s];
    if (c !== null) checkSameClasses(dataDir, s, c, names);
  }
  for (const s of SPLITS) {
    const c = split[s];
    const empty = names.find((n) => c !== null && c.get(n)!.length === 0);
    if (empty !== undefined) {
      throw new DataError(
        `${join(dataDir, s, empty)}: class folder ${quoted(empty)} holds no images (by extension: ${[...IMAGE_EXT].join(', ')})`,
      );
    }
  }
  if (skipped.length > 0) {
    opts.onWarning?.(
      `skipped ${skipped.length} file(s) under ${dataDir} that are not images (by extension) or not class folders: ` +
        `${skipped.slice(0, 20).join(', ')}${skipped.length > 20 ? ` and ${skipped.length - 20} more` : ''}`,
    );
  }

  const perClass = (c: ClassImages) => names.map((n) => c.get(n)!);
  let trainFiles = perClass(train);
  let valFiles: string[][] | null = split.val === null ? null : perClass(split.val);
  let validation: HeldOutValidation | undefined;
  if (split.val === null && valPerClass > 0) {
    const drawn = drawValidation(dataDir, train, names, valPerClass, valSeed);
    trainFiles = drawn.train;
    valFiles = drawn.val;
    validation = { from: 'train/', perClass: valPerClass, seed: valSeed, files: drawn.val.flat() };
  }

  const dirOf = (s: Split) => join(dataDir, s);
  const size = opts.imageSize ?? 64;
  checkSplitFits(trainFiles.flat().length, size, dirOf('train'));
  if (valFiles) checkSplitFits(valFiles.flat().length, size, dirOf(validation ? 'train' : 'val'));
  checkSplitFits(perClass(split.test!).flat().length, size, dirOf('test'));
  const decoded = {
    train: await decodeImages(refsOf(trainFiles, dataDir), dataDir, dirOf('train'), opts),
    val:
      valFiles &&
      (await decodeImages(refsOf(valFiles, dataDir), dataDir, dirOf(validation ? 'train' : 'val'), opts)),
    test: await decodeImages(refsOf(perClass(split.test!), dataDir), dataDir, dirOf('test'), opts),
  };
  checkSplits({
    train: { set: decoded.train, source: dirOf('train') },
    val: decoded.val && { set: decoded.val, source: dirOf(validation ? 'train' : 'val') },
    test: { set: decoded.test, source: dirOf('test') },
  });
  return {
    name: 'imagefolder',
    classNames: names,
    ...decoded,
    trainCounts: trainFiles.map((f) => f.length),
    profile: validation ? { kind: 'given', validation } : { kind: 'given' },
    source: validation
      ? `${dataDir} (validation: ${valPerClass} per class drawn from train/ with --val-seed ${valSeed})`
      : dataDir,
  };
}
