/**
 * Image list files in the ImageNet-LT / Places-LT / iNaturalist format: one
 * `relative/path/to/image.jpg <integer label>` a line, paths relative to a data root. Images are
 * decoded with sharp, resized (shorter side to `imageSize`) and centre-cropped to a square,
 * 3 channels (RGB; grey images are replicated).
 */
import { existsSync, readFileSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import sharp from 'sharp';
import { DataError } from '../errors.ts';
import { countPerClass, type ImageSet, type LongTailDataset } from './types.ts';

export interface ListEntry {
  path: string;
  label: number;
  line: number;
}

/** Parses a list file; every bad line is an error naming the file and line. */
export function parseImageList(file: string, numClasses?: number): ListEntry[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new DataError(`${file}: cannot read list file (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
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

/** Decodes one image to [size, size, 3] uint8: shorter side resized to `size`, centre crop. */
export async function decodeImage(path: string, size: number, channels: 1 | 3 = 3): Promise<Uint8Array> {
  let img = sharp(path, { failOn: 'error' })
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

/** Decodes every image of a list into an ImageSet. All unreadable images are reported together. */
export async function loadImageList(
  listFile: string,
  dataRoot: string,
  numClasses: number | undefined,
  opts: LoadListOptions = {},
): Promise<ImageSet> {
  const { imageSize = 64, concurrency = 8, onProgress } = opts;
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
      const p = isAbsolute(e.path) ? e.path : join(dataRoot, e.path);
      if (!existsSync(p)) problems.push(`${listFile}:${e.line}: image ${p} does not exist`);
      else {
        try {
          pixels.set(await decodeImage(p, imageSize), i * per);
        } catch (err) {
          problems.push(`${listFile}:${e.line}: cannot decode ${p} (${(err as Error).message})`);
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
