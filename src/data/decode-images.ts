/**
 * Image files into pixels, for every loader of image files (list files: image-list.ts; image
 * folders: image-folder.ts) and for predict: each image decoded with sharp and resized by the
 * preprocessing contract (preprocess.ts: shorter side to `imageSize`, centre crop to a square),
 * 3 channels (RGB; grey images are replicated). The size checks come first, so a split too large
 * for one array is refused before any image is looked up.
 */
import { ConfigError, DataError } from '../errors.ts';
import { quoted } from '../io/display.ts';
import { MAX_TYPED_ARRAY_LENGTH } from '../io/limits.ts';
import { readFileChecked } from '../io/read-file.ts';
import { resolveInside } from '../io/safe-path.ts';
import { decodeAndResize, type ResizeMode } from './preprocess.ts';
import type { ImageSet } from './types.ts';

/** The square sides a list data set accepts: below 8 nothing is left to learn, above 1024 one image is 3 MB. */
export const IMAGE_SIZE_RANGE = { min: 8, max: 1024 } as const;

/** Refuses an image side outside IMAGE_SIZE_RANGE (or not an integer), naming the flag and value. */
export function checkImageSize(size: number): void {
  const { min, max } = IMAGE_SIZE_RANGE;
  if (!Number.isInteger(size) || size < min || size > max) {
    throw new ConfigError(
      `--image-size must be an integer in ${min}..${max} (the square side images are resized to), got ${size}`,
    );
  }
}

/**
 * Refuses a split whose decoded images would not fit the one Uint8Array an ImageSet holds them in
 * (count * side * side * 3 bytes; V8 allows MAX_TYPED_ARRAY_LENGTH), before any image is looked up:
 * iNaturalist's 437,513 training images at --image-size 64 need 5.38 GB. Says the largest side that fits.
 */
export function checkSplitFits(count: number, imageSize: number, source: string): void {
  const bytes = count * imageSize * imageSize * 3;
  if (bytes <= MAX_TYPED_ARRAY_LENGTH) return;
  const fits = Math.floor(Math.sqrt(MAX_TYPED_ARRAY_LENGTH / (3 * count)));
  const gb = (b: number) => `${(b / 1e9).toFixed(2)} GB`;
  throw new DataError(
    `${source}: ${count} images at --image-size ${imageSize} need ${bytes} bytes (${gb(bytes)}) in one array, ` +
      `more than the ${MAX_TYPED_ARRAY_LENGTH} bytes (${gb(MAX_TYPED_ARRAY_LENGTH)}) one typed array holds; ` +
      (fits >= IMAGE_SIZE_RANGE.min ? `use --image-size ${fits} or less, or ` : '') +
      'extract features with your own backbone and train the classifiers on them (longtail retrain --features FILE)',
  );
}

/**
 * Decodes one image (a path or its bytes) to [size, size, channels] uint8 by the preprocessing
 * contract (preprocess.ts): shorter side resized to `size`, centre crop. A path is read with readFileChecked, so only a regular file is opened.
 */
export async function decodeImage(
  source: string | Uint8Array,
  size: number,
  channels: 1 | 3 = 3,
  mode: ResizeMode = 'shorter-centre-crop',
): Promise<Uint8Array> {
  const bytes = typeof source === 'string' ? readFileChecked(source, 'image') : source;
  return decodeAndResize(bytes, size, channels, mode);
}

/** How images are decoded (the options of every image-file loader). */
export interface DecodeImagesOptions {
  /** Square side after resize and centre crop. Default 64. */
  imageSize?: number;
  /** Images decoded at once. Default 8. */
  concurrency?: number;
  onProgress?: (done: number, total: number) => void;
}

/** An image to decode: its path relative to a root, its label, and where it was named (for messages). */
export interface ImageRef {
  path: string;
  label: number;
  /** `list:line`, or the folder it was found in. */
  where: string;
}

/**
 * Decodes images into one ImageSet (in the order given). Every path must resolve (symlinks
 * followed) inside `root` and be a regular file; all refused, missing and undecodable images are
 * reported together, each with where it was named: one problem is a one-line error, several are
 * listed under a line naming `source`.
 */
export async function decodeImages(
  refs: readonly ImageRef[],
  root: string,
  source: string,
  opts: DecodeImagesOptions = {},
): Promise<ImageSet> {
  const { imageSize = 64, concurrency = 8, onProgress } = opts;
  checkImageSize(imageSize);
  checkSplitFits(refs.length, imageSize, source);
  const per = imageSize * imageSize * 3;
  const pixels = new Uint8Array(refs.length * per);
  const labels = Int32Array.from(refs.map((e) => e.label));
  const problems: string[] = [];
  let next = 0;
  let done = 0;
  const worker = async () => {
    for (;;) {
      const i = next++;
      if (i >= refs.length) return;
      const e = refs[i]!;
      let bytes: Buffer | null = null;
      try {
        bytes = readFileChecked(resolveInside(root, e.path, e.where), 'image');
      } catch (err) {
        if (!(err instanceof DataError)) throw err;
        problems.push(err.message.startsWith(e.where) ? err.message : `${e.where}: ${err.message}`);
      }
      if (bytes !== null) {
        try {
          pixels.set(await decodeImage(bytes, imageSize), i * per);
        } catch (err) {
          problems.push(`${e.where}: cannot decode ${quoted(e.path)} (${(err as Error).message})`);
        }
      }
      onProgress?.(++done, refs.length);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, concurrency) }, worker));
  if (problems.length === 1) throw new DataError(problems[0]!);
  if (problems.length > 1) {
    const shown = problems.slice(0, 10).join('\n  ');
    throw new DataError(
      `${problems.length} image(s) of ${source} could not be used:\n  ${shown}${problems.length > 10 ? '\n  ...' : ''}`,
    );
  }
  return { pixels, labels, height: imageSize, width: imageSize, channels: 3 };
}
