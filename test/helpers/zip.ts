import { constants, crc32, deflateRawSync, inflateRawSync } from 'node:zlib';

/** One entry of a hand-made zip: its compressed bytes and the uncompressed size it declares (true or not). */
export interface RawEntry {
  name: string;
  method: 0 | 8;
  data: Uint8Array;
  declared: number;
  /** CRC-32 to record; default: the true one when the data holds what it declares, else 0. */
  crc?: number;
}

/**
 * The CRC-32 of an entry's uncompressed bytes, when they are what it declares (never inflating
 * more, and never more than 64 MiB: give `crc` for bigger ones, e.g. from `zerosCrc`).
 */
function trueCrc(e: RawEntry): number {
  if (e.method === 0) return crc32(e.data);
  if (e.declared > 64 << 20) return 0;
  try {
    return crc32(inflateRawSync(e.data, { maxOutputLength: Math.max(1, e.declared) }));
  } catch {
    return 0;
  }
}

/**
 * Writes a zip archive byte by byte, so tests can make archives that lie about their sizes
 * (zip bombs). Sizes of 4 GiB and more get a zip64 field.
 */
export function makeZip(entries: RawEntry[]): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const e of entries) {
    const name = Buffer.from(e.name, 'utf8');
    const big = e.declared >= 0xffffffff;
    const extra = Buffer.alloc(big ? 12 : 0);
    if (big) {
      extra.writeUInt16LE(1, 0);
      extra.writeUInt16LE(8, 2);
      extra.writeBigUInt64LE(BigInt(e.declared), 4);
    }
    const size32 = big ? 0xffffffff : e.declared;
    const version = big ? 45 : 20;
    // [offset, bytes, value]: the local header, then the central directory's, which has 16 more bytes up front.
    const shared = (shift: number): [number, 2 | 4, number][] => [
      [4 + shift, 2, version],
      [8 + shift, 2, e.method],
      [18 + shift, 4, e.data.length],
      [22 + shift, 4, size32],
      [26 + shift, 2, name.length],
      [28 + shift, 2, extra.length],
      [14 + shift, 4, e.crc ?? trueCrc(e)],
    ];
    const local = record(30, 0x04034b50, shared(0));
    locals.push(local, name, extra, Buffer.from(e.data));
    const c = record(46, 0x02014b50, [[4, 2, 45], ...shared(2), [42, 4, offset]]);
    centrals.push(c, name, extra);
    offset += 30 + name.length + extra.length + e.data.length;
  }
  const cd = Buffer.concat(centrals);
  const n = entries.length;
  const end = record(22, 0x06054b50, [
    [8, 2, n],
    [10, 2, n],
    [12, 4, cd.length],
    [16, 4, offset],
  ]);
  return Buffer.concat([...locals, cd, end]);
}

/** A zip record of `size` bytes: its signature, then little-endian fields, the rest 0. */
function record(size: number, signature: number, fields: [number, 2 | 4, number][]): Buffer {
  const b = Buffer.alloc(size);
  b.writeUInt32LE(signature, 0);
  for (const [at, bytes, v] of fields) {
    if (bytes === 2) b.writeUInt16LE(v, at);
    else b.writeUInt32LE(v, at);
  }
  return b;
}

/**
 * Raw DEFLATE data for `prefix` followed by `mib` MiB of zeros, built from one flushed 1 MiB block
 * repeated (each ends byte-aligned with the dictionary reset, so copies concatenate): ~1 KB per MiB.
 */
export function deflatedZeros(prefix: Uint8Array, mib: number): Buffer {
  const flush = { finishFlush: constants.Z_FULL_FLUSH };
  const head = deflateRawSync(prefix, flush);
  const block = deflateRawSync(Buffer.alloc(1 << 20), flush);
  const last = deflateRawSync(Buffer.alloc(0));
  return Buffer.concat([head, ...Array.from({ length: mib }, () => block), last]);
}

/** A .npy version 1.0 header (magic, dict, padding to 64 bytes) for an array of this dtype and shape. */
export function npyHeader(descr: string, shape: readonly number[]): Buffer {
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  const dict = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shapeText}, }`;
  const total = Math.ceil((10 + dict.length + 1) / 64) * 64;
  const b = Buffer.alloc(total);
  Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]).copy(b);
  b.writeUInt16LE(total - 10, 8);
  b.write(`${dict.padEnd(total - 11, ' ')}\n`, 10, 'latin1');
  return b;
}

/** The CRC-32 of `prefix` followed by `mib` MiB of zeros (what `deflatedZeros` inflates to). */
export function zerosCrc(prefix: Uint8Array, mib: number): number {
  const block = Buffer.alloc(1 << 20);
  let c = crc32(prefix);
  for (let i = 0; i < mib; i++) c = crc32(block, c);
  return c;
}
