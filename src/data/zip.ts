/**
 * Just enough of the zip format for `.npz` archives, read from the central directory: list the
 * entries with their declared sizes, read the first bytes of an entry, and extract an entry into a
 * buffer of exactly its declared size. Nothing is decompressed until asked, and decompression
 * stops at the declared size, so an archive cannot make a reader spend more memory than it
 * declares (a zip bomb is refused, not inflated). Stored (0) and deflated (8) entries, zip64 sizes.
 *
 * Everything goes through `read(offset, length)`, so a reader that pages the file instead of
 * holding it whole can replace the buffer without touching the rest.
 */
import { Inflate } from 'fflate';
import { DataError } from '../errors.ts';

export interface ZipEntry {
  name: string;
  /** 0 stored, 8 deflated. */
  method: number;
  flags: number;
  compressedSize: number;
  /** Uncompressed size as the central directory declares it. */
  size: number;
  localOffset: number;
}

const EOCD = 0x06054b50;
const ZIP64_LOCATOR = 0x07064b50;
const ZIP64_EOCD = 0x06064b50;
const CENTRAL = 0x02014b50;
const LOCAL = 0x04034b50;
const U32 = 0xffffffff;
/**
 * Compressed bytes handed to the inflater at once: DEFLATE's output per step is at most ~1032x
 * this, so a piece is sized from what the caller expects (1 KiB to 16 KiB, at most ~17 MB a step).
 */
const pieceFor = (expected: number) => Math.min(16 * 1024, Math.max(1024, Math.ceil(expected / 1024)));

export class ZipArchive {
  private list: ZipEntry[] | null = null;

  constructor(
    private readonly bytes: Uint8Array,
    private readonly where: string,
  ) {}

  private bad(reason: string): DataError {
    return new DataError(`${this.where}: not a valid .npz (zip) archive (${reason})`);
  }

  /** `length` bytes at `offset`, refusing a range outside the file. */
  private read(offset: number, length: number): Uint8Array {
    if (!(offset >= 0 && length >= 0 && offset + length <= this.bytes.length)) {
      throw this.bad(
        `a record at byte ${offset} (${length} bytes) lies outside the ${this.bytes.length}-byte file`,
      );
    }
    return this.bytes.subarray(offset, offset + length);
  }

  private view(offset: number, length: number): DataView {
    const b = this.read(offset, length);
    return new DataView(b.buffer, b.byteOffset, b.byteLength);
  }

  private u64(v: DataView, at: number): number {
    const n = v.getBigUint64(at, true);
    if (n > BigInt(Number.MAX_SAFE_INTEGER)) throw this.bad(`a zip64 size or offset of ${n} is implausible`);
    return Number(n);
  }

  /** The entries of the central directory, in its order; duplicate names are refused. */
  entries(): ZipEntry[] {
    if (this.list) return this.list;
    const size = this.bytes.length;
    let eocd = -1;
    for (let o = size - 22; o >= Math.max(0, size - 22 - 65535); o--) {
      if (this.view(o, 4).getUint32(0, true) === EOCD) {
        eocd = o;
        break;
      }
    }
    if (eocd < 0) throw this.bad('no end-of-central-directory record');
    const end = this.view(eocd, 22);
    let count = end.getUint16(10, true);
    let cdOffset = end.getUint32(16, true);
    if ((count === 0xffff || cdOffset === U32) && eocd >= 20) {
      const loc = this.view(eocd - 20, 20);
      if (loc.getUint32(0, true) === ZIP64_LOCATOR) {
        const z = this.view(this.u64(loc, 8), 56);
        if (z.getUint32(0, true) !== ZIP64_EOCD) throw this.bad('bad zip64 end-of-central-directory record');
        count = this.u64(z, 32);
        cdOffset = this.u64(z, 48);
      }
    }
    const out: ZipEntry[] = [];
    const seen = new Set<string>();
    let o = cdOffset;
    for (let i = 0; i < count; i++) {
      const h = this.view(o, 46);
      if (h.getUint32(0, true) !== CENTRAL)
        throw this.bad(`central directory entry ${i} has a bad signature`);
      const nameLen = h.getUint16(28, true);
      const extraLen = h.getUint16(30, true);
      const commentLen = h.getUint16(32, true);
      const name = new TextDecoder().decode(this.read(o + 46, nameLen));
      let compressedSize = h.getUint32(20, true);
      let sizeU = h.getUint32(24, true);
      let localOffset = h.getUint32(42, true);
      if (compressedSize === U32 || sizeU === U32 || localOffset === U32) {
        // zip64 extended information: the 0xFFFFFFFF fields, in this order, as 64-bit values.
        const extra = this.view(o + 46 + nameLen, extraLen);
        for (let p = 0; p + 4 <= extraLen; ) {
          const id = extra.getUint16(p, true);
          const len = extra.getUint16(p + 2, true);
          if (id === 1) {
            let q = p + 4;
            const next = () => {
              if (q + 8 > p + 4 + len) throw this.bad(`entry '${name}' has a short zip64 field`);
              q += 8;
              return this.u64(extra, q - 8);
            };
            if (sizeU === U32) sizeU = next();
            if (compressedSize === U32) compressedSize = next();
            if (localOffset === U32) localOffset = next();
            break;
          }
          p += 4 + len;
        }
      }
      if (seen.has(name)) throw this.bad(`entry '${name}' appears twice`);
      seen.add(name);
      out.push({
        name,
        method: h.getUint16(10, true),
        flags: h.getUint16(8, true),
        compressedSize,
        size: sizeU,
        localOffset,
      });
      o += 46 + nameLen + extraLen + commentLen;
    }
    this.list = out;
    return out;
  }

  /** The entry's stored (compressed) bytes, found through its local header; checks the method. */
  private data(e: ZipEntry): Uint8Array {
    const where = `${this.where}:${e.name}`;
    if (e.flags & 1) throw new DataError(`${where}: entry is encrypted; .npz archives are not`);
    if (e.method !== 0 && e.method !== 8) {
      throw new DataError(`${where}: compression method ${e.method} is not supported (stored or deflate)`);
    }
    if (e.method === 0 && e.compressedSize !== e.size) {
      throw this.bad(`stored entry '${e.name}' declares ${e.size} bytes but holds ${e.compressedSize}`);
    }
    const h = this.view(e.localOffset, 30);
    if (h.getUint32(0, true) !== LOCAL) throw this.bad(`entry '${e.name}' has no local header`);
    return this.read(e.localOffset + 30 + h.getUint16(26, true) + h.getUint16(28, true), e.compressedSize);
  }

  /**
   * The first bytes of an entry, as many as `need` asks for: it gets the bytes so far and returns
   * how many it needs in all, or null to see more. Decompresses only those first bytes.
   */
  head(e: ZipEntry, need: (sofar: Uint8Array) => number | null): Uint8Array {
    const data = this.data(e);
    if (e.method === 0) {
      let n = need(data.subarray(0, Math.min(data.length, 64)));
      if (n === null) n = data.length;
      return data.subarray(0, Math.min(n, data.length));
    }
    let acc = new Uint8Array(0);
    let want: number | null = null;
    inflatePieces(data, `${this.where}:${e.name}`, pieceFor(0), (piece) => {
      const next = new Uint8Array(acc.length + piece.length);
      next.set(acc);
      next.set(piece, acc.length);
      acc = next;
      want ??= need(acc);
      return want === null || acc.length < want;
    });
    return want === null ? acc : acc.subarray(0, Math.min(want, acc.length));
  }

  /**
   * Bytes `skip`..size of an entry in a fresh buffer of exactly that length. Decompression stops
   * as soon as the output would pass the declared size (refused), and a short one is refused too.
   */
  extract(e: ZipEntry, skip: number): Uint8Array {
    const where = `${this.where}:${e.name}`;
    const data = this.data(e);
    if (e.method === 0) return new Uint8Array(data.subarray(skip));
    const out = new Uint8Array(e.size - skip);
    let total = 0;
    let over = false;
    inflatePieces(data, where, pieceFor(e.size), (piece) => {
      if (total + piece.length > e.size) {
        over = true;
        return false;
      }
      const from = Math.max(0, skip - total);
      if (from < piece.length) out.set(piece.subarray(from), total + from - skip);
      total += piece.length;
      return true;
    });
    if (over) {
      throw new DataError(
        `${where}: entry inflates to more than the ${e.size} bytes it declares; the archive is corrupt or crafted (a zip bomb)`,
      );
    }
    if (total !== e.size) {
      throw new DataError(
        `${where}: entry inflates to ${total} bytes, but declares ${e.size}; the archive is corrupt`,
      );
    }
    return out;
  }
}

/**
 * Inflates raw DEFLATE data a piece at a time, handing each output piece to `sink` until it
 * returns false or the data ends. Output per step is bounded by `piece` times DEFLATE's ratio.
 */
function inflatePieces(
  data: Uint8Array,
  where: string,
  piece: number,
  sink: (out: Uint8Array) => boolean,
): void {
  let stop = false;
  const inf = new Inflate((out) => {
    if (!stop && out.length > 0 && !sink(out)) stop = true;
  });
  try {
    for (let o = 0; o < data.length && !stop; o += piece) {
      const end = Math.min(o + piece, data.length);
      inf.push(data.subarray(o, end), end === data.length);
    }
  } catch (e) {
    throw new DataError(`${where}: corrupt deflate data (${(e as Error).message})`);
  }
}
