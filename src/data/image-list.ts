/**
 * Image list files in the ImageNet-LT / Places-LT / iNaturalist format: one
 * `relative/path/to/image.jpg <integer label>` a line, paths relative to a data root. Images are
 * decoded with sharp, resized (shorter side to `imageSize`) and centre-cropped to a square,
 * 3 channels (RGB; grey images are replicated).
 */
import { ConfigError, DataError } from '../errors.ts';
import { readFileChecked } from '../io/read-file.ts';
import { resolveInside } from '../io/safe-path.ts';
import { checkSplits } from './dataset.ts';
import { countPerClass, type ImageSet, type LongTailDataset } from './types.ts';

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

export interface ListEntry {
  path: string;
  label: number;
  line: number;
}

/** Parses a list file; every bad line is an error naming the file and line. */
export function parseImageList(file: string, numClasses?: number): ListEntry[] {
  const text = readFileChecked(file, 'list file').toString('utf8');
  const out: ListEntry[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const m = /^(.*\S)\s+(\S+)$/.exec(line);
    if (!m) throw new DataError(`${file}:${i + 1}: expected 'relative/path label', got '${line}' (no label)`);
    const labelText = m[2]!;
    if (!/^\d+$/.test(labelText)) {
      throw new DataError(`${file}:${i + 1}: label '${labelText}' is not a non-negative integer`);
    }
    const label = Number(labelText);
    if (numClasses !== undefined && label >= numClasses) {
      throw new DataError(`${file}:${i + 1}: label ${label} is out of range 0..${numClasses - 1}`);
    }
    out.push({ path: m[1]!, label, line: i + 1 });
  });
  if (out.length === 0) throw new DataError(`${file}: the list has no images`);
  return out;
}

/**
 * Decodes one image (a path or its bytes) to [size, size, channels] uint8: shorter side resized to
 * `size`, centre crop. A path is read with readFileChecked, so only a regular file is opened.
 */
export async function decodeImage(
  source: string | Uint8Array,
  size: number,
  channels: 1 | 3 = 3,
): Promise<Uint8Array> {
  const bytes = typeof source === 'string' ? readFileChecked(source, 'image') : source;
  // Imported here, not at the top: only the commands that decode images pay for loading sharp.
  const { default: sharp } = await import('sharp');
  let img = sharp(bytes, { failOn: 'error' })
    .rotate()
    .resize(size, size, { fit: 'cover', position: 'centre' })
    .removeAlpha();
  img = channels === 1 ? img.greyscale() : img.toColourspace('srgb');
  const { data, info } = await img.raw().toBuffer({ resolveWithObject: true });
  if (info.channels === channels) return new Uint8Array(data.buffer, data.byteOffset, data.length);
  // sharp keeps one channel for grey input even when asked for sRGB: replicate it.
  const out = new Uint8Array(size * size * channels);
  for (let p = 0; p < size * size; p++)
    for (let c = 0; c < channels; c++) out[p * channels + c] = data[p * info.channels]!;
  return out;
}

export interface LoadListOptions {
  /** Square side after resize and centre crop. Default 64. */
  imageSize?: number;
  /** Images decoded at once. Default 8. */
  concurrency?: number;
  onProgress?: (done: number, total: number) => void;
}

/**
 * Decodes every image of a list into an ImageSet. Every path must resolve (symlinks followed)
 * inside `dataRoot` and be a regular file; all refused, missing and undecodable images are
 * reported together, each with its `file:line`.
 */
export async function loadImageList(
  listFile: string,
  dataRoot: string,
  numClasses: number | undefined,
  opts: LoadListOptions = {},
): Promise<ImageSet> {
  const { imageSize = 64, concurrency = 8, onProgress } = opts;
  checkImageSize(imageSize);
  const entries = parseImageList(listFile, numClasses);
  const per = imageSize * imageSize * 3;
  const pixels = new Uint8Array(entries.length * per);
  const labels = Int32Array.from(entries.map((e) => e.label));
  const problems: string[] = [];
  let next = 0;
  let done = 0;
  const worker = async () => {
    for (;;) {
      const i = next++;
      if (i >= entries.length) return;
      const e = entries[i]!;
      const where = `${listFile}:${e.line}`;
      let bytes: Buffer | null = null;
      try {
        bytes = readFileChecked(resolveInside(dataRoot, e.path, where), 'image');
      } catch (err) {
        if (!(err instanceof DataError)) throw err;
        problems.push(err.message.startsWith(where) ? err.message : `${where}: ${err.message}`);
      }
      if (bytes !== null) {
        try {
          pixels.set(await decodeImage(bytes, imageSize), i * per);
        } catch (err) {
          problems.push(`${where}: cannot decode ${e.path} (${(err as Error).message})`);
        }
      }
      onProgress?.(++done, entries.length);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, concurrency) }, worker));
  if (problems.length > 0) {
    const shown = problems.slice(0, 10).join('\n  ');
    throw new DataError(
      `${problems.length} image(s) of ${listFile} could not be used:\n  ${shown}${problems.length > 10 ? '\n  ...' : ''}`,
    );
  }
  return { pixels, labels, height: imageSize, width: imageSize, channels: 3 };
}

export interface ListDatasetOptions extends LoadListOptions {
  trainList: string;
  valList?: string;
  testList: string;
  dataRoot: string;
  classNames?: string[];
}

/** A long-tailed data set given by list files (ImageNet-LT, Places-LT, iNaturalist 2018). */
export async function loadListDataset(opts: ListDatasetOptions): Promise<LongTailDataset> {
  checkImageSize(opts.imageSize ?? 64);
  const trainEntries = parseImageList(opts.trainList);
  const numClasses = Math.max(...trainEntries.map((e) => e.label)) + 1;
  const train = await loadImageList(opts.trainList, opts.dataRoot, numClasses, opts);
  const counts = countPerClass(train.labels, numClasses);
  const empty = counts.indexOf(0);
  if (empty >= 0) {
    throw new DataError(
      `${opts.trainList}: class ${empty} has no training image (labels must cover 0..${numClasses - 1})`,
    );
  }
  const val = opts.valList ? await loadImageList(opts.valList, opts.dataRoot, numClasses, opts) : null;
  const test = await loadImageList(opts.testList, opts.dataRoot, numClasses, opts);
  checkSplits({
    train: { set: train, source: opts.trainList },
    val: val && opts.valList ? { set: val, source: opts.valList } : null,
    test: { set: test, source: opts.testList },
  });
  return {
    name: 'list',
    classNames: opts.classNames ?? Array.from({ length: numClasses }, (_, i) => String(i)),
    train,
    val,
    test,
    trainCounts: counts,
    profile: { kind: 'given' },
    source: opts.dataRoot,
  };
}
