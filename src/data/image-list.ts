/**
 * Image list files in the ImageNet-LT / Places-LT / iNaturalist format: one
 * `relative/path/to/image.jpg <label>` a line (an integer, or a class name), paths relative to a
 * data root. Images are decoded by decode-images.ts (the preprocessing contract: shorter side
 * to `imageSize`, centre crop to a square, RGB).
 */
import { DataError } from '../errors.ts';
import { quoted } from '../io/display.ts';
import { readFileChecked } from '../io/read-file.ts';
import { readClassesFile, sortByCodePoint } from './class-names.ts';
import { checkSplits } from './dataset.ts';
import { checkImageSize, checkSplitFits, type DecodeImagesOptions, decodeImages } from './decode-images.ts';
import { countPerClass, type ImageSet, type LongTailDataset } from './types.ts';

export interface ListEntry {
  path: string;
  label: number;
  line: number;
}

/** A list line as written: the label is an integer or a class name. */
export interface ListLine {
  path: string;
  label: string;
  line: number;
}

const isIntegerLabel = (label: string) => /^\d+$/.test(label);

/**
 * Reads a list file's lines (`relative/path label`); every bad line is an error naming the file
 * and line. Labels are all integers or all class names: a list mixing them is refused at the
 * first line that differs from the first label's kind.
 */
export function readImageList(file: string): ListLine[] {
  const text = readFileChecked(file, 'list file').toString('utf8');
  const out: ListLine[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const m = /^(.*\S)\s+(\S+)$/.exec(line);
    if (!m)
      throw new DataError(`${file}:${i + 1}: expected 'relative/path label', got ${quoted(line)} (no label)`);
    const entry = { path: m[1]!, label: m[2]!, line: i + 1 };
    const first = out[0];
    if (first !== undefined && isIntegerLabel(first.label) !== isIntegerLabel(entry.label)) {
      const kind = (l: ListLine) => (isIntegerLabel(l.label) ? 'an integer' : 'a class name');
      throw new DataError(
        `${file}:${entry.line}: label ${quoted(entry.label)} is ${kind(entry)} but line ${first.line}'s ` +
          `(${quoted(first.label)}) is ${kind(first)}; a list uses integer labels or class names, not both`,
      );
    }
    out.push(entry);
  });
  if (out.length === 0) throw new DataError(`${file}: the list has no images`);
  return out;
}

/** Class names in label order (label i is `names[i]`), and where that order came from. */
export interface ClassOrder {
  names: string[];
  /** The classes file, or the list whose names were sorted. */
  source: string;
}

/**
 * Parses a list file into integer labels. Integer labels must be below `numClasses` (when
 * given); class names are looked up in `classes` (required for them), each unknown name an error
 * naming the file and line.
 */
export function parseImageList(file: string, numClasses?: number, classes?: ClassOrder): ListEntry[] {
  const lines = readImageList(file);
  if (!isIntegerLabel(lines[0]!.label)) {
    if (classes === undefined) {
      throw new DataError(
        `${file}:${lines[0]!.line}: label ${quoted(lines[0]!.label)} is a class name, but no class order is known here (give --classes FILE)`,
      );
    }
    const index = new Map(classes.names.map((n, i) => [n, i]));
    return lines.map((l) => {
      const label = index.get(l.label);
      if (label === undefined) {
        throw new DataError(
          `${file}:${l.line}: class ${quoted(l.label)} is not one of the ${classes.names.length} classes of ${classes.source}`,
        );
      }
      return { path: l.path, label, line: l.line };
    });
  }
  return lines.map((l) => {
    const label = Number(l.label);
    if (numClasses !== undefined && label >= numClasses) {
      throw new DataError(`${file}:${l.line}: label ${label} is out of range 0..${numClasses - 1}`);
    }
    return { path: l.path, label, line: l.line };
  });
}

/** How the images of a list are decoded. */
export type LoadListOptions = DecodeImagesOptions;

/**
 * Decodes every image of a list into an ImageSet (see `decodeImages`); class-name labels are
 * looked up in `classes`.
 */
export async function loadImageList(
  listFile: string,
  dataRoot: string,
  numClasses: number | undefined,
  opts: LoadListOptions & { classes?: ClassOrder } = {},
): Promise<ImageSet> {
  checkImageSize(opts.imageSize ?? 64);
  const entries = parseImageList(listFile, numClasses, opts.classes);
  const refs = entries.map((e) => ({ path: e.path, label: e.label, where: `${listFile}:${e.line}` }));
  return decodeImages(refs, dataRoot, listFile, opts);
}

export interface ListDatasetOptions extends LoadListOptions {
  trainList: string;
  valList?: string;
  testList: string;
  dataRoot: string;
  /** A classes file (one name a line, line 1 is label 0): names integer labels, orders name labels. */
  classesFile?: string;
  classNames?: string[];
}

/**
 * The class order of a list data set: the classes file when given; else, for class-name labels,
 * the training list's names sorted by code point; for integer labels, none (labels are indices).
 */
function classOrderOf(opts: ListDatasetOptions): ClassOrder | undefined {
  if (opts.classesFile !== undefined)
    return { names: readClassesFile(opts.classesFile), source: opts.classesFile };
  const lines = readImageList(opts.trainList);
  if (/^\d+$/.test(lines[0]!.label)) return undefined;
  return { names: sortByCodePoint(new Set(lines.map((l) => l.label))), source: opts.trainList };
}

/**
 * A long-tailed data set given by list files (ImageNet-LT, Places-LT, iNaturalist 2018). Labels
 * are integers 0..C-1, or class names (sorted by code point into labels, or in the order of a
 * classes file); every list of one data set uses the same kind.
 */
export async function loadListDataset(opts: ListDatasetOptions): Promise<LongTailDataset> {
  checkImageSize(opts.imageSize ?? 64);
  const classes = classOrderOf(opts);
  const trainEntries = parseImageList(opts.trainList, classes?.names.length, classes);
  const named = !/^\d+$/.test(readImageList(opts.trainList)[0]!.label);
  for (const list of [opts.valList, opts.testList]) {
    if (list === undefined) continue;
    const first = readImageList(list)[0]!;
    if (/^\d+$/.test(first.label) === named) {
      throw new DataError(
        `${list}:${first.line}: labels are ${named ? 'integers' : 'class names'} but ${opts.trainList}'s are ` +
          `${named ? 'class names' : 'integers'}; every list of a data set uses the same kind of label`,
      );
    }
  }
  // A loop, not Math.max(...labels): spreading iNaturalist's 437,513 labels into one call
  // overflows the stack (about 120k arguments are the most a call takes here).
  const numClasses = classes?.names.length ?? trainEntries.reduce((m, e) => Math.max(m, e.label), -1) + 1;
  const withClasses = { ...opts, ...(classes ? { classes } : {}) };
  // Every split is checked before the first is decoded: a test list too large is refused at once.
  checkSplitFits(trainEntries.length, opts.imageSize ?? 64, opts.trainList);
  for (const list of [opts.valList, opts.testList])
    if (list !== undefined) checkSplitFits(readImageList(list).length, opts.imageSize ?? 64, list);
  const train = await loadImageList(opts.trainList, opts.dataRoot, numClasses, withClasses);
  const counts = countPerClass(train.labels, numClasses);
  const empty = counts.indexOf(0);
  if (empty >= 0) {
    throw new DataError(
      classes
        ? `${opts.trainList}: class ${quoted(classes.names[empty]!)} (${classes.source}) has no training image`
        : `${opts.trainList}: class ${empty} has no training image (labels must cover 0..${numClasses - 1})`,
    );
  }
  const val = opts.valList ? await loadImageList(opts.valList, opts.dataRoot, numClasses, withClasses) : null;
  const test = await loadImageList(opts.testList, opts.dataRoot, numClasses, withClasses);
  checkSplits({
    train: { set: train, source: opts.trainList },
    val: val && opts.valList ? { set: val, source: opts.valList } : null,
    test: { set: test, source: opts.testList },
  });
  return {
    name: 'list',
    classNames: classes?.names ?? opts.classNames ?? Array.from({ length: numClasses }, (_, i) => String(i)),
    train,
    val,
    test,
    trainCounts: counts,
    profile: { kind: 'given' },
    source: opts.dataRoot,
  };
}
