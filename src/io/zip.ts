/**
 * Just enough of the zip format for `.npz` archives, read from the central directory by offset
 * (the file is never held whole, so its size is not bounded by a Buffer): list the entries with
 * their declared sizes, read the first bytes of an entry, and stream an entry's bytes into a sink
 * in chunks. Nothing is decompressed until asked, and decompression stops at the declared size, so
 * an archive cannot make a reader spend more memory than it declares (a zip bomb is refused, not
 * inflated); a deflated entry cannot declare more than DEFLATE can expand its compressed bytes to.
 * Stored (0) and deflated (8) entries; zip64 sizes, offsets and end records; data descriptors
 * (flag bit 3: the local header's sizes are zero, the central directory's are used).
 *
 * Entries may not overlap one another or the central directory, so the bytes an archive can
 * declare in all are bounded by its size (times DEFLATE's ratio): one compressed run shared by
 * many entries (a 783 KB file declaring gigabytes) is refused when the entries are listed. Every
 * byte streamed out of an entry is checked against the CRC-32 the central directory records.
 */
import { writeSync } from 'node:fs';
import * as zlib from 'node:zlib';
import { Inflate } from 'fflate';
import { DataError } from '../errors.ts';
import type { ByteSink, ByteSource } from './read-file.ts';
import { pumpRange } from './read-file.ts';

export interface ZipEntry {
  name: string;
  /** 0 stored, 8 deflated. */
  method: number;
  flags: number;
  compressedSize: number;
  /** Uncompressed size as the central directory declares it. */
  size: number;
  localOffset: number;
  /** CRC-32 of the uncompressed bytes, as the central directory records it. */
  crc: number;
  /**
   * Where the next entry's local header (or the central directory) starts: the entry's header,
   * data and data descriptor must all end by here.
   */
  spanEnd: number;
}

const EOCD = 0x06054b50;
const ZIP64_LOCATOR = 0x07064b50;
const ZIP64_EOCD = 0x06064b50;
const CENTRAL = 0x02014b50;
const LOCAL = 0x04034b50;
const U32 = 0xffffffff;
/** The largest central directory read (an .npz lists a handful of arrays; 64 MiB is ~500k entries). */
const MAX_CENTRAL_DIRECTORY = 64 * 1024 * 1024;
/**
 * DEFLATE's largest expansion: one 258-byte match per 2 bits (1-bit length and distance codes),
 * 1032:1. A deflated entry declaring more than this times its compressed bytes (plus a block's
 * worth of slack) cannot be genuine.
 */
export const DEFLATE_MAX_RATIO = 1032;
/**
 * Compressed bytes handed to the inflater at once: DEFLATE's output per step is at most ~1032x
 * this, so a piece is sized from what the caller expects (1 KiB to 16 KiB, at most ~17 MB a step).
 */
const pieceFor = (expected: number) => Math.min(16 * 1024, Math.max(1024, Math.ceil(expected / 1024)));

export class ZipArchive {
  private list: ZipEntry[] | null = null;
  private readonly where: string;

  constructor(private readonly src: ByteSource) {
    this.where = src.where;
  }

  private bad(reason: string): DataError {
    return new DataError(`${this.where}: not a valid .npz (zip) archive (${reason})`);
  }

  /** `length` bytes at `offset` in a fresh buffer, refusing a range outside the file. */
  private read(offset: number, length: number): Uint8Array {
    if (!(offset >= 0 && length >= 0 && offset + length <= this.src.size)) {
      throw this.bad(
        `a record at byte ${offset} (${length} bytes) lies outside the ${this.src.size}-byte file`,
      );
    }
    const b = new Uint8Array(length);
    this.src.readInto(b, offset);
    return b;
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
    const size = this.src.size;
    if (size < 22) throw this.bad('no end-of-central-directory record');
    // The end record is in the last 22 + 65,535 (comment) bytes.
    const tailStart = Math.max(0, size - 22 - 65535);
    const tail = this.read(tailStart, size - tailStart);
    const tv = new DataView(tail.buffer);
    let at = -1;
    for (let o = tail.length - 22; o >= 0; o--) {
      if (tv.getUint32(o, true) === EOCD) {
        at = o;
        break;
      }
    }
    if (at < 0) throw this.bad('no end-of-central-directory record');
    const eocd = tailStart + at;
    let count = tv.getUint16(at + 10, true);
    let cdSize = tv.getUint32(at + 12, true);
    let cdOffset = tv.getUint32(at + 16, true);
    // Where the end records start: the central directory must end by here.
    let endRecords = eocd;
    if ((count === 0xffff || cdSize === U32 || cdOffset === U32) && eocd >= 20) {
      const loc = this.view(eocd - 20, 20);
      if (loc.getUint32(0, true) === ZIP64_LOCATOR) {
        endRecords = this.u64(loc, 8);
        const z = this.view(endRecords, 56);
        if (z.getUint32(0, true) !== ZIP64_EOCD) throw this.bad('bad zip64 end-of-central-directory record');
        count = this.u64(z, 32);
        cdSize = this.u64(z, 40);
        cdOffset = this.u64(z, 48);
      }
    }
    if (cdSize > MAX_CENTRAL_DIRECTORY || count * 46 > cdSize)
      throw this.bad(`a central directory of ${cdSize} bytes cannot list ${count} entries`);
    if (cdOffset + cdSize > endRecords)
      throw this.bad(
        `the central directory (bytes ${cdOffset}..${cdOffset + cdSize}) runs into the end records at byte ${endRecords}`,
      );
    const cd = this.read(cdOffset, cdSize);
    const cv = new DataView(cd.buffer);
    const field = (o: number, n: number) => {
      if (o + n > cd.length) throw this.bad('the central directory is cut short');
    };
    const out: ZipEntry[] = [];
    const seen = new Set<string>();
    let o = 0;
    for (let i = 0; i < count; i++) {
      field(o, 46);
      if (cv.getUint32(o, true) !== CENTRAL)
        throw this.bad(`central directory entry ${i} has a bad signature`);
      const nameLen = cv.getUint16(o + 28, true);
      const extraLen = cv.getUint16(o + 30, true);
      const commentLen = cv.getUint16(o + 32, true);
      field(o + 46, nameLen + extraLen);
      const name = new TextDecoder().decode(cd.subarray(o + 46, o + 46 + nameLen));
      let compressedSize = cv.getUint32(o + 20, true);
      let sizeU = cv.getUint32(o + 24, true);
      let localOffset = cv.getUint32(o + 42, true);
      if (compressedSize === U32 || sizeU === U32 || localOffset === U32) {
        // zip64 extended information: the 0xFFFFFFFF fields, in this order, as 64-bit values.
        const x0 = o + 46 + nameLen;
        for (let p = x0; p + 4 <= x0 + extraLen; ) {
          const id = cv.getUint16(p, true);
          const len = cv.getUint16(p + 2, true);
          if (id === 1) {
            let q = p + 4;
            const next = () => {
              if (q + 8 > Math.min(p + 4 + len, x0 + extraLen))
                throw this.bad(`entry '${name}' has a short zip64 field`);
              q += 8;
              return this.u64(cv, q - 8);
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
        method: cv.getUint16(o + 10, true),
        flags: cv.getUint16(o + 8, true),
        compressedSize,
        size: sizeU,
        localOffset,
        crc: cv.getUint32(o + 16, true),
        spanEnd: cdOffset,
      });
      o += 46 + nameLen + extraLen + commentLen;
    }
    // No two entries share bytes and none runs into the central directory: by local-header
    // offset, each entry's header and data (at least 30 + name + compressed bytes) end before the
    // next one starts. Its exact end (local extra field included) is checked when it is read.
    const byOffset = [...out].sort((a, b) => a.localOffset - b.localOffset);
    for (const [i, e] of byOffset.entries()) {
      const next = byOffset[i + 1];
      e.spanEnd = next === undefined ? cdOffset : next.localOffset;
      const least = e.localOffset + 30 + Buffer.byteLength(e.name, 'utf8') + e.compressedSize;
      if (least > e.spanEnd) {
        throw this.bad(
          next === undefined
            ? `entry '${e.name}' (bytes ${e.localOffset}..${least}) runs into the central directory at byte ${cdOffset}`
            : `entries '${e.name}' (bytes ${e.localOffset}..${least}) and '${next.name}' (from byte ${next.localOffset}) overlap`,
        );
      }
    }
    this.list = out;
    return out;
  }

  /**
   * Where the entry's stored (compressed) bytes start, found through its local header; checks the
   * method, that the bytes lie inside the file and, for deflate, that the declared size is one
   * DEFLATE can reach from them.
   */
  private dataOffset(e: ZipEntry): number {
    const where = `${this.where}:${e.name}`;
    if (e.flags & 1) throw new DataError(`${where}: entry is encrypted; .npz archives are not`);
    if (e.method !== 0 && e.method !== 8) {
      throw new DataError(`${where}: compression method ${e.method} is not supported (stored or deflate)`);
    }
    if (e.method === 0 && e.compressedSize !== e.size) {
      throw this.bad(`stored entry '${e.name}' declares ${e.size} bytes but holds ${e.compressedSize}`);
    }
    if (e.method === 8 && e.size > e.compressedSize * DEFLATE_MAX_RATIO + 1024) {
      throw new DataError(
        `${where}: entry declares ${e.size} bytes uncompressed from ${e.compressedSize} compressed bytes, more than DEFLATE can expand to (${DEFLATE_MAX_RATIO}:1); the archive is corrupt or crafted`,
      );
    }
    const h = this.view(e.localOffset, 30);
    if (h.getUint32(0, true) !== LOCAL) throw this.bad(`entry '${e.name}' has no local header`);
    const start = e.localOffset + 30 + h.getUint16(26, true) + h.getUint16(28, true);
    if (start + e.compressedSize > this.src.size) {
      throw new DataError(
        `${where}: truncated: entry needs ${e.compressedSize} ${e.method === 0 ? '' : 'compressed '}bytes from byte ${start}, the ${this.src.size}-byte file has ${Math.max(0, this.src.size - start)}`,
      );
    }
    if (start + e.compressedSize > e.spanEnd) {
      throw this.bad(
        `entry '${e.name}' (bytes ${e.localOffset}..${start + e.compressedSize}) overlaps what follows it from byte ${e.spanEnd}`,
      );
    }
    return start;
  }

  /**
   * The first bytes of an entry, as many as `need` asks for: it gets the bytes so far and returns
   * how many it needs in all, or null to see more. Decompresses only those first bytes.
   */
  head(e: ZipEntry, need: (sofar: Uint8Array) => number | null): Uint8Array {
    const start = this.dataOffset(e);
    if (e.method === 0) {
      const first = this.read(start, Math.min(e.size, 64));
      let n = need(first);
      if (n === null) n = e.size;
      return n <= first.length ? first.subarray(0, n) : this.read(start, Math.min(n, e.size));
    }
    let acc = new Uint8Array(0);
    let want: number | null = null;
    this.inflate(e, start, pieceFor(0), 64 * 1024, (piece) => {
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
   * Where a stored entry's bytes start in the file (checked as `stream` checks them), so they can
   * be read in place by offset; null for a deflated entry.
   */
  storedOffset(e: ZipEntry): number | null {
    const start = this.dataOffset(e);
    return e.method === 0 ? start : null;
  }

  /**
   * Streams bytes `skip`..size of an entry into `sink`: stored bytes are read straight into the
   * sink's memory where it allows, `chunkBytes` at a time; deflated ones are inflated from the
   * compressed bytes read `chunkBytes` at a time. Decompression stops as soon as the output would
   * pass the declared size (refused), and a short one is refused too.
   */
  stream(e: ZipEntry, skip: number, sink: ByteSink, chunkBytes: number): void {
    const where = `${this.where}:${e.name}`;
    const start = this.dataOffset(e);
    if (e.method === 0) {
      // The skipped bytes (an .npy header, read already) count in the CRC too.
      const crc = new CrcSink(sink, skip > 0 ? crc32(this.read(start, skip)) : 0);
      pumpRange(this.src, start + skip, e.size - skip, crc, chunkBytes);
      this.checkCrc(e, crc.crc);
      return;
    }
    let total = 0;
    let over = false;
    let crc = 0;
    this.inflate(e, start, pieceFor(e.size), chunkBytes, (piece) => {
      if (total + piece.length > e.size) {
        over = true;
        return false;
      }
      crc = crc32(piece, crc);
      const from = Math.max(0, skip - total);
      if (from < piece.length) sink.write(from === 0 ? piece : piece.subarray(from));
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
    this.checkCrc(e, crc);
  }

  /** Refuses an entry whose bytes do not have the CRC-32 its central record gives. */
  private checkCrc(e: ZipEntry, got: number): void {
    if (got !== e.crc) {
      const hex = (n: number) => `0x${n.toString(16).padStart(8, '0')}`;
      throw new DataError(
        `${this.where}:${e.name}: CRC-32 mismatch (the archive records ${hex(e.crc)}, the bytes give ${hex(got)}); the file is corrupt`,
      );
    }
  }

  /**
   * Inflates an entry's raw DEFLATE data, read from the file `chunkBytes` at a time and handed to
   * the inflater `piece` bytes at a time (bounding each step's output by DEFLATE's ratio), passing
   * each output piece to `sink` until it returns false or the data ends.
   */
  private inflate(
    e: ZipEntry,
    start: number,
    piece: number,
    chunkBytes: number,
    sink: (out: Uint8Array) => boolean,
  ): void {
    const where = `${this.where}:${e.name}`;
    let stop = false;
    const inf = new Inflate((out) => {
      if (!stop && out.length > 0 && !sink(out)) stop = true;
    });
    const buf = new Uint8Array(Math.max(1, Math.min(chunkBytes, e.compressedSize)));
    try {
      for (let o = 0; o < e.compressedSize && !stop; ) {
        const n = Math.min(buf.length, e.compressedSize - o);
        const chunk = buf.subarray(0, n);
        this.src.readInto(chunk, start + o);
        o += n;
        for (let p = 0; p < n && !stop; p += piece) {
          const end = Math.min(p + piece, n);
          inf.push(chunk.subarray(p, end), o === e.compressedSize && end === n);
        }
      }
    } catch (err) {
      if (err instanceof DataError) throw err;
      throw new DataError(`${where}: corrupt or truncated deflate data (${(err as Error).message})`);
    }
  }
}

/** A sink passing every byte on to another while computing their CRC-32. */
class CrcSink implements ByteSink {
  private view: Uint8Array | null = null;
  constructor(
    private readonly inner: ByteSink,
    public crc: number,
  ) {}
  direct(max: number): Uint8Array | null {
    this.view = this.inner.direct(max);
    return this.view;
  }
  advance(n: number): void {
    this.crc = crc32(this.view!.subarray(0, n), this.crc);
    this.inner.advance(n);
  }
  write(piece: Uint8Array): void {
    this.crc = crc32(piece, this.crc);
    this.inner.write(piece);
  }
}

/** Bytes of an entry to write: a run of memory, possibly longer than one Uint8Array can view. */
export interface ByteRun {
  buffer: ArrayBufferLike;
  byteOffset: number;
  byteLength: number;
}

/** One entry for `writeStoredZip`: its name and its bytes, the runs one after the other. */
export interface StoredEntry {
  name: string;
  parts: ByteRun[];
}

/** Eight 256-entry tables for slicing-by-8 (table k: a byte followed by k zero bytes), built on first use. */
let crcTables: Int32Array | null = null;

/**
 * CRC-32 (zip's, reflected 0xEDB88320) continuing from `crc`, in JavaScript: slicing-by-8, eight
 * bytes a step through eight tables (several times the byte-at-a-time loop). For Node before 20.15,
 * which has no node:zlib crc32.
 */
export function crc32Sliced(bytes: Uint8Array, crc = 0): number {
  if (!crcTables) {
    crcTables = new Int32Array(8 * 256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTables[n] = c;
    }
    for (let n = 0; n < 256; n++)
      for (let t = 1; t < 8; t++) {
        const prev = crcTables[(t - 1) * 256 + n]!;
        crcTables[t * 256 + n] = crcTables[prev & 0xff]! ^ (prev >>> 8);
      }
  }
  const T = crcTables;
  let c = ~crc;
  let i = 0;
  for (const end8 = bytes.length - 7; i < end8; i += 8) {
    const lo = c ^ (bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24));
    c =
      T[7 * 256 + (lo & 0xff)]! ^
      T[6 * 256 + ((lo >>> 8) & 0xff)]! ^
      T[5 * 256 + ((lo >>> 16) & 0xff)]! ^
      T[4 * 256 + (lo >>> 24)]! ^
      T[3 * 256 + bytes[i + 4]!]! ^
      T[2 * 256 + bytes[i + 5]!]! ^
      T[256 + bytes[i + 6]!]! ^
      T[bytes[i + 7]!]!;
  }
  for (; i < bytes.length; i++) c = T[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

const nativeCrc32 = (zlib as { crc32?: (b: Uint8Array, c: number) => number }).crc32;

/**
 * CRC-32 (zip's), continuing from `crc`: node:zlib's where Node has it (>= 20.15; native code,
 * much faster), else slicing-by-8 in JavaScript.
 */
export function crc32(bytes: Uint8Array, crc = 0): number {
  return nativeCrc32 ? nativeCrc32(bytes, crc) : crc32Sliced(bytes, crc);
}

/** `write(fd, bytes, position)` for every byte, looping over short writes. */
function writeAll(fd: number, bytes: Uint8Array, position: number): void {
  for (let off = 0; off < bytes.length; )
    off += writeSync(fd, bytes, off, bytes.length - off, position + off);
}

/**
 * Writes a zip of stored (uncompressed) entries to `fd` from position 0, as `np.savez` does, one
 * entry after the other and `chunkBytes` at a time, so nothing the size of an entry is built in
 * memory: local header, bytes (CRC-32 computed on the way, then written into the header), central
 * directory, end records. Zip64 fields and end records where a size, offset or count needs them,
 * or everywhere with `forceZip64` (tests). Returns the bytes written.
 */
export function writeStoredZip(
  fd: number,
  entries: StoredEntry[],
  opts: { chunkBytes: number; forceZip64?: boolean },
): number {
  const force = opts.forceZip64 === true;
  const central: Uint8Array[] = [];
  let pos = 0;
  for (const e of entries) {
    const name = Buffer.from(e.name, 'utf8');
    const size = e.parts.reduce((a, p) => a + p.byteLength, 0);
    const big = force || size >= U32;
    const local = Buffer.alloc(30 + name.length + (big ? 20 : 0));
    local.writeUInt32LE(LOCAL, 0);
    local.writeUInt16LE(big ? 45 : 20, 4);
    local.writeUInt16LE(0, 8); // stored
    local.writeUInt16LE(0, 10); // 00:00
    local.writeUInt16LE(0x21, 12); // 1980-01-01: the same bytes for the same arrays
    local.writeUInt32LE(big ? U32 : size, 18);
    local.writeUInt32LE(big ? U32 : size, 22);
    local.writeUInt16LE(name.length, 26);
    local.writeUInt16LE(big ? 20 : 0, 28);
    name.copy(local, 30);
    if (big) {
      local.writeUInt16LE(1, 30 + name.length);
      local.writeUInt16LE(16, 32 + name.length);
      local.writeBigUInt64LE(BigInt(size), 34 + name.length);
      local.writeBigUInt64LE(BigInt(size), 42 + name.length);
    }
    const localOffset = pos;
    writeAll(fd, local, pos);
    pos += local.length;
    let crc = 0;
    for (const p of e.parts) {
      for (let off = 0; off < p.byteLength; ) {
        const n = Math.min(opts.chunkBytes, p.byteLength - off);
        const view = new Uint8Array(p.buffer, p.byteOffset + off, n);
        crc = crc32(view, crc);
        writeAll(fd, view, pos);
        pos += n;
        off += n;
      }
    }
    const crcBytes = Buffer.alloc(4);
    crcBytes.writeUInt32LE(crc, 0);
    writeAll(fd, crcBytes, localOffset + 14);
    // Central record: zip64 extra holds, in order, the fields that do not fit in 32 bits.
    const sizeBig = force || size >= U32;
    const offBig = force || localOffset >= U32;
    const extra: bigint[] = [];
    if (sizeBig) extra.push(BigInt(size), BigInt(size));
    if (offBig) extra.push(BigInt(localOffset));
    const c = Buffer.alloc(46 + name.length + (extra.length ? 4 + 8 * extra.length : 0));
    c.writeUInt32LE(CENTRAL, 0);
    c.writeUInt16LE(extra.length ? 45 : 20, 4);
    c.writeUInt16LE(extra.length ? 45 : 20, 6);
    c.writeUInt16LE(0x21, 14);
    c.writeUInt32LE(crc, 16);
    c.writeUInt32LE(sizeBig ? U32 : size, 20);
    c.writeUInt32LE(sizeBig ? U32 : size, 24);
    c.writeUInt16LE(name.length, 28);
    c.writeUInt16LE(extra.length ? 4 + 8 * extra.length : 0, 30);
    c.writeUInt32LE(offBig ? U32 : localOffset, 42);
    name.copy(c, 46);
    if (extra.length) {
      c.writeUInt16LE(1, 46 + name.length);
      c.writeUInt16LE(8 * extra.length, 48 + name.length);
      for (const [i, v] of extra.entries()) c.writeBigUInt64LE(v, 50 + name.length + 8 * i);
    }
    central.push(c);
  }
  const cdOffset = pos;
  for (const c of central) {
    writeAll(fd, c, pos);
    pos += c.length;
  }
  const cdSize = pos - cdOffset;
  const n = entries.length;
  const z64 = force || n >= 0xffff || cdOffset >= U32 || cdSize >= U32;
  if (z64) {
    const z = Buffer.alloc(56 + 20);
    z.writeUInt32LE(ZIP64_EOCD, 0);
    z.writeBigUInt64LE(44n, 4); // size of the rest of this record
    z.writeUInt16LE(45, 12);
    z.writeUInt16LE(45, 14);
    z.writeBigUInt64LE(BigInt(n), 24);
    z.writeBigUInt64LE(BigInt(n), 32);
    z.writeBigUInt64LE(BigInt(cdSize), 40);
    z.writeBigUInt64LE(BigInt(cdOffset), 48);
    z.writeUInt32LE(ZIP64_LOCATOR, 56);
    z.writeBigUInt64LE(BigInt(pos), 64);
    z.writeUInt32LE(1, 72); // disks in all
    writeAll(fd, z, pos);
    pos += z.length;
  }
  const end = Buffer.alloc(22);
  end.writeUInt32LE(EOCD, 0);
  end.writeUInt16LE(z64 ? 0xffff : n, 8);
  end.writeUInt16LE(z64 ? 0xffff : n, 10);
  end.writeUInt32LE(z64 ? U32 : cdSize, 12);
  end.writeUInt32LE(z64 ? U32 : cdOffset, 16);
  writeAll(fd, end, pos);
  return pos + end.length;
}
