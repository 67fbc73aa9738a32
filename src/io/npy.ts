/**
 * NumPy `.npy` (format 1.0 / 2.0) and `.npz` reading and writing, for the feature-file format of
 * docs/formats.md and for checkpoints. Little-endian `<f2`, `<f4`, `<f8`, `<i4`, `<i8`, `|u1`, C
 * order; anything else is refused with an error that names the file and the problem.
 *
 * Files of any size: nothing reads a whole file into one buffer. A `.npy` file is read by offset,
 * its header first (checked against the file's size), then its data `chunkBytes` at a time straight
 * into the destination typed array; an `.npz` is read from its central directory, a stored entry
 * straight into its array, a deflated one inflated in a stream into it. Conversions (f2 -> f32,
 * f8 -> f32 on request, i8 -> i32) happen chunk by chunk, so the destination array is the only
 * full-size allocation. Writers stream the same way.
 */
import {
  closeSync,
  existsSync,
  fstatSync,
  openSync,
  readdirSync,
  readSync,
  statSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { DataError } from '../errors.ts';
import { writeFileAtomicWith } from './atomic.ts';
import { adviseHugePages, HUGE_PAGE_MIN_BYTES } from './huge-pages.ts';
import { DEFAULT_CHUNK_BYTES, MAX_TYPED_ARRAY_LENGTH, maxArrayBytes, RAISE_LIMIT_HINT } from './limits.ts';
import { type ByteSink, type ByteSource, bufferSource, fileSource, pumpRange } from './read-file.ts';
import { type ByteRun, writeStoredZip, ZipArchive, type ZipEntry } from './zip.ts';

export type NpyDtype = '<f2' | '<f4' | '<f8' | '<i4' | '<i8' | '|u1';

export interface NpyArray {
  /** The dtype in the file. */
  dtype: NpyDtype;
  shape: number[];
  /**
   * Values as read: f4 and f2 -> Float32Array (f2 widened), f8 -> Float64Array (Float32Array with
   * the `float32` option), i4/i8 -> Int32Array (i8 checked to fit), u1 -> Uint8Array. Backed by a
   * SharedArrayBuffer with the `shared` option.
   */
  data: Float32Array | Float64Array | Int32Array | Uint8Array;
  /**
   * Set for an array read with `inPlace` that could stay in its file: `data` is then empty and
   * the values are read by rows with NpyRowReader.
   */
  inFile?: ArrayInFile;
}

/** Where an array left in its file lies (a .npy file, or a stored .npz entry). */
export interface ArrayInFile {
  path: string;
  /** The file (and entry) for messages. */
  where: string;
  dtype: NpyDtype;
  shape: number[];
  /** Offset of the array's first data byte in the file. */
  offset: number;
  /** The file's size and modification time when it was read: a later read refuses a changed file. */
  size: number;
  mtimeMs: number;
}

const MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]); // \x93NUMPY
const ITEM: Record<NpyDtype, number> = { '<f2': 2, '<f4': 4, '<f8': 8, '<i4': 4, '<i8': 8, '|u1': 1 };

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

const asBuffer = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength);

/** Parses and checks a .npy header; `b` must hold at least the whole header. */
export function parseNpyHeader(buf: Uint8Array, where: string): NpyHeader {
  const b = asBuffer(buf);
  if (b.length < 10 || !b.subarray(0, 6).equals(MAGIC))
    throw new DataError(`${where}: not a NumPy .npy file (bad magic string)`);
  const end = headerEnd(b, where);
  if (end === null || b.length < end) throw new DataError(`${where}: truncated .npy header`);
  const h = parseHeader(b.toString('latin1', b[6] === 1 ? 10 : 12, end), where);
  if (h.fortran) throw new DataError(`${where}: Fortran-order arrays are not supported (save with C order)`);
  const descr = h.descr === '<u1' ? '|u1' : h.descr;
  if (!(descr in ITEM)) {
    throw new DataError(
      `${where}: dtype '${h.descr}' is not supported (expected one of <f2, <f4, <f8, <i4, <i8, |u1; little-endian)`,
    );
  }
  const dtype = descr as NpyDtype;
  const count = h.shape.reduce((a, x) => a * x, 1);
  if (!Number.isSafeInteger(count * ITEM[dtype]))
    throw new DataError(`${where}: shape (${h.shape}) in the .npy header is implausibly large`);
  return { dtype, shape: h.shape, start: end, dataBytes: count * ITEM[dtype] };
}

/** How one array is read. */
interface ArrayReadOptions {
  limit: number;
  chunkBytes: number;
  shared: boolean;
  float32: boolean;
}

/** Half-precision bits -> single-precision bits, for all 65,536 values (built on first use). */
let halfTable: Uint32Array | null = null;
function halfToFloatBits(): Uint32Array {
  if (halfTable) return halfTable;
  const f = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const e = (h >> 10) & 0x1f;
    const m = h & 0x3ff;
    // IEEE 754 binary16: subnormals m * 2^-24, infinities and NaNs at e = 31; all exact in f32.
    f[h] =
      e === 0
        ? sign * m * 2 ** -24
        : e === 31
          ? m === 0
            ? sign * Infinity
            : Number.NaN
          : sign * (1 + m / 1024) * 2 ** (e - 15);
  }
  halfTable = new Uint32Array(f.buffer);
  return halfTable;
}

/**
 * Fills the destination typed array of one .npy array from its data bytes, in order, in pieces
 * of any length (a piece may end inside an element). Same-layout dtypes take bytes in place
 * (`direct`); the others go through a small aligned buffer and are converted element by element.
 */
class NpyDecoder implements ByteSink {
  readonly data: NpyArray['data'];
  private readonly bytes: Uint8Array;
  /** Bytes placed so far (direct), or elements converted so far. */
  private pos = 0;
  private readonly convert: ((src: ArrayBuffer, count: number, at: number) => void) | null;
  private scratch: Uint8Array | null = null;
  private fill = 0;

  constructor(
    private readonly h: NpyHeader,
    private readonly where: string,
    opts: ArrayReadOptions,
  ) {
    const n = h.dataBytes / ITEM[h.dtype];
    if (n > MAX_TYPED_ARRAY_LENGTH) {
      throw new DataError(
        `${where}: shape (${h.shape}) holds ${n} values, more than the ${MAX_TYPED_ARRAY_LENGTH} one typed array holds in Node`,
      );
    }
    const wide = h.dtype === '<f8' && !opts.float32;
    const outItem = h.dtype === '|u1' ? 1 : wide ? 8 : 4;
    if (n * outItem > opts.limit) {
      throw new DataError(
        `${where}: shape (${h.shape}) needs ${n * outItem} bytes in memory, more than the limit of ${opts.limit} bytes per array${RAISE_LIMIT_HINT}`,
      );
    }
    const buf = opts.shared ? new SharedArrayBuffer(n * outItem) : new ArrayBuffer(n * outItem);
    this.bytes = n * outItem <= MAX_TYPED_ARRAY_LENGTH ? new Uint8Array(buf) : new Uint8Array(0);
    // Before the first byte lands: a big array is then faulted in 2 MiB at a time, not 4 KiB.
    for (let at = 0; n * outItem >= HUGE_PAGE_MIN_BYTES && at < buf.byteLength; at += 2 ** 31)
      adviseHugePages(new Uint8Array(buf, at, Math.min(2 ** 31, buf.byteLength - at)));
    switch (h.dtype) {
      case '<f4':
        this.data = new Float32Array(buf);
        this.convert = null;
        break;
      case '<i4':
        this.data = new Int32Array(buf);
        this.convert = null;
        break;
      case '|u1':
        this.data = new Uint8Array(buf);
        this.convert = null;
        break;
      case '<f8': {
        if (wide) {
          this.data = new Float64Array(buf);
          this.convert = null;
          break;
        }
        const out = new Float32Array(buf);
        this.data = out;
        this.convert = (src, count, at) => out.set(new Float64Array(src, 0, count), at);
        break;
      }
      case '<f2': {
        this.data = new Float32Array(buf);
        const out = new Uint32Array(buf);
        const table = halfToFloatBits();
        this.convert = (src, count, at) => {
          const h16 = new Uint16Array(src, 0, count);
          for (let i = 0; i < count; i++) out[at + i] = table[h16[i]!]!;
        };
        break;
      }
      case '<i8': {
        const out = new Int32Array(buf);
        this.data = out;
        this.convert = (src, count, at) => {
          const w = new Int32Array(src, 0, 2 * count);
          for (let i = 0; i < count; i++) {
            const lo = w[2 * i]!;
            // Fits in 32 bits iff the high word is the low word's sign extension.
            if (w[2 * i + 1] !== lo >> 31) {
              const v = new BigInt64Array(src, 8 * i, 1)[0];
              throw new DataError(`${where}: int64 value ${v} at index ${at + i} does not fit in 32 bits`);
            }
            out[at + i] = lo;
          }
        };
        break;
      }
    }
    if (this.convert) {
      const item = ITEM[h.dtype];
      // Whole elements, at least one: a tiny chunk size makes pieces cross element boundaries.
      const size = Math.max(item, Math.floor(Math.min(opts.chunkBytes, 1 << 20) / item) * item);
      this.scratch = new Uint8Array(size);
    }
  }

  /** A view of the destination's bytes: a full-size array past 2^32 bytes is viewed in windows. */
  private window(from: number, length: number): Uint8Array {
    const buf = this.data.buffer;
    return this.bytes.length > 0
      ? this.bytes.subarray(from, from + length)
      : new Uint8Array(buf, from, length);
  }

  direct(max: number): Uint8Array | null {
    if (this.convert) return null;
    const rem = this.data.byteLength - this.pos;
    if (rem <= 0) throw new DataError(`${this.where}: more data than shape (${this.h.shape}) holds`);
    return this.window(this.pos, Math.min(max, rem));
  }

  advance(n: number): void {
    this.pos += n;
  }

  write(piece: Uint8Array): void {
    if (!this.convert) {
      if (this.pos + piece.length > this.data.byteLength)
        throw new DataError(`${this.where}: more data than shape (${this.h.shape}) holds`);
      this.window(this.pos, piece.length).set(piece);
      this.pos += piece.length;
      return;
    }
    const s = this.scratch!;
    const item = ITEM[this.h.dtype];
    for (let p = 0; p < piece.length; ) {
      const take = Math.min(piece.length - p, s.length - this.fill);
      s.set(piece.subarray(p, p + take), this.fill);
      this.fill += take;
      p += take;
      const whole = Math.floor(this.fill / item);
      if (whole === 0) continue;
      if (this.pos + whole > this.data.length)
        throw new DataError(`${this.where}: more data than shape (${this.h.shape}) holds`);
      this.convert(s.buffer as ArrayBuffer, whole, this.pos);
      this.pos += whole;
      // The bytes of a split element wait at the start for the next piece.
      s.copyWithin(0, whole * item, this.fill);
      this.fill -= whole * item;
    }
  }

  /** The array, once every data byte has arrived. */
  result(): NpyArray {
    const done = this.convert ? this.pos * ITEM[this.h.dtype] + this.fill : this.pos;
    if (done !== this.h.dataBytes)
      throw new DataError(
        `${this.where}: truncated: shape (${this.h.shape}) needs ${this.h.dataBytes} bytes of data, got ${done}`,
      );
    return { dtype: this.h.dtype, shape: this.h.shape, data: this.data };
  }
}

/** Converts `count` elements of a float dtype (bytes in `src`) to float32 into `out` at `at`. */
function floatsInto(
  dtype: NpyDtype,
  src: ArrayBuffer,
  srcOffset: number,
  count: number,
  out: Float32Array,
  at: number,
): void {
  switch (dtype) {
    case '<f4':
      out.set(new Float32Array(src, srcOffset, count), at);
      return;
    case '<f8':
      out.set(new Float64Array(src, srcOffset, count), at);
      return;
    case '<f2': {
      const table = halfToFloatBits();
      const h16 = new Uint16Array(src, srcOffset, count);
      const o = new Uint32Array(out.buffer, out.byteOffset + 4 * at, count);
      for (let i = 0; i < count; i++) o[i] = table[h16[i]!]!;
      return;
    }
    default:
      throw new Error(`floatsInto: ${dtype} is not a float dtype`);
  }
}

/**
 * A sink that keeps nothing: the data bytes of one float array, converted to float32 a chunk at a
 * time and shown to `visit` (for arrays left in their file, read once to check their values).
 */
class ScanSink implements ByteSink {
  private readonly scratch: Uint8Array;
  private readonly values: Float32Array;
  private fill = 0;
  private at = 0;
  private readonly item: number;

  constructor(
    private readonly h: NpyHeader,
    chunkBytes: number,
    private readonly visit: (values: Float32Array, at: number) => void,
  ) {
    this.item = ITEM[h.dtype];
    const size = Math.max(this.item, Math.floor(Math.min(chunkBytes, 1 << 22) / this.item) * this.item);
    this.scratch = new Uint8Array(size);
    this.values = new Float32Array(size / this.item);
  }

  direct(): Uint8Array | null {
    return null;
  }

  advance(): void {}

  write(piece: Uint8Array): void {
    for (let p = 0; p < piece.length; ) {
      const take = Math.min(piece.length - p, this.scratch.length - this.fill);
      this.scratch.set(piece.subarray(p, p + take), this.fill);
      this.fill += take;
      p += take;
      if (this.fill === this.scratch.length) this.flush();
    }
  }

  private flush(): void {
    const whole = Math.floor(this.fill / this.item);
    if (whole === 0) return;
    floatsInto(this.h.dtype, this.scratch.buffer as ArrayBuffer, 0, whole, this.values, 0);
    this.visit(this.values.subarray(0, whole), this.at);
    this.at += whole;
    this.scratch.copyWithin(0, whole * this.item, this.fill);
    this.fill -= whole * this.item;
  }

  /** Checks every byte arrived (after the last piece). */
  finish(where: string): void {
    this.flush();
    const done = this.at * this.item + this.fill;
    if (done !== this.h.dataBytes)
      throw new DataError(
        `${where}: truncated: shape (${this.h.shape}) needs ${this.h.dataBytes} bytes of data, got ${done}`,
      );
  }
}

/**
 * Rows of a 2-D float array left in its file (ArrayInFile), read by offset and converted to
 * float32. The file is opened for each read and must still be the one that was checked (same
 * size and modification time).
 */
export class NpyRowReader {
  readonly rows: number;
  readonly cols: number;
  private scratch: Float32Array | null = null;
  private bytes: Uint8Array | null = null;

  constructor(readonly array: ArrayInFile) {
    this.rows = array.shape[0] ?? 1;
    this.cols = array.shape.length > 1 ? array.shape.slice(1).reduce((a, b) => a * b, 1) : 1;
  }

  /**
   * Rows [start, start + m) as float32 [m, cols]: into `out` when given, else into the reader's
   * own buffer (valid until its next read).
   */
  read(start: number, m: number, out?: Float32Array): Float32Array {
    const a = this.array;
    if (
      !(
        Number.isSafeInteger(start) &&
        Number.isSafeInteger(m) &&
        start >= 0 &&
        m >= 0 &&
        start + m <= this.rows
      )
    )
      throw new Error(`${a.where}: rows ${start}..${start + m} are outside 0..${this.rows}`);
    const count = m * this.cols;
    let dest = out;
    if (dest === undefined) {
      if (!this.scratch || this.scratch.length < count) this.scratch = new Float32Array(count);
      dest = this.scratch.subarray(0, count);
    } else if (dest.length < count)
      throw new Error(`${a.where}: output holds ${dest.length} values, ${count} needed`);
    const item = ITEM[a.dtype];
    const length = count * item;
    // float32 lands in place; the other dtypes go through a byte buffer and are converted.
    let target: Uint8Array;
    if (a.dtype === '<f4') target = new Uint8Array(dest.buffer, dest.byteOffset, length);
    else {
      if (!this.bytes || this.bytes.length < length) this.bytes = new Uint8Array(length);
      target = this.bytes.subarray(0, length);
    }
    let fd: number;
    try {
      fd = openSync(a.path, 'r');
    } catch (e) {
      throw new DataError(
        `${a.where}: cannot reopen to read rows (${(e as NodeJS.ErrnoException).code ?? e})`,
      );
    }
    try {
      const st = fstatSync(fd);
      if (st.size !== a.size || st.mtimeMs !== a.mtimeMs)
        throw new DataError(`${a.where}: the file changed since it was read; read it again`);
      const position = a.offset + start * this.cols * item;
      for (let got = 0; got < length; ) {
        const n = readSync(fd, target, got, Math.min(length - got, 1 << 30), position + got);
        if (n === 0) throw new DataError(`${a.where}: ended at byte ${position + got} (truncated)`);
        got += n;
      }
    } finally {
      closeSync(fd);
    }
    if (a.dtype !== '<f4')
      floatsInto(a.dtype, target.buffer as ArrayBuffer, target.byteOffset, count, dest, 0);
    return dest.subarray(0, count);
  }
}

/** Reads the header of a source holding exactly a .npy file, checked against the source's size. */
function npyHeaderFrom(src: ByteSource): NpyHeader {
  const where = src.where;
  const pre = new Uint8Array(Math.min(src.size, 12));
  src.readInto(pre, 0);
  const end = headerEnd(asBuffer(pre), where);
  if (end === null || end > src.size) {
    if (pre.length >= 6 && !asBuffer(pre).subarray(0, 6).equals(MAGIC))
      throw new DataError(`${where}: not a NumPy .npy file (bad magic string)`);
    throw new DataError(`${where}: truncated .npy header (the file has ${src.size} bytes)`);
  }
  const head = new Uint8Array(end);
  src.readInto(head, 0);
  const h = parseNpyHeader(head, where);
  const have = src.size - h.start;
  if (have < h.dataBytes)
    throw new DataError(
      `${where}: truncated: shape (${h.shape}) needs ${h.dataBytes} bytes of data, file has ${have}`,
    );
  return h;
}

/** Reads one .npy array from a source holding exactly a .npy file (header, then data). */
function readNpyFrom(src: ByteSource, opts: ArrayReadOptions): NpyArray {
  const h = npyHeaderFrom(src);
  const dec = new NpyDecoder(h, src.where, opts);
  pumpRange(src, h.start, h.dataBytes, dec, opts.chunkBytes);
  return dec.result();
}

/** Parses the bytes of one .npy file; `where` names it in errors. The array does not share `buf`. */
export function parseNpy(buf: Uint8Array, where: string, opts: ReadNpyOptions = {}): NpyArray {
  return readNpyFrom(bufferSource(buf, where), resolve(opts, opts.shared === true, opts.float32 === true));
}

/** The .npy header (preamble, dict, padding) for an array of this dtype and shape. */
function npyHeader(descr: string, shape: number[]): Uint8Array {
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
  const out = new Uint8Array(total);
  out.set(MAGIC, 0);
  out[6] = version;
  out[7] = 0;
  const dv = new DataView(out.buffer);
  if (version === 1) dv.setUint16(8, header.length, true);
  else dv.setUint32(8, header.length, true);
  out.set(Buffer.from(header, 'latin1'), pre);
  return out;
}

type WritableArray = Float32Array | Int32Array | Uint8Array | Float64Array;

/** The header and data of an array as .npy, without copying the data. */
function npyParts(data: WritableArray, shape: number[]): ByteRun[] {
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
  const header = npyHeader(descr, shape);
  return [header, { buffer: data.buffer, byteOffset: data.byteOffset, byteLength: data.byteLength }];
}

/** Serialises an array as .npy version 1.0 (2.0 if the header would not fit), in one buffer. */
export function encodeNpy(data: WritableArray, shape: number[]): Uint8Array {
  const [header, body] = npyParts(data, shape) as [Uint8Array, ByteRun];
  const out = new Uint8Array(header.length + body.byteLength);
  out.set(header, 0);
  out.set(new Uint8Array(body.buffer, body.byteOffset, body.byteLength), header.length);
  return out;
}

export interface ReadNpyOptions {
  /** Ceiling on one array's bytes. Default: LONGTAIL_MAX_ARRAY_BYTES, else the machine's memory (src/io/limits.ts). */
  maxArrayBytes?: number;
  /** Bytes read (or inflated) per step. Default 64 MiB; any size >= 1 gives the same arrays. */
  chunkBytes?: number;
  /** Allocate arrays in a SharedArrayBuffer (to hand to worker threads without copying). */
  shared?: boolean;
  /** Return `<f8` arrays as Float32Array, converted chunk by chunk (no float64 copy in memory). */
  float32?: boolean;
}

export interface ReadArraysOptions extends Omit<ReadNpyOptions, 'shared' | 'float32'> {
  /**
   * Array names (without `.npy`) to read; any other entry or file is skipped without being read
   * or decompressed. Default: every `.npy`.
   */
  wanted?: Iterable<string>;
  /** As ReadNpyOptions.shared: for every array (true) or for the arrays named. */
  shared?: boolean | Iterable<string>;
  /** As ReadNpyOptions.float32: for every array (true) or for the arrays named. */
  float32?: boolean | Iterable<string>;
  /**
   * Called with every selected array's dtype and shape, from the headers alone, before any
   * array's data is read or inflated: throw here to refuse arrays that do not fit together
   * (rows of features and labels), so a file declaring gigabytes costs nothing to refuse.
   */
  checkHeaders?: (headers: ReadonlyMap<string, ArrayHeader>) => void;
  /**
   * Float arrays (read as float32) to leave in the file where they can be read in place (a `.npy`
   * file, or a stored `.npz` entry as np.savez writes): their values stream past `scan` once (and
   * a zip entry's CRC is checked) but are not kept; the result's `inFile` says where they are.
   * A deflated entry cannot be read by offset and is read whole as usual.
   */
  inPlace?: Iterable<string>;
  /** Sees every value of an `inPlace` array left in its file, in order, a chunk at a time. */
  scan?: (name: string, values: Float32Array, at: number) => void;
}

/** What an array's header says, before its data is read. */
export interface ArrayHeader {
  dtype: NpyDtype;
  shape: readonly number[];
}

const headersOf = (plan: { name: string; h: NpyHeader }[]): ReadonlyMap<string, ArrayHeader> =>
  new Map(plan.map(({ name, h }) => [name, { dtype: h.dtype, shape: h.shape }]));

const pick = (v: boolean | Iterable<string> | undefined, name: string) =>
  v === undefined || typeof v === 'boolean' ? v === true : new Set(v).has(name);

function resolve(opts: ReadArraysOptions, shared: boolean, float32: boolean): ArrayReadOptions {
  const chunkBytes = opts.chunkBytes ?? DEFAULT_CHUNK_BYTES;
  if (!Number.isSafeInteger(chunkBytes) || chunkBytes < 1)
    throw new Error(`chunkBytes must be a positive whole number, got ${chunkBytes}`);
  return { limit: maxArrayBytes(opts.maxArrayBytes), chunkBytes, shared, float32 };
}

const FLOAT_DTYPES: ReadonlySet<NpyDtype> = new Set(['<f2', '<f4', '<f8']);

/** An `inPlace` array of a float dtype read as float32 (the only kind left in a file). */
const inPlaceOk = (opts: ReadArraysOptions, name: string, h: NpyHeader) =>
  pick(opts.inPlace, name) && pick(opts.float32, name) && FLOAT_DTYPES.has(h.dtype);

function fileStamp(path: string): { size: number; mtimeMs: number } {
  const st = statSync(path);
  return { size: st.size, mtimeMs: st.mtimeMs };
}

function leftInFile(
  path: string,
  where: string,
  h: NpyHeader,
  offset: number,
  stamp: { size: number; mtimeMs: number },
): NpyArray {
  const now = fileStamp(path);
  if (now.size !== stamp.size || now.mtimeMs !== stamp.mtimeMs)
    throw new DataError(`${where}: the file changed while it was being read; read it again`);
  return {
    dtype: h.dtype,
    shape: h.shape,
    data: new Float32Array(0),
    inFile: { path, where, dtype: h.dtype, shape: h.shape, offset, ...stamp },
  };
}

/** Reads one .npy file (a regular file of any size), by chunks straight into its array. */
export function readNpy(path: string, opts: ReadNpyOptions = {}): NpyArray {
  const o = resolve(opts, opts.shared === true, opts.float32 === true);
  const src = fileSource(path, '.npy file');
  try {
    return readNpyFrom(src, o);
  } finally {
    src.close();
  }
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
 * Reads the arrays of an .npz archive (stored or deflated, zip64 or not), keyed by name without
 * `.npy`. Works from the zip central directory, read by offset: entries that are not wanted `.npy`
 * arrays are skipped without being decompressed; a wanted entry's declared size must stay under
 * the ceiling, equal what its .npy header (shape x itemsize + header) needs and, if deflated, be
 * reachable from its compressed bytes, all checked before its array is allocated; decompression
 * stops at the declared size. Peak memory is the arrays it really holds plus one chunk.
 */
export function readNpz(path: string, opts: ReadArraysOptions = {}): Map<string, NpyArray> {
  const base = resolve(opts, false, false);
  const src = fileSource(path, '.npz archive');
  try {
    const zip = new ZipArchive(src);
    // Every header first (each a few hundred bytes inflated), then the data.
    const plan = selectArrays(
      zip.entries().map((x): [string, ZipEntry] => [x.name, x]),
      opts,
    ).map(([name, e]) => {
      const where = `${path}:${e.name}`;
      if (e.size > base.limit) {
        throw new DataError(
          `${where}: entry declares ${e.size} bytes uncompressed, more than the limit of ${base.limit} bytes per array${RAISE_LIMIT_HINT}`,
        );
      }
      return { name, e, where, h: npyEntryHeader(zip, e, where) };
    });
    opts.checkHeaders?.(headersOf(plan));
    const out = new Map<string, NpyArray>();
    const stamp = fileStamp(path);
    for (const { name, e, where, h } of plan) {
      const at = inPlaceOk(opts, name, h) ? zip.storedOffset(e) : null;
      if (at !== null) {
        const sink = new ScanSink(h, base.chunkBytes, (v, i) => opts.scan?.(name, v, i));
        zip.stream(e, h.start, sink, base.chunkBytes);
        sink.finish(where);
        out.set(name, leftInFile(path, where, h, at + h.start, stamp));
        continue;
      }
      const o = { ...base, shared: pick(opts.shared, name), float32: pick(opts.float32, name) };
      const dec = new NpyDecoder(h, where, o);
      zip.stream(e, h.start, dec, o.chunkBytes);
      out.set(name, dec.result());
    }
    return out;
  } finally {
    src.close();
  }
}

/** The header of one .npy entry of an archive, checked against the entry's declared size. */
function npyEntryHeader(zip: ZipArchive, e: ZipEntry, where: string): NpyHeader {
  const head = zip.head(e, (b) => headerEnd(asBuffer(b), where));
  const h = parseNpyHeader(head, where);
  if (h.start + h.dataBytes !== e.size) {
    throw new DataError(
      `${where}: entry declares ${e.size} bytes uncompressed, but its .npy header (shape (${h.shape}), ` +
        `${h.dtype}) needs ${h.start + h.dataBytes}; the archive is corrupt or crafted`,
    );
  }
  return h;
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
    const selected = selectArrays(files, opts);
    if (opts.checkHeaders) {
      // Headers first (each file opened, its header read, closed: a folder may hold many files).
      const plan = selected.map(([name, p]) => {
        const src = fileSource(p, '.npy file');
        try {
          return { name, h: npyHeaderFrom(src) };
        } finally {
          src.close();
        }
      });
      opts.checkHeaders(headersOf(plan));
    }
    const out = new Map<string, NpyArray>();
    for (const [name, p] of selected) {
      if (pick(opts.inPlace, name)) {
        const stamp = fileStamp(p);
        const src = fileSource(p, '.npy file');
        try {
          const h = npyHeaderFrom(src);
          if (inPlaceOk(opts, name, h)) {
            const sink = new ScanSink(h, opts.chunkBytes ?? DEFAULT_CHUNK_BYTES, (v, i) =>
              opts.scan?.(name, v, i),
            );
            pumpRange(src, h.start, h.dataBytes, sink, opts.chunkBytes ?? DEFAULT_CHUNK_BYTES);
            sink.finish(p);
            out.set(name, leftInFile(p, p, h, h.start, stamp));
            continue;
          }
        } finally {
          src.close();
        }
      }
      out.set(
        name,
        readNpy(p, { ...opts, shared: pick(opts.shared, name), float32: pick(opts.float32, name) }),
      );
    }
    return out;
  }
  return readNpz(fileOrDir, opts);
}

export type ArraysToWrite = Record<string, { data: WritableArray; shape: number[] }>;

export interface WriteArraysOptions {
  /** Bytes written per step. Default 64 MiB. */
  chunkBytes?: number;
  /** Zip64 records for every entry even when no size needs them (tests; NumPy reads both). */
  forceZip64?: boolean;
}

/**
 * Writes arrays as an uncompressed .npz (as np.savez), atomically, streaming: each array's bytes
 * go from its typed array to the file a chunk at a time (zip64 where sizes or offsets need it).
 */
export function writeNpz(path: string, arrays: ArraysToWrite, opts: WriteArraysOptions = {}): void {
  const entries = Object.entries(arrays).map(([name, a]) => ({
    name: `${name}.npy`,
    parts: npyParts(a.data, a.shape),
  }));
  writeFileAtomicWith(path, (fd) => {
    writeStoredZip(fd, entries, {
      chunkBytes: opts.chunkBytes ?? DEFAULT_CHUNK_BYTES,
      forceZip64: opts.forceZip64,
    });
  });
}

/** Writes arrays as a folder of .npy files, each atomically and streaming. */
export function writeNpyDir(dir: string, arrays: ArraysToWrite, opts: WriteArraysOptions = {}): void {
  const chunk = opts.chunkBytes ?? DEFAULT_CHUNK_BYTES;
  for (const [name, a] of Object.entries(arrays)) {
    const parts = npyParts(a.data, a.shape);
    writeFileAtomicWith(join(dir, `${name}.npy`), (fd) => {
      let pos = 0;
      for (const p of parts)
        for (let off = 0; off < p.byteLength; ) {
          const n = Math.min(chunk, p.byteLength - off);
          const view = new Uint8Array(p.buffer, p.byteOffset + off, n);
          for (let w = 0; w < n; ) w += writeSync(fd, view, w, n - w, pos + w);
          pos += n;
          off += n;
        }
    });
  }
}
