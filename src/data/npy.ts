/**
 * NumPy `.npy` (format 1.0 / 2.0) and `.npz` reading and writing, for the feature-file format of
 * PROTOCOL.md and for checkpoints. Little-endian `<f4`, `<f8`, `<i4`, `<i8`, `|u1`, C order;
 * anything else is refused with an error that names the file and the problem.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { zipSync } from 'fflate';
import { DataError } from '../errors.ts';
import { writeFileAtomic } from '../io/atomic.ts';
import { maxArrayBytes, RAISE_LIMIT_HINT } from '../io/limits.ts';
import { readFileChecked } from '../io/read-file.ts';
import { ZipArchive, type ZipEntry } from './zip.ts';

export type NpyDtype = '<f4' | '<f8' | '<i4' | '<i8' | '|u1';

export interface NpyArray {
  dtype: NpyDtype;
  shape: number[];
  /** Values as read: f4 -> Float32Array, f8 -> Float64Array, i4/i8 -> Int32Array (i8 checked to fit), u1 -> Uint8Array. */
  data: Float32Array | Float64Array | Int32Array | Uint8Array;
}

const MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]); // \x93NUMPY
const ITEM: Record<NpyDtype, number> = { '<f4': 4, '<f8': 8, '<i4': 4, '<i8': 8, '|u1': 1 };

/** Parses the Python-literal header dict, e.g. {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }. */
function parseHeader(text: string, where: string): { descr: string; fortran: boolean; shape: number[] } {
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(text)?.[1];
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(text)?.[1];
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(text)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined) {
    throw new DataError(`${where}: malformed .npy header ${JSON.stringify(text.trim())}`);
  }
  const shape = shapeText
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
    .map((s) => {
      if (!/^\d+L?$/.test(s)) throw new DataError(`${where}: bad shape entry '${s}' in .npy header`);
      return Number.parseInt(s, 10);
    });
  return { descr, fortran: fortran === 'True', shape };
}

/** What a .npy header says: the dtype, the shape, where the data starts and how many bytes it has. */
export interface NpyHeader {
  dtype: NpyDtype;
  shape: number[];
  /** Offset of the first data byte (preamble + header). */
  start: number;
  /** shape * itemsize. */
  dataBytes: number;
}

/** The longest header accepted (NumPy writes a few hundred bytes; version 1.0 allows 65,535). */
const MAX_HEADER = 1 << 20;

/**
 * Reads the preamble of a .npy file: the header length, or null when `b` is too short to say.
 * Lets a reader know how many bytes hold the header before it has the rest.
 */
function headerEnd(b: Buffer, where: string): number | null {
  if (b.length < 8) return null;
  if (!b.subarray(0, 6).equals(MAGIC))
    throw new DataError(`${where}: not a NumPy .npy file (bad magic string)`);
  const major = b[6]!;
  if (major !== 1 && major !== 2) {
    throw new DataError(
      `${where}: .npy format version ${major}.${b[7]} is not supported (expected 1.0 or 2.0)`,
    );
  }
  const pre = major === 1 ? 10 : 12;
  if (b.length < pre) return null;
  const headerLen = major === 1 ? b.readUInt16LE(8) : b.readUInt32LE(8);
  if (headerLen > MAX_HEADER) {
    throw new DataError(
      `${where}: .npy header length ${headerLen} is implausible (more than ${MAX_HEADER} bytes)`,
    );
  }
  return pre + headerLen;
}

/** Parses and checks a .npy header; `b` must hold at least the whole header. */
export function parseNpyHeader(buf: Uint8Array, where: string): NpyHeader {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  if (b.length < 10 || !b.subarray(0, 6).equals(MAGIC))
    throw new DataError(`${where}: not a NumPy .npy file (bad magic string)`);
  const end = headerEnd(b, where);
  if (end === null || b.length < end) throw new DataError(`${where}: truncated .npy header`);
  const h = parseHeader(b.toString('latin1', b[6] === 1 ? 10 : 12, end), where);
  if (h.fortran) throw new DataError(`${where}: Fortran-order arrays are not supported (save with C order)`);
  const descr = h.descr === '<u1' ? '|u1' : h.descr;
  if (!(descr in ITEM)) {
    throw new DataError(
      `${where}: dtype '${h.descr}' is not supported (expected one of <f4, <f8, <i4, <i8, |u1; little-endian)`,
    );
  }
  const dtype = descr as NpyDtype;
  const dataBytes = h.shape.reduce((a, x) => a * x, 1) * ITEM[dtype];
  return { dtype, shape: h.shape, start: end, dataBytes };
}

/** Builds the typed array from a header and exactly its data bytes (copied if not aligned). */
function npyFromData(h: NpyHeader, raw: Uint8Array, where: string): NpyArray {
  const { dtype } = h;
  const n = h.dataBytes / ITEM[dtype];
  const copy = raw.byteOffset === 0 && raw.byteLength === raw.buffer.byteLength ? raw : new Uint8Array(raw);
  let data: NpyArray['data'];
  switch (dtype) {
    case '<f4':
      data = new Float32Array(copy.buffer, 0, n);
      break;
    case '<f8':
      data = new Float64Array(copy.buffer, 0, n);
      break;
    case '<i4':
      data = new Int32Array(copy.buffer, 0, n);
      break;
    case '<i8': {
      const big = new BigInt64Array(copy.buffer, 0, n);
      data = new Int32Array(n);
      for (let i = 0; i < n; i++) {
        const v = big[i]!;
        if (v > 2147483647n || v < -2147483648n)
          throw new DataError(`${where}: int64 value ${v} at index ${i} does not fit in 32 bits`);
        data[i] = Number(v);
      }
      break;
    }
    case '|u1':
      data = copy;
      break;
  }
  return { dtype, shape: h.shape, data };
}

/** Parses the bytes of one .npy file; `where` names it in errors. */
export function parseNpy(buf: Uint8Array, where: string): NpyArray {
  const h = parseNpyHeader(buf, where);
  const have = buf.byteLength - h.start;
  if (have < h.dataBytes)
    throw new DataError(
      `${where}: truncated: shape (${h.shape}) needs ${h.dataBytes} bytes of data, file has ${have}`,
    );
  // A copy: the caller's buffer (a whole file) is not kept alive by the array.
  return npyFromData(h, new Uint8Array(buf.subarray(h.start, h.start + h.dataBytes)), where);
}

/** Serialises an array as .npy version 1.0 (2.0 if the header would not fit). */
export function encodeNpy(
  data: Float32Array | Int32Array | Uint8Array | Float64Array,
  shape: number[],
): Uint8Array {
  const n = shape.reduce((a, x) => a * x, 1);
  if (n !== data.length) throw new Error(`encodeNpy: shape (${shape}) holds ${n} values, got ${data.length}`);
  const descr =
    data instanceof Float32Array
      ? '<f4'
      : data instanceof Float64Array
        ? '<f8'
        : data instanceof Int32Array
          ? '<i4'
          : '|u1';
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shapeText}, }`;
  let version = 1;
  let pre = 10;
  if (header.length + 1 + pre > 65535) {
    version = 2;
    pre = 12;
  }
  // Pad with spaces so the data starts at a multiple of 64 bytes, header ends with '\n'.
  const total = Math.ceil((pre + header.length + 1) / 64) * 64;
  header = `${header.padEnd(total - pre - 1, ' ')}\n`;
  const out = new Uint8Array(total + data.byteLength);
  out.set(MAGIC, 0);
  out[6] = version;
  out[7] = 0;
  const dv = new DataView(out.buffer);
  if (version === 1) dv.setUint16(8, header.length, true);
  else dv.setUint32(8, header.length, true);
  out.set(Buffer.from(header, 'latin1'), pre);
  out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), total);
  return out;
}

export interface ReadArraysOptions {
  /**
   * Array names (without `.npy`) to read; any other entry or file is skipped without being read
   * or decompressed. Default: every `.npy`.
   */
  wanted?: Iterable<string>;
  /** Ceiling on one array's bytes. Default: LONGTAIL_MAX_ARRAY_BYTES, else 2 GiB (src/io/limits.ts). */
  maxArrayBytes?: number;
}

/** Reads one .npy file (a regular file, no larger than the array ceiling). */
export function readNpy(path: string, opts: Pick<ReadArraysOptions, 'maxArrayBytes'> = {}): NpyArray {
  const maxBytes = maxArrayBytes(opts.maxArrayBytes);
  return parseNpy(readFileChecked(path, '.npy file', { maxBytes, limitHint: RAISE_LIMIT_HINT }), path);
}

/** The `.npy` entries of a listing that the options ask for, as name (without `.npy`) -> entry. */
function selectArrays<T>(names: [string, T][], opts: ReadArraysOptions): [string, T][] {
  const wanted = opts.wanted === undefined ? null : new Set(opts.wanted);
  return names
    .filter(([n]) => n.endsWith('.npy'))
    .map(([n, e]): [string, T] => [n.slice(0, -4), e])
    .filter(([n]) => wanted === null || wanted.has(n));
}

/**
 * Reads the arrays of an .npz archive (stored or deflated), keyed by name without `.npy`.
 * Works from the zip central directory: entries that are not wanted `.npy` arrays are skipped
 * without being decompressed; a wanted entry's declared size must stay under the ceiling and
 * equal what its .npy header (shape x itemsize + header) needs, both checked before it is
 * decompressed, and decompression stops at the declared size. Peak memory is the file plus the
 * arrays it really holds.
 */
export function readNpz(path: string, opts: ReadArraysOptions = {}): Map<string, NpyArray> {
  const limit = maxArrayBytes(opts.maxArrayBytes);
  const zip = new ZipArchive(readFileChecked(path, '.npz archive'), path);
  const entries = zip.entries();
  const out = new Map<string, NpyArray>();
  for (const [name, e] of selectArrays(
    entries.map((x): [string, ZipEntry] => [x.name, x]),
    opts,
  )) {
    const where = `${path}:${e.name}`;
    if (e.size > limit) {
      throw new DataError(
        `${where}: entry declares ${e.size} bytes uncompressed, more than the limit of ${limit} bytes per array${RAISE_LIMIT_HINT}`,
      );
    }
    out.set(name, readNpyEntry(zip, e, where));
  }
  return out;
}

/** One .npy entry of an archive, checked against its declared size before it is decompressed. */
function readNpyEntry(zip: ZipArchive, e: ZipEntry, where: string): NpyArray {
  const head = zip.head(e, (b) => headerEnd(Buffer.from(b.buffer, b.byteOffset, b.byteLength), where));
  const h = parseNpyHeader(head, where);
  if (h.start + h.dataBytes !== e.size) {
    throw new DataError(
      `${where}: entry declares ${e.size} bytes uncompressed, but its .npy header (shape (${h.shape}), ` +
        `${h.dtype}) needs ${h.start + h.dataBytes}; the archive is corrupt or crafted`,
    );
  }
  return npyFromData(h, zip.extract(e, h.start), where);
}

/** Reads a `.npz` archive or a folder of `.npy` files into name -> array. */
export function readArrays(fileOrDir: string, opts: ReadArraysOptions = {}): Map<string, NpyArray> {
  if (!existsSync(fileOrDir)) throw new DataError(`${fileOrDir}: no such file or folder`);
  if (statSync(fileOrDir).isDirectory()) {
    const files = readdirSync(fileOrDir)
      .sort()
      .map((f): [string, string] => [f, join(fileOrDir, f)]);
    if (!files.some(([f]) => f.endsWith('.npy')))
      throw new DataError(`${fileOrDir}: folder holds no .npy files`);
    const out = new Map<string, NpyArray>();
    for (const [name, p] of selectArrays(files, opts)) out.set(name, readNpy(p, opts));
    return out;
  }
  return readNpz(fileOrDir, opts);
}

export type ArraysToWrite = Record<
  string,
  { data: Float32Array | Int32Array | Uint8Array | Float64Array; shape: number[] }
>;

/** Writes arrays as an uncompressed .npz (as np.savez), atomically. */
export function writeNpz(path: string, arrays: ArraysToWrite): void {
  const files: Record<string, [Uint8Array, { level: 0 }]> = {};
  for (const [name, a] of Object.entries(arrays))
    files[`${name}.npy`] = [encodeNpy(a.data, a.shape), { level: 0 }];
  writeFileAtomic(path, zipSync(files));
}

/** Writes arrays as a folder of .npy files, each atomically. */
export function writeNpyDir(dir: string, arrays: ArraysToWrite): void {
  for (const [name, a] of Object.entries(arrays))
    writeFileAtomic(join(dir, `${name}.npy`), encodeNpy(a.data, a.shape));
}
