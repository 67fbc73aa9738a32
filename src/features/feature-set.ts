/**
 * A FeatureSet is what stage 2 needs and all it needs: frozen features for train / val / test,
 * labels, and (for Joint, tau-norm and LWS) the stage-1 linear classifier. It comes from our own
 * backbone or from a feature file (docs/formats.md) a user exported elsewhere.
 */

import { countPerClass } from '../data/types.ts';
import { DataError } from '../errors.ts';
import {
  type ArrayHeader,
  type ArraysToWrite,
  type NpyArray,
  NpyRowReader,
  readArrays,
  writeNpyDir,
  writeNpz,
} from '../io/npy.ts';

export interface FeatureSplit {
  /**
   * [n, dim] row-major. A split left in its file (`inFile`) has none: reading this throws, so
   * a caller that forgot featureRows fails loudly instead of reading nothing.
   */
  features: Float32Array;
  labels: Int32Array;
  /** Set when the features stay in the feature file (loadFeatureFile's `evalInFile`). */
  inFile?: NpyRowReader;
}

/**
 * Rows [start, start + m) of a split's features [m, d]: a view of the array in memory, or read
 * from the file for a split left there (then valid until the split's next read).
 */
export function featureRows(s: FeatureSplit, d: number, start: number, m: number): Float32Array {
  return s.inFile ? s.inFile.read(start, m) : s.features.subarray(start * d, (start + m) * d);
}

/** A split whose features stay in the file, read by rows (featureRows). */
function splitInFile(reader: NpyRowReader, labels: Int32Array): FeatureSplit {
  return {
    labels,
    inFile: reader,
    get features(): Float32Array {
      throw new Error(
        `${reader.array.where}: the features were left in the file; read them with featureRows()`,
      );
    },
  };
}

export interface LinearWeights {
  /** [C, dim], one row per class. */
  weight: Float32Array;
  /** [C]. */
  bias: Float32Array;
}

export interface FeatureSet {
  dim: number;
  numClasses: number;
  classNames: string[];
  /** Training images per class (from the training labels). */
  trainCounts: number[];
  train: FeatureSplit;
  val: FeatureSplit | null;
  test: FeatureSplit;
  classifier: LinearWeights | null;
}

export function rows(s: FeatureSplit): number {
  return s.labels.length;
}

function asFloat32(a: NpyArray, where: string): Float32Array {
  // The reader already narrowed <f8 and widened <f2 chunk by chunk (the `float32` option).
  if (a.data instanceof Float32Array) return a.data;
  throw new DataError(`${where}: expected float features (<f2, <f4 or <f8), got ${a.dtype}`);
}

function asLabels(a: NpyArray, where: string): Int32Array {
  if (a.data instanceof Int32Array) return a.data;
  if (a.data instanceof Uint8Array) return Int32Array.from(a.data);
  throw new DataError(`${where}: expected integer labels (<i4, <i8 or |u1), got ${a.dtype}`);
}

/** The index of the first NaN or +-Inf, or -1. */
function firstNonFinite(x: Float32Array): number {
  // v - v is 0 for a finite v and NaN for NaN or +-Inf, and a NaN stays in the sum: one cheap pass
  // over every value, and the per-element scan only to find the first bad one.
  let acc = 0;
  for (let i = 0; i < x.length; i++) {
    const v = x[i]!;
    acc += v - v;
  }
  if (acc === 0) return -1;
  for (let i = 0; i < x.length; i++) if (!Number.isFinite(x[i]!)) return i;
  return -1;
}

function checkFinite(x: Float32Array, where: string): void {
  const i = firstNonFinite(x);
  if (i >= 0) throw new DataError(`${where}: value ${x[i]} at flat index ${i} is not finite (NaN or Inf)`);
}

/** The arrays of docs/formats.md's feature-file format; anything else in a file is not read. */
export const FEATURE_FILE_ARRAYS = [
  'train_features',
  'train_labels',
  'val_features',
  'val_labels',
  'test_features',
  'test_labels',
  'classifier_weight',
  'classifier_bias',
] as const;

const FEATURE_ARRAYS = ['train_features', 'val_features', 'test_features'];

/**
 * The optional class names: a `|u1` array holding the UTF-8 JSON of a list of strings, one a class
 * in label order (`np.frombuffer(json.dumps(names).encode(), np.uint8)`): any name survives, and
 * the file stays within the numeric dtypes every reader of the format takes.
 */
export const CLASS_NAMES_ARRAY = 'class_names';

function classNamesOf(a: NpyArray, numClasses: number, where: string): string[] {
  const w = `${where}: ${CLASS_NAMES_ARRAY}`;
  if (!(a.data instanceof Uint8Array) || a.shape.length !== 1)
    throw new DataError(
      `${w} must be a 1-D |u1 array of UTF-8 JSON (a list of names), got ${a.dtype} (${a.shape})`,
    );
  let names: unknown;
  try {
    names = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(a.data));
  } catch (e) {
    throw new DataError(`${w} is not UTF-8 JSON (${(e as Error).message.split('\n')[0]})`);
  }
  if (!Array.isArray(names) || !names.every((n) => typeof n === 'string'))
    throw new DataError(`${w} must hold a JSON list of strings`);
  if (names.length !== numClasses)
    throw new DataError(`${w} names ${names.length} classes, the file has ${numClasses}`);
  const dup = names.find((n, i) => names.indexOf(n) !== i);
  if (dup !== undefined) throw new DataError(`${w} names class ${JSON.stringify(dup)} twice`);
  return names as string[];
}
const FLOAT_ARRAYS = [...FEATURE_ARRAYS, 'classifier_weight', 'classifier_bias'];

export interface LoadFeatureFileOptions {
  /**
   * Allocate the `*_features` arrays in SharedArrayBuffers, so worker threads can read them
   * without a copy (`new Float32Array(fs.train.features.buffer, ...)` in the worker). Default true.
   */
  sharedFeatures?: boolean;
  /** Bytes read per step (src/io/npy.ts); default 64 MiB. */
  chunkBytes?: number;
  /**
   * Leave the validation and test features in the file where it can be read in place (a stored
   * .npz entry, as np.savez writes, or a .npy file): they are read once to check them, then by
   * blocks of rows when evaluated (featureRows), so memory holds the training features only.
   * Default false (every split in memory).
   */
  evalInFile?: boolean;
}

const FLOAT_DTYPES = new Set(['<f2', '<f4', '<f8']);
const INT_DTYPES = new Set(['<i4', '<i8', '|u1']);

/**
 * The feature file's arrays checked against one another from their headers alone, before any of
 * them is read: a file whose arrays cannot fit together is refused without reading (or
 * inflating) gigabytes first. Values (finite, labels in range) are checked once read.
 */
function checkFeatureHeaders(path: string, m: ReadonlyMap<string, ArrayHeader>): void {
  const need = (name: string, required: boolean): ArrayHeader | undefined => {
    const a = m.get(name);
    if (a === undefined && required)
      throw new DataError(`${path}: missing '${name}' (found: ${[...m.keys()].join(', ') || 'nothing'})`);
    return a;
  };
  const shape = (a: ArrayHeader) => `(${a.shape.join(', ')})`;
  let dim: number | undefined;
  for (const [prefix, required] of [
    ['train', true],
    ['test', true],
    ['val', false],
  ] as const) {
    const f = need(`${prefix}_features`, required);
    const l = need(`${prefix}_labels`, required || f !== undefined);
    if (f === undefined || l === undefined) continue;
    const w = `${path}: ${prefix}_features`;
    if (!FLOAT_DTYPES.has(f.dtype))
      throw new DataError(`${w}: expected float features (<f2, <f4 or <f8), got ${f.dtype}`);
    if (!INT_DTYPES.has(l.dtype))
      throw new DataError(
        `${path}: ${prefix}_labels: expected integer labels (<i4, <i8 or |u1), got ${l.dtype}`,
      );
    if (f.shape.length !== 2) throw new DataError(`${w} must be 2-D [N, d], got shape ${shape(f)}`);
    if (l.shape.length !== 1)
      throw new DataError(`${path}: ${prefix}_labels must be 1-D [N], got shape ${shape(l)}`);
    const [n, d] = f.shape as [number, number];
    if (n === 0) throw new DataError(`${w} has 0 rows; the ${prefix} split must hold at least one example`);
    if (d === 0)
      throw new DataError(`${w} has 0 columns (shape ${shape(f)}); features need at least one dimension`);
    if (l.shape[0] !== n)
      throw new DataError(
        `${path}: ${prefix}_labels has ${l.shape[0]} entries but ${prefix}_features has ${n} rows`,
      );
    if (dim === undefined) dim = d;
    else if (d !== dim) throw new DataError(`${w} has ${d} columns, train_features has ${dim}`);
  }
  const w = need('classifier_weight', false);
  const b = need('classifier_bias', false);
  if (w !== undefined) {
    if (!FLOAT_DTYPES.has(w.dtype))
      throw new DataError(`${path}: classifier_weight: expected floats (<f2, <f4 or <f8), got ${w.dtype}`);
    if (w.shape.length !== 2 || w.shape[1] !== dim)
      throw new DataError(`${path}: classifier_weight must be [C, ${dim}], got ${shape(w)}`);
    const C = w.shape[0]!;
    if (C === 0) throw new DataError(`${path}: classifier_weight has 0 rows; it needs one per class`);
    if (b !== undefined && (b.shape.length !== 1 || b.shape[0] !== C))
      throw new DataError(`${path}: classifier_bias must be [${C}], got ${shape(b)}`);
    if (b !== undefined && !FLOAT_DTYPES.has(b.dtype))
      throw new DataError(`${path}: classifier_bias: expected floats (<f2, <f4 or <f8), got ${b.dtype}`);
  }
  const names = m.get(CLASS_NAMES_ARRAY);
  if (names !== undefined && (names.dtype !== '|u1' || names.shape.length !== 1))
    throw new DataError(
      `${path}: ${CLASS_NAMES_ARRAY} must be a 1-D |u1 array of UTF-8 JSON (a list of names), got ${names.dtype} ${shape(names)}`,
    );
}

/**
 * Reads a feature file (.npz or folder of .npy, any size) and checks every rule of docs/formats.md.
 * Class names: `classNames` when given, else the file's `class_names`, else "0".."C-1".
 * Shapes are checked from the headers before any array is read (checkFeatureHeaders).
 * Memory is the arrays as float32 (features) and int32 (labels): float64 and float16 files are
 * converted while being read, a chunk at a time, never held whole in their own dtype.
 */
export function loadFeatureFile(
  path: string,
  classNames?: string[],
  opts: LoadFeatureFileOptions = {},
): FeatureSet {
  // A split left in the file is checked for finiteness as it streams past (its flat index kept).
  const firstBad = new Map<string, { at: number; value: number }>();
  const m = readArrays(path, {
    wanted: [...FEATURE_FILE_ARRAYS, CLASS_NAMES_ARRAY],
    shared: opts.sharedFeatures === false ? false : FEATURE_ARRAYS,
    float32: FLOAT_ARRAYS,
    chunkBytes: opts.chunkBytes,
    checkHeaders: (headers) => checkFeatureHeaders(path, headers),
    ...(opts.evalInFile
      ? {
          inPlace: ['val_features', 'test_features'],
          scan: (name: string, v: Float32Array, at: number) => {
            if (firstBad.has(name)) return;
            const i = firstNonFinite(v);
            if (i >= 0) firstBad.set(name, { at: at + i, value: v[i]! });
          },
        }
      : {}),
  });
  const get = (name: string, required: boolean): NpyArray | undefined => {
    const a = m.get(name);
    if (a === undefined && required) {
      throw new DataError(`${path}: missing '${name}' (found: ${[...m.keys()].join(', ') || 'nothing'})`);
    }
    return a;
  };
  const split = (prefix: string, required: boolean): FeatureSplit | null => {
    const f = get(`${prefix}_features`, required);
    const l = get(`${prefix}_labels`, required || f !== undefined);
    if (f === undefined || l === undefined) return null;
    const w = `${path}: ${prefix}_features`;
    if (f.shape.length !== 2) throw new DataError(`${w} must be 2-D [N, d], got shape (${f.shape})`);
    if (l.shape.length !== 1)
      throw new DataError(`${path}: ${prefix}_labels must be 1-D [N], got shape (${l.shape})`);
    if (f.shape[0] === 0) {
      throw new DataError(
        `${path}: ${prefix}_features has 0 rows; the ${prefix} split must hold at least one example`,
      );
    }
    if (l.shape[0] !== f.shape[0]) {
      throw new DataError(
        `${path}: ${prefix}_labels has ${l.shape[0]} entries but ${prefix}_features has ${f.shape[0]} rows`,
      );
    }
    const labels = asLabels(l, `${path}: ${prefix}_labels`);
    if (f.inFile) {
      const bad = firstBad.get(`${prefix}_features`);
      if (bad)
        throw new DataError(`${w}: value ${bad.value} at flat index ${bad.at} is not finite (NaN or Inf)`);
      return splitInFile(new NpyRowReader(f.inFile), labels);
    }
    const features = asFloat32(f, w);
    checkFinite(features, w);
    return { features, labels };
  };
  const train = split('train', true)!;
  const test = split('test', true)!;
  const val = split('val', false);
  const dim = m.get('train_features')!.shape[1]!;
  for (const [name, s] of [
    ['test', test],
    ['val', val],
  ] as const) {
    const cols = s === null ? dim : s.inFile ? s.inFile.cols : s.features.length / Math.max(1, rows(s));
    if (s && cols !== dim && rows(s) > 0)
      throw new DataError(`${path}: ${name}_features has ${cols} columns, train_features has ${dim}`);
  }
  let classifier: LinearWeights | null = null;
  const w = get('classifier_weight', false);
  const b = get('classifier_bias', false);
  let numClasses = 0;
  for (const s of [train, val, test])
    if (s) for (const l of s.labels) numClasses = Math.max(numClasses, l + 1);
  if (w !== undefined) {
    if (w.shape.length !== 2 || w.shape[1] !== dim) {
      throw new DataError(`${path}: classifier_weight must be [C, ${dim}], got (${w.shape})`);
    }
    const C = w.shape[0]!;
    if (C < numClasses)
      throw new DataError(`${path}: classifier_weight has ${C} rows but labels go up to ${numClasses - 1}`);
    numClasses = C;
    const weight = asFloat32(w, `${path}: classifier_weight`);
    checkFinite(weight, `${path}: classifier_weight`);
    let bias: Float32Array = new Float32Array(C);
    if (b !== undefined) {
      if (b.shape.length !== 1 || b.shape[0] !== C)
        throw new DataError(`${path}: classifier_bias must be [${C}], got (${b.shape})`);
      bias = asFloat32(b, `${path}: classifier_bias`);
      checkFinite(bias, `${path}: classifier_bias`);
    }
    classifier = { weight, bias };
  }
  for (const [name, s] of [
    ['train', train],
    ['val', val],
    ['test', test],
  ] as const) {
    if (!s) continue;
    for (let i = 0; i < s.labels.length; i++) {
      const l = s.labels[i]!;
      if (l < 0 || l >= numClasses)
        throw new DataError(`${path}: ${name}_labels[${i}] = ${l} is outside 0..${numClasses - 1}`);
    }
  }
  const trainCounts = countPerClass(train.labels, numClasses);
  const named = m.get(CLASS_NAMES_ARRAY);
  return {
    dim,
    numClasses,
    classNames:
      classNames ??
      (named
        ? classNamesOf(named, numClasses, path)
        : Array.from({ length: numClasses }, (_, i) => String(i))),
    trainCounts,
    train,
    val,
    test,
    classifier,
  };
}

/** Writes a FeatureSet in docs/formats.md's format: `.npz` if the path ends so, else a folder of `.npy`. */
export function saveFeatureFile(path: string, fs: FeatureSet): void {
  const arrays: ArraysToWrite = {};
  const put = (prefix: string, s: FeatureSplit | null) => {
    if (!s) return;
    const data = s.inFile ? s.inFile.read(0, rows(s), new Float32Array(rows(s) * fs.dim)) : s.features;
    arrays[`${prefix}_features`] = { data, shape: [rows(s), fs.dim] };
    arrays[`${prefix}_labels`] = { data: s.labels, shape: [rows(s)] };
  };
  put('train', fs.train);
  put('val', fs.val);
  put('test', fs.test);
  if (fs.classifier) {
    arrays.classifier_weight = { data: fs.classifier.weight, shape: [fs.numClasses, fs.dim] };
    arrays.classifier_bias = { data: fs.classifier.bias, shape: [fs.numClasses] };
  }
  if (fs.classNames.some((n, i) => n !== String(i))) {
    const bytes = new TextEncoder().encode(JSON.stringify(fs.classNames));
    arrays[CLASS_NAMES_ARRAY] = { data: bytes, shape: [bytes.length] };
  }
  if (path.endsWith('.npz')) writeNpz(path, arrays);
  else writeNpyDir(path, arrays);
}
