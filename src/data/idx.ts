/**
 * IDX files (the MNIST / Fashion-MNIST format), plain or gzipped. Refuses a wrong magic number,
 * a truncated file and image/label count mismatches, naming the file.
 *
 * The header first: a plain file is read a chunk at a time into one array of the size its header
 * declares, and must be exactly header plus data. A gzipped file's header is inflated from its
 * first bytes alone (fflate's streaming Gunzip); then the file, no larger than a gzip of the
 * declared data can be, is inflated by node:zlib (native code, faster than fflate) with its
 * output capped at the declared size: a small .gz inflating to gigabytes beyond the data is
 * refused at the first byte past it, and bytes after the gzip stream are refused too.
 */
import { constants as bufferConstants } from 'node:buffer';
import { gunzipSync } from 'node:zlib';
import { Gunzip } from 'fflate';
import { DataError } from '../errors.ts';
import { maxArrayBytes, RAISE_LIMIT_HINT } from '../io/limits.ts';
import { fileSource } from '../io/read-file.ts';
import type { ImageSet } from './types.ts';

export interface IdxArray {
  dims: number[];
  data: Uint8Array;
}

/** Compressed (or plain) bytes read from the file per step. */
const READ_CHUNK = 1 << 20;
/** Compressed bytes handed to the inflater at once: at most ~16 MiB of output a step (DEFLATE's 1032:1). */
const GZ_PIECE = 16 * 1024;

/**
 * Takes an IDX file's bytes in order, in pieces of any length: the header first (checked as soon
 * as it is whole), then (`withData`) the data into one array of the declared size, refusing a
 * byte past it; without `withData`, bytes after the header are ignored (a gzip's header probe).
 */
class IdxSink {
  private readonly head = new Uint8Array(4 + 4 * 255);
  private fill = 0;
  readonly dims: number[] = [];
  /** Data bytes the header declares, once it is whole. */
  private declared: number | null = null;
  private data: Uint8Array | null = null;
  private pos = 0;

  constructor(
    private readonly path: string,
    private readonly expectedRank: number | undefined,
    private readonly limit: number,
    private readonly withData: boolean,
  ) {}

  /** Bytes the header takes: 4 until the rank is known. */
  private headerBytes(): number {
    return this.fill < 4 ? 4 : 4 + 4 * this.head[3]!;
  }

  private checkMagic(): void {
    const { path, head } = this;
    if (head[0] !== 0 || head[1] !== 0)
      throw new DataError(`${path}: not an IDX file (magic number must start with two zero bytes)`);
    if (head[2] !== 0x08) {
      throw new DataError(
        `${path}: IDX type code 0x${head[2]!.toString(16)} is not supported (expected 0x08, unsigned byte)`,
      );
    }
    if (this.expectedRank !== undefined && head[3] !== this.expectedRank)
      throw new DataError(`${path}: IDX file has ${head[3]} dimensions, expected ${this.expectedRank}`);
  }

  private endHeader(): void {
    const v = new DataView(this.head.buffer);
    for (let i = 0; i < this.head[3]!; i++) this.dims.push(v.getUint32(4 + 4 * i, false));
    const size = this.dims.reduce((a, b) => a * b, 1);
    if (size > this.limit) {
      throw new DataError(
        `${this.path}: IDX header declares ${size} bytes of data (${this.dims.join(' x ')}), more than the limit of ${this.limit} bytes${RAISE_LIMIT_HINT}`,
      );
    }
    this.declared = size;
    if (this.withData) this.data = new Uint8Array(size);
  }

  /** Once the header is whole: its length and the data bytes it declares. */
  get header(): { bytes: number; size: number } | null {
    return this.declared === null ? null : { bytes: this.fill, size: this.declared };
  }

  /** What a refusal of data past the header says after the path. */
  trailing(verb: string): string {
    return `${verb} more than the ${this.fill + this.declared!} bytes its IDX header declares (${this.dims.join(' x ')}); trailing data is refused`;
  }

  write(piece: Uint8Array): void {
    for (let p = 0; p < piece.length; ) {
      if (this.declared === null) {
        const take = Math.min(this.headerBytes() - this.fill, piece.length - p);
        this.head.set(piece.subarray(p, p + take), this.fill);
        this.fill += take;
        p += take;
        if (this.fill === 4) this.checkMagic();
        if (this.fill >= 4 && this.fill === this.headerBytes()) this.endHeader();
        continue;
      }
      if (this.data === null) return;
      const take = Math.min(this.data.length - this.pos, piece.length - p);
      if (take === 0) throw new DataError(`${this.path}: ${this.trailing('holds')}`);
      this.data.set(piece.subarray(p, p + take), this.pos);
      this.pos += take;
      p += take;
    }
  }

  /** Refuses a file that ended before its header did. */
  checkHeader(): { bytes: number; size: number } {
    if (this.fill < 4)
      throw new DataError(`${this.path}: not an IDX file (magic number must start with two zero bytes)`);
    const h = this.header;
    if (h === null) throw new DataError(`${this.path}: truncated IDX header`);
    return h;
  }

  /** The array, once every byte has arrived (`withData`), or from a whole inflated file. */
  result(all?: Uint8Array): IdxArray {
    const h = this.checkHeader();
    const data = all === undefined ? this.data! : all.subarray(h.bytes, h.bytes + h.size);
    const have = all === undefined ? this.pos : Math.max(0, all.length - h.bytes);
    if (have < h.size)
      throw new DataError(
        `${this.path}: truncated: header promises ${h.size} bytes of data, file has ${have}`,
      );
    return { dims: this.dims, data };
  }
}

/** Reads an IDX file of unsigned bytes (type code 0x08), plain or gzipped. */
export function readIdx(path: string, expectedRank?: number): IdxArray {
  // The data is one Uint8Array: Node's Buffer ceiling applies as well as the array ceiling.
  const limit = Math.min(maxArrayBytes(), bufferConstants.MAX_LENGTH);
  const src = fileSource(path, 'IDX file');
  try {
    const magic = new Uint8Array(Math.min(2, src.size));
    src.readInto(magic, 0);
    const gz = magic[0] === 0x1f && magic[1] === 0x8b;
    const sink = new IdxSink(path, expectedRank, limit, !gz);
    const chunk = new Uint8Array(Math.min(READ_CHUNK, Math.max(1, src.size)));
    if (!gz) {
      for (let o = 0; o < src.size; o += chunk.length) {
        const piece = chunk.subarray(0, Math.min(chunk.length, src.size - o));
        src.readInto(piece, o);
        sink.write(piece);
      }
      return sink.result();
    }
    // 1. The IDX header, inflated from as few compressed bytes as it takes.
    const probe = new Gunzip((out) => sink.write(out));
    try {
      for (let o = 0; o < src.size && sink.header === null; ) {
        const n = Math.min(GZ_PIECE, src.size - o);
        src.readInto(chunk.subarray(0, n), o);
        o += n;
        probe.push(chunk.subarray(0, n), o === src.size);
      }
    } catch (e) {
      if (e instanceof DataError) throw e;
      // Past the header, what follows is judged by the full pass below.
      if (sink.header === null) throw new DataError(`${path}: corrupt gzip data (${(e as Error).message})`);
    }
    const h = sink.checkHeader();
    // 2. A gzip of N bytes is at most N, 5 bytes per 64 KiB stored block, and its header and
    // trailer: a larger file holds something else after the stream.
    const total = h.bytes + h.size;
    const most = total + Math.ceil(total / 65535) * 5 + (1 << 20);
    if (src.size > most) {
      throw new DataError(
        `${path}: is ${src.size} bytes, more than a gzip of the ${total} bytes its IDX header declares can be; trailing data is refused`,
      );
    }
    // 3. The whole file, inflated with the output capped at the declared size.
    const raw = new Uint8Array(src.size);
    src.readInto(raw, 0);
    let out: Buffer;
    let used: number;
    try {
      const r = gunzipSync(raw, { info: true, maxOutputLength: Math.max(1, total) }) as unknown as {
        buffer: Buffer;
        engine: { bytesWritten: number };
      };
      out = r.buffer;
      used = r.engine.bytesWritten;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE')
        throw new DataError(`${path}: ${sink.trailing('decompresses to')}`);
      throw new DataError(`${path}: corrupt gzip data (${(e as Error).message})`);
    }
    // node:zlib stops at bytes that start no gzip member (zeros, say) without a word.
    if (used < raw.length) {
      throw new DataError(
        `${path}: ${raw.length - used} bytes after the end of the gzip stream; trailing data is refused`,
      );
    }
    return sink.result(new Uint8Array(out.buffer, out.byteOffset, out.length));
  } finally {
    src.close();
  }
}

/** Reads an images file ([n, h, w]) and its labels file ([n]) into an ImageSet. */
export function readIdxImageSet(imagesPath: string, labelsPath: string, numClasses = 10): ImageSet {
  const images = readIdx(imagesPath, 3);
  const labels = readIdx(labelsPath, 1);
  const [n, h, w] = images.dims as [number, number, number];
  if (labels.dims[0] !== n) {
    throw new DataError(`${labelsPath}: has ${labels.dims[0]} labels but ${imagesPath} has ${n} images`);
  }
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const l = labels.data[i]!;
    if (l >= numClasses)
      throw new DataError(`${labelsPath}: label ${l} at index ${i} is outside 0..${numClasses - 1}`);
    out[i] = l;
  }
  return { pixels: images.data, labels: out, height: h, width: w, channels: 1 };
}
