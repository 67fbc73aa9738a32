/**
 * IDX files (the MNIST / Fashion-MNIST format), plain or gzipped. Refuses a wrong magic number,
 * a truncated file and image/label count mismatches, naming the file.
 *
 * Read a chunk at a time, the header first: the one full-size allocation is the data the header
 * declares. A gzipped file is inflated in a stream that stops as soon as it passes the declared
 * size, so a small .gz inflating to gigabytes beyond the data (or with bytes after the gzip
 * stream) is refused without inflating it; a plain file must be exactly header plus data too.
 */
import { constants as bufferConstants } from 'node:buffer';
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
 * as it is whole), then the data into one array of the declared size; a byte past it is refused.
 */
class IdxSink {
  private readonly head = new Uint8Array(4 + 4 * 255);
  private fill = 0;
  private dims: number[] = [];
  private data: Uint8Array | null = null;
  private pos = 0;

  constructor(
    private readonly path: string,
    private readonly gz: boolean,
    private readonly expectedRank: number | undefined,
    private readonly limit: number,
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

  private startData(): void {
    const v = new DataView(this.head.buffer);
    for (let i = 0; i < this.head[3]!; i++) this.dims.push(v.getUint32(4 + 4 * i, false));
    const size = this.dims.reduce((a, b) => a * b, 1);
    if (size > this.limit) {
      throw new DataError(
        `${this.path}: IDX header declares ${size} bytes of data (${this.dims.join(' x ')}), more than the limit of ${this.limit} bytes${RAISE_LIMIT_HINT}`,
      );
    }
    this.data = new Uint8Array(size);
  }

  write(piece: Uint8Array): void {
    for (let p = 0; p < piece.length; ) {
      if (this.data === null) {
        const take = Math.min(this.headerBytes() - this.fill, piece.length - p);
        this.head.set(piece.subarray(p, p + take), this.fill);
        this.fill += take;
        p += take;
        if (this.fill === 4) this.checkMagic();
        if (this.fill >= 4 && this.fill === this.headerBytes()) this.startData();
        continue;
      }
      const take = Math.min(this.data.length - this.pos, piece.length - p);
      if (take === 0) {
        throw new DataError(
          `${this.path}: ${this.gz ? 'decompresses to' : 'holds'} more than the ${this.fill + this.data.length} bytes its IDX header declares (${this.dims.join(' x ')}); trailing data is refused`,
        );
      }
      this.data.set(piece.subarray(p, p + take), this.pos);
      this.pos += take;
      p += take;
    }
  }

  result(): IdxArray {
    if (this.fill < 4)
      throw new DataError(`${this.path}: not an IDX file (magic number must start with two zero bytes)`);
    if (this.data === null) throw new DataError(`${this.path}: truncated IDX header`);
    if (this.pos < this.data.length) {
      throw new DataError(
        `${this.path}: truncated: header promises ${this.data.length} bytes of data, file has ${this.pos}`,
      );
    }
    return { dims: this.dims, data: this.data };
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
    const sink = new IdxSink(path, gz, expectedRank, limit);
    const chunk = new Uint8Array(Math.min(READ_CHUNK, Math.max(1, src.size)));
    if (!gz) {
      for (let o = 0; o < src.size; o += chunk.length) {
        const piece = chunk.subarray(0, Math.min(chunk.length, src.size - o));
        src.readInto(piece, o);
        sink.write(piece);
      }
      return sink.result();
    }
    const inflater = new Gunzip((out) => sink.write(out));
    try {
      for (let o = 0; o < src.size; ) {
        const n = Math.min(chunk.length, src.size - o);
        src.readInto(chunk.subarray(0, n), o);
        o += n;
        for (let p = 0; p < n; p += GZ_PIECE) {
          const end = Math.min(p + GZ_PIECE, n);
          inflater.push(chunk.subarray(p, end), o === src.size && end === n);
        }
      }
    } catch (e) {
      if (e instanceof DataError) throw e;
      // fflate stops at bytes that neither continue the stream nor start another gzip member.
      throw new DataError(
        `${path}: corrupt gzip data, or bytes after the end of the gzip stream (${(e as Error).message})`,
      );
    }
    return sink.result();
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
