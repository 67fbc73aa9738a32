import { constants, deflateRawSync } from 'node:zlib';

/** One entry of a hand-made zip: its compressed bytes and the uncompressed size it declares (true or not). */
export interface RawEntry {
  name: string;
  method: 0 | 8;
  data: Uint8Array;
  declared: number;
}

/**
 * Writes a zip archive byte by byte, so tests can make archives that lie about their sizes
 * (zip bombs). Sizes of 4 GiB and more get a zip64 field. CRCs are left 0.
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
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(big ? 45 : 20, 4);
    local.writeUInt16LE(e.method, 8);
    local.writeUInt32LE(e.data.length, 18);
    local.writeUInt32LE(size32, 22);
    local.writeUInt16LE(name.length, 26);
    local.writeUInt16LE(extra.length, 28);
    locals.push(local, name, extra, Buffer.from(e.data));
    const c = Buffer.alloc(46);
    c.writeUInt32LE(0x02014b50, 0);
    c.writeUInt16LE(45, 4);
    c.writeUInt16LE(big ? 45 : 20, 6);
    c.writeUInt16LE(e.method, 10);
    c.writeUInt32LE(e.data.length, 20);
    c.writeUInt32LE(size32, 24);
    c.writeUInt16LE(name.length, 28);
    c.writeUInt16LE(extra.length, 30);
    c.writeUInt32LE(offset, 42);
    centrals.push(c, name, extra);
    offset += 30 + name.length + extra.length + e.data.length;
  }
  const cd = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(cd.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, cd, end]);
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
