/**
 * NumPy `.npy` (format 1.0 / 2.0) and `.npz` reading and writing, for the feature-file format of
 * PROTOCOL.md and for checkpoints. Little-endian `<f4`, `<f8`, `<i4`, `<i8`, `|u1`, C order;
 * anything else is refused with an error that names the file and the problem.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { unzipSync, zipSync } from 'fflate';
import { DataError } from '../errors.ts';
import { writeFileAtomic } from '../io/atomic.ts';

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

/** Parses the bytes of one .npy file; `where` names it in errors. */
export function parseNpy(buf: Uint8Array, where: string): NpyArray {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  if (b.length < 10 || !b.subarray(0, 6).equals(MAGIC))
    throw new DataError(`${where}: not a NumPy .npy file (bad magic string)`);
  const major = b[6]!;
  let headerLen: number;
  let offset: number;
  if (major === 1) {
    headerLen = b.readUInt16LE(8);
    offset = 10;
  } else if (major === 2) {
    if (b.length < 12) throw new DataError(`${where}: truncated .npy header`);
    headerLen = b.readUInt32LE(8);
    offset = 12;
  } else {
    throw new DataError(
      `${where}: .npy format version ${major}.${b[7]} is not supported (expected 1.0 or 2.0)`,
    );
  }
  if (b.length < offset + headerLen) throw new DataError(`${where}: truncated .npy header`);
  const h = parseHeader(b.toString('latin1', offset, offset + headerLen), where);
  if (h.fortran) throw new DataError(`${where}: Fortran-order arrays are not supported (save with C order)`);
  const descr = h.descr === '<u1' ? '|u1' : h.descr;
  if (!(descr in ITEM)) {
    throw new DataError(
      `${where}: dtype '${h.descr}' is not supported (expected one of <f4, <f8, <i4, <i8, |u1; little-endian)`,
    );
  }
  const dtype = descr as NpyDtype;
  const n = h.shape.reduce((a, x) => a * x, 1);
  const start = offset + headerLen;
  const bytes = n * ITEM[dtype];
  if (b.length - start < bytes)
    throw new DataError(
      `${where}: truncated: shape (${h.shape}) needs ${bytes} bytes of data, file has ${b.length - start}`,
    );
  const raw = b.subarray(start, start + bytes);
  const copy = new Uint8Array(raw); // aligned copy
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

/** Reads one .npy file. */
export function readNpy(path: string): NpyArray {
  let buf: Buffer;
  try {
    buf = readFileSync(path);
  } catch (e) {
    throw new DataError(`${path}: cannot read (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
  return parseNpy(buf, path);
}

/** Reads every array of an .npz archive (stored or deflated), keyed by name without `.npy`. */
export function readNpz(path: string): Map<string, NpyArray> {
  let buf: Buffer;
  try {
    buf = readFileSync(path);
  } catch (e) {
    throw new DataError(`${path}: cannot read (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
  let files: Record<string, Uint8Array>;
  try {
    files = unzipSync(buf);
  } catch (e) {
    throw new DataError(`${path}: not a valid .npz (zip) archive (${(e as Error).message})`);
  }
  const out = new Map<string, NpyArray>();
  for (const [name, bytes] of Object.entries(files)) {
    if (!name.endsWith('.npy')) continue;
    out.set(name.slice(0, -4), parseNpy(bytes, `${path}:${name}`));
  }
  return out;
}

/** Reads a `.npz` archive or a folder of `.npy` files into name -> array. */
export function readArrays(fileOrDir: string): Map<string, NpyArray> {
  if (!existsSync(fileOrDir)) throw new DataError(`${fileOrDir}: no such file or folder`);
  if (statSync(fileOrDir).isDirectory()) {
    const out = new Map<string, NpyArray>();
    for (const f of readdirSync(fileOrDir).sort()) {
      if (f.endsWith('.npy')) out.set(basename(f, '.npy'), readNpy(join(fileOrDir, f)));
    }
    if (out.size === 0) throw new DataError(`${fileOrDir}: folder holds no .npy files`);
    return out;
  }
  return readNpz(fileOrDir);
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
