import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import * as zlib from 'node:zlib';
import { deflateRawSync } from 'node:zlib';
import { runIsolated } from '../../test/helpers/isolated.ts';
import { tempDir } from '../../test/helpers/tmp.ts';
import { deflatedZeros, makeZip, npyHeader, zerosCrc } from '../../test/helpers/zip.ts';
import { loadCheckpoint } from '../train/checkpoint.ts';
import { encodeNpy, readNpz, writeNpz } from './npy.ts';
import { bufferSource } from './read-file.ts';
import { crc32, crc32Sliced, ZipArchive } from './zip.ts';

const PY = '/usr/bin/python3';
const hasNumpy = spawnSync(PY, ['-c', 'import numpy'], { encoding: 'utf8' }).status === 0;

/**
 * Archives written by Python's own zipfile, as np.savez does (force_zip64 on every entry), and
 * to a stream that cannot seek, which makes zipfile use data descriptors (flag bit 3: sizes and
 * CRC after the data, zeros in the local header).
 */
const PY_WRITER = `
import io, sys, zipfile, numpy as np
out = sys.argv[1]
a = (np.arange(15, dtype=np.float32).reshape(3, 5) / 4)
b = np.array([-3, 0, 2**31 - 1, -2**31, 5, 6, 7], dtype=np.int64)
class Unseekable(io.RawIOBase):
    def __init__(self, f): self.f = f
    def writable(self): return True
    def write(self, b): return self.f.write(b)
for name, method, seekable in [('z64', zipfile.ZIP_STORED, True), ('dd', zipfile.ZIP_STORED, False),
                               ('dd_deflate', zipfile.ZIP_DEFLATED, False), ('z64_deflate', zipfile.ZIP_DEFLATED, True)]:
    with open(f'{out}/{name}.npz', 'wb') as raw:
        f = raw if seekable else Unseekable(raw)
        with zipfile.ZipFile(f, 'w', compression=method, allowZip64=True) as z:
            for key, arr in [('a', a), ('b', b)]:
                with z.open(key + '.npy', 'w', force_zip64=True) as fid:
                    np.lib.format.write_array(fid, arr)
`;

describe('.npz archives as other writers make them', () => {
  it('reads zip64 entries and data descriptors from Python zipfile, stored and deflated, in any chunk size', (t) => {
    if (!hasNumpy) return t.skip('python3 with numpy not available');
    const dir = tempDir();
    const py = spawnSync(PY, ['-c', PY_WRITER, dir], { encoding: 'utf8' });
    assert.equal(py.status, 0, py.stderr);
    for (const name of ['z64', 'dd', 'dd_deflate', 'z64_deflate']) {
      const p = join(dir, `${name}.npz`);
      const zip = new ZipArchive(bufferSource(readFileSync(p), p));
      const flags = zip.entries().map((e) => e.flags & 8);
      // Unseekable output: data descriptors; seekable: local headers rewritten with the sizes.
      assert.deepEqual(flags, name.startsWith('dd') ? [8, 8] : [0, 0], name);
      assert.deepEqual(
        zip.entries().map((e) => e.method),
        name.includes('deflate') ? [8, 8] : [0, 0],
      );
      for (const chunkBytes of [1, 3, 7, 64, undefined]) {
        const m = readNpz(p, { chunkBytes });
        assert.deepEqual(m.get('a')!.shape, [3, 5]);
        assert.deepEqual(
          [...m.get('a')!.data],
          Array.from({ length: 15 }, (_, i) => i / 4),
        );
        assert.deepEqual([...m.get('b')!.data], [-3, 0, 2 ** 31 - 1, -(2 ** 31), 5, 6, 7]);
      }
    }
  });
});

describe('.npz writing streams, with zip64 where needed, and NumPy reads it', () => {
  const arrays = {
    train_features: { data: Float32Array.from({ length: 35 }, (_, i) => i * 0.5 - 3), shape: [7, 5] },
    train_labels: { data: Int32Array.from([0, 1, 2, 1, 0, 2, 2]), shape: [7] },
    mask: { data: Uint8Array.from([1, 0, 255]), shape: [3] },
    w64: { data: Float64Array.from([0.1, -1e300]), shape: [1, 2] },
  };

  it('writes the same bytes whatever the chunk size; zip64 forced or not, the arrays read back', () => {
    const dir = tempDir();
    writeNpz(join(dir, 'a.npz'), arrays);
    writeNpz(join(dir, 'b.npz'), arrays, { chunkBytes: 3 });
    writeNpz(join(dir, 'c.npz'), arrays, { forceZip64: true, chunkBytes: 5 });
    assert.deepEqual(readFileSync(join(dir, 'a.npz')), readFileSync(join(dir, 'b.npz')));
    // A zip64 archive has the zip64 end record and locator before the end record.
    const c = readFileSync(join(dir, 'c.npz'));
    assert.equal(c.readUInt32LE(c.length - 22 - 20), 0x07064b50);
    for (const f of ['a.npz', 'c.npz']) {
      const m = readNpz(join(dir, f), { chunkBytes: 4 });
      for (const [k, v] of Object.entries(arrays)) {
        assert.deepEqual(m.get(k)!.shape, v.shape, `${f} ${k}`);
        assert.deepEqual([...m.get(k)!.data], [...v.data], `${f} ${k}`);
      }
    }
  });

  it('NumPy loads what we write, zip64 or not, and zipfile finds every CRC right', (t) => {
    if (!hasNumpy) return t.skip('python3 with numpy not available');
    const dir = tempDir();
    writeNpz(join(dir, 'a.npz'), arrays);
    writeNpz(join(dir, 'c.npz'), arrays, { forceZip64: true });
    for (const f of ['a.npz', 'c.npz']) {
      const p = join(dir, f);
      const py = spawnSync(
        PY,
        [
          '-c',
          `import zipfile, numpy as np, sys
p = sys.argv[1]
assert zipfile.ZipFile(p).testzip() is None
z = np.load(p)
print(z['train_features'].sum(), z['train_labels'].tolist(), z['mask'].tolist(), z['w64'].tolist(), z['train_features'].shape)`,
          p,
        ],
        { encoding: 'utf8' },
      );
      assert.equal(py.status, 0, py.stderr);
      // sum(i * 0.5 - 3, i < 35) = 0.5 * 595 - 105 = 192.5
      assert.equal(py.stdout.trim(), '192.5 [0, 1, 2, 1, 0, 2, 2] [1, 0, 255] [[0.1, -1e+300]] (7, 5)');
    }
  });

  it('computes zip CRC-32 as the standard says (check value of "123456789")', () => {
    assert.equal(crc32(Buffer.from('123456789')), 0xcbf43926);
    // Continuing across pieces gives the same value.
    assert.equal(crc32(Buffer.from('56789'), crc32(Buffer.from('1234'))), 0xcbf43926);
  });

  it('the JavaScript CRC-32 (slicing-by-8, for Node < 20.15) agrees with zlib over random lengths and splits', (t) => {
    const zlibCrc32 = (zlib as { crc32?: (b: Uint8Array) => number }).crc32;
    if (!zlibCrc32) return t.skip('node:zlib has no crc32 before Node 20.15');
    assert.equal(crc32Sliced(Buffer.from('123456789')), 0xcbf43926);
    let seed = 12345;
    const next = () => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed;
    };
    for (let trial = 0; trial < 200; trial++) {
      const b = Uint8Array.from({ length: next() % 3000 }, () => next() >>> 24);
      const cut = b.length === 0 ? 0 : next() % b.length;
      const want: number = zlibCrc32(b);
      assert.equal(crc32Sliced(b), want, `length ${b.length}`);
      assert.equal(crc32Sliced(b.subarray(cut), crc32Sliced(b.subarray(0, cut))), want, `split ${cut}`);
    }
  });
});

describe('.npz archives that are cut short or lie', () => {
  const npy = encodeNpy(
    Float32Array.from({ length: 64 }, (_, i) => i),
    [8, 8],
  ); // 128 + 256 bytes

  it('refuses a file cut short, a stored entry running past the end and a cut deflate stream, in one line', () => {
    const dir = tempDir();
    const whole = join(dir, 'whole.npz');
    writeNpz(whole, { x: { data: Float32Array.from({ length: 64 }, (_, i) => i), shape: [8, 8] } });
    const cut = join(dir, 'cut.npz');
    writeFileSync(cut, readFileSync(whole).subarray(0, 300));
    assert.throws(
      () => readNpz(cut),
      (e: Error) =>
        e.message === `${cut}: not a valid .npz (zip) archive (no end-of-central-directory record)`,
    );
    // The central directory survives but says the stored entry is longer than what is left: it
    // would run into the central directory.
    const z = makeZip([{ name: 'x.npy', method: 0, data: npy, declared: npy.length }]);
    const cdAt = z.indexOf(Buffer.from([0x50, 0x4b, 0x01, 0x02]));
    z.writeUInt32LE(npy.length + 1000, cdAt + 20);
    z.writeUInt32LE(npy.length + 1000, cdAt + 24);
    const longer = join(dir, 'longer.npz');
    writeFileSync(longer, z);
    assert.throws(
      () => readNpz(longer),
      (e: Error) =>
        e.message ===
        `${longer}: not a valid .npz (zip) archive (entry 'x.npy' (bytes 0..${35 + npy.length + 1000}) runs into the central directory at byte ${35 + npy.length})`,
    );
    // A deflate stream cut in half, sizes declared as the whole.
    const d = deflateRawSync(npy);
    const half = join(dir, 'half.npz');
    writeFileSync(
      half,
      makeZip([{ name: 'x.npy', method: 8, data: d.subarray(0, d.length >> 1), declared: npy.length }]),
    );
    for (const chunkBytes of [1, 5, undefined]) {
      assert.throws(
        () => readNpz(half, { chunkBytes }),
        (e: Error) =>
          new RegExp(
            `^${half}:x.npy: (corrupt or truncated deflate data \\(unexpected EOF\\)|entry inflates to \\d+ bytes, but declares 384; the archive is corrupt)$`,
          ).test(e.message),
      );
    }
  });

  it('refuses declared sizes that lie, whatever the chunk size', () => {
    const dir = tempDir();
    const d = deflateRawSync(npy);
    const cases: [string, Buffer, RegExp][] = [
      [
        'short',
        makeZip([{ name: 'x.npy', method: 8, data: d, declared: npy.length - 4 }]),
        /x.npy: entry declares 380 bytes uncompressed, but its .npy header \(shape \(8,8\), <f4\) needs 384/,
      ],
      [
        'stored',
        makeZip([{ name: 'x.npy', method: 0, data: npy, declared: npy.length - 4 }]),
        /stored entry 'x.npy' declares 380 bytes but holds 384/,
      ],
      [
        'ratio',
        makeZip([{ name: 'x.npy', method: 8, data: d, declared: d.length * 1032 + 2048 }]),
        /x.npy: entry declares \d+ bytes uncompressed from \d+ compressed bytes, more than DEFLATE can expand to \(1032:1\)/,
      ],
    ];
    for (const [name, bytes, re] of cases) {
      const p = join(dir, `${name}.npz`);
      writeFileSync(p, bytes);
      for (const chunkBytes of [2, undefined])
        assert.throws(
          () => readNpz(p, { chunkBytes }),
          (e: Error) => e.message.startsWith(p) && re.test(e.message),
          name,
        );
    }
  });
});

/**
 * The archive with `names` listed in its central directory too, each a copy of the first entry's
 * record under another name (same length), all pointing at the same local header and data.
 */
function sharedData(zip: Buffer, names: string[]): Buffer {
  const cdAt = zip.indexOf(Buffer.from([0x50, 0x4b, 0x01, 0x02]));
  const endAt = zip.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  const first = zip.subarray(cdAt, endAt);
  const nameLen = first.readUInt16LE(28);
  const copies = names.map((n) => {
    const c = Buffer.from(first);
    assert.equal(Buffer.byteLength(n), nameLen);
    c.write(n, 46, 'utf8');
    return c;
  });
  const cd = Buffer.concat([first, ...copies]);
  const end = Buffer.from(zip.subarray(endAt));
  end.writeUInt16LE(1 + names.length, 8);
  end.writeUInt16LE(1 + names.length, 10);
  end.writeUInt32LE(cd.length, 12);
  return Buffer.concat([zip.subarray(0, cdAt), cd, end]);
}

describe('.npz entries may not overlap (bytes declared are bounded by the file)', () => {
  it('refuses entries sharing one deflated run, before inflating any (RSS measured in a child)', () => {
    const dir = tempDir();
    // ~260 KB of DEFLATE inflating to 256 MiB, listed under 8 names: 2 GiB declared in all, each
    // entry honest on its own (header, size and ratio agree).
    const head = npyHeader('<f4', [64 << 20]);
    const one = makeZip([
      {
        name: 'a.npy',
        method: 8,
        data: deflatedZeros(head, 256),
        declared: head.length + (256 << 20),
        crc: zerosCrc(head, 256),
      },
    ]);
    const p = join(dir, 'overlap.npz');
    writeFileSync(p, sharedData(one, ['b.npy', 'c.npy', 'd.npy', 'e.npy', 'f.npy', 'g.npy', 'h.npy']));
    const npy = join(import.meta.dirname, 'npy.ts');
    const r = runIsolated(`
      import { readNpz } from ${JSON.stringify(npy)};
      const base = process.resourceUsage().maxRSS;
      let message = null;
      try { readNpz(${JSON.stringify(p)}); } catch (e) { message = e.name + ': ' + e.message; }
      console.log(JSON.stringify({ message, growthMiB: (process.resourceUsage().maxRSS - base) / 1024 }));`);
    assert.equal(r.timedOut, false);
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.match(
      out.message,
      /^DataError: .*overlap\.npz: not a valid \.npz \(zip\) archive \(entries 'a\.npy' \(bytes 0\.\.\d+\) and 'b\.npy' \(from byte 0\) overlap\)$/,
    );
    assert.ok(out.message.startsWith(`DataError: ${p}: `));
    assert.ok(out.growthMiB < 64, `peak RSS grew by ${out.growthMiB} MiB`);
    console.log(`overlapping entries (2 GiB declared): peak RSS growth ${out.growthMiB.toFixed(1)} MiB`);
  });

  it('refuses an entry running into the next one or into the central directory, and a central directory running into the end record', () => {
    const dir = tempDir();
    const a = encodeNpy(Float32Array.from([1, 2, 3]), [3]);
    const z = makeZip([
      { name: 'a.npy', method: 0, data: a, declared: a.length },
      { name: 'b.npy', method: 0, data: a, declared: a.length },
    ]);
    const cdAt = z.indexOf(Buffer.from([0x50, 0x4b, 0x01, 0x02]));
    const endAt = z.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
    const write = (name: string, b: Buffer) => {
      const p = join(dir, name);
      writeFileSync(p, b);
      return p;
    };
    // The second entry's local header moved back 10 bytes, into the first entry's data.
    const back = Buffer.from(z);
    const second = cdAt + 46 + 5; // the first central record is 46 bytes + 'a.npy'
    back.writeUInt32LE(back.readUInt32LE(second + 42) - 10, second + 42);
    const p1 = write('into-next.npz', back);
    assert.throws(
      () => readNpz(p1),
      (e: Error) =>
        e.message ===
        `${p1}: not a valid .npz (zip) archive (entries 'a.npy' (bytes 0..${35 + a.length}) and 'b.npy' (from byte ${25 + a.length}) overlap)`,
    );
    // The central directory said to start 10 bytes earlier (and be 10 bytes longer).
    const early = Buffer.from(z);
    early.writeUInt32LE(cdAt - 10, endAt + 16);
    early.writeUInt32LE(endAt - cdAt + 10, endAt + 12);
    const p2 = write('into-cd.npz', early);
    assert.throws(() => readNpz(p2), /runs into the central directory|bad signature/);
    const late = Buffer.from(z);
    late.writeUInt32LE(endAt - cdAt + 10, endAt + 12);
    const p3 = write('cd-into-end.npz', late);
    assert.throws(
      () => readNpz(p3),
      (e: Error) =>
        e.message ===
        `${p3}: not a valid .npz (zip) archive (the central directory (bytes ${cdAt}..${endAt + 10}) runs into the end records at byte ${endAt})`,
    );
  });
});

describe('.npz entries are checked against their CRC-32', () => {
  const dir = tempDir();
  const values = Float64Array.from({ length: 1000 }, (_, i) => Math.sin(i));

  /** A copy of `b` with bit `bit` of byte `at` flipped. */
  const flip = (b: Buffer, at: number, bit: number) => {
    const c = Buffer.from(b);
    c[at]! ^= 1 << bit;
    return c;
  };

  it('refuses a flipped bit in a stored or a deflated entry, whatever the chunk size and dtype path, naming file and entry', () => {
    const ok = join(dir, 'ok.npz');
    writeNpz(ok, { x: { data: values, shape: [values.length] } });
    const good = readFileSync(ok);
    const npy = encodeNpy(values, [values.length]);
    const dataAt = good.indexOf(Buffer.from(npy.subarray(0, 64))); // the entry's first bytes
    // DEFLATE level 0: stored blocks, so a flipped data bit inflates fine and only the CRC sees it.
    const level0 = deflateRawSync(npy, { level: 0 });
    const deflated = makeZip([{ name: 'x.npy', method: 8, data: level0, declared: npy.length }]);
    const defAt = deflated.indexOf(Buffer.from(npy.subarray(0, 64)));
    const cases: [string, Buffer][] = [
      ['stored-data', flip(good, dataAt + 128 + 8 * 500 + 3, 2)],
      // In the .npy header's padding: parsed fine, skipped by the stream, still counted in the CRC.
      ['stored-header', flip(good, dataAt + 120, 0)],
      ['deflated-data', flip(deflated, defAt + 128 + 8 * 999 + 7, 6)],
    ];
    for (const [name, bytes] of cases) {
      const p = join(dir, `${name}.npz`);
      writeFileSync(p, bytes);
      for (const chunkBytes of [1, 7, 4096, undefined])
        for (const float32 of [false, true]) {
          assert.throws(
            () => readNpz(p, { chunkBytes, float32 }),
            (e: Error) =>
              e.name === 'DataError' &&
              /^x\.npy: CRC-32 mismatch \(the archive records 0x[0-9a-f]{8}, the bytes give 0x[0-9a-f]{8}\); the file is corrupt$/.test(
                e.message.slice(p.length + 1),
              ) &&
              e.message.startsWith(`${p}:`),
            `${name} chunk ${chunkBytes} float32 ${float32}`,
          );
        }
    }
    // Unflipped, the same archives read back exactly.
    assert.deepEqual(readNpz(ok).get('x')!.data, values);
    const p = join(dir, 'deflated.npz');
    writeFileSync(p, deflated);
    for (const chunkBytes of [1, 7, undefined])
      assert.deepEqual(readNpz(p, { chunkBytes }).get('x')!.data, values);
  });

  it('a checkpoint with a flipped bit is refused, naming the file and the entry', () => {
    const p = join(dir, 'checkpoint.npz');
    const w = Float32Array.from({ length: 256 }, (_, i) => i / 7);
    writeNpz(p, {
      'param/conv1': { data: w, shape: [16, 16] },
      meta: { data: new TextEncoder().encode('{"format":"x"}'), shape: [14] },
    });
    const b = readFileSync(p);
    const at = b.indexOf(Buffer.from(w.buffer, 4 * 100, 8));
    writeFileSync(p, flip(b, at + 1, 3));
    assert.throws(
      () => loadCheckpoint(p),
      (e: Error) => e.message.startsWith(`${p}:param/conv1.npy: CRC-32 mismatch (the archive records 0x`),
    );
  });
});
