import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { deflateRawSync } from 'node:zlib';
import { tempDir } from '../../test/helpers/tmp.ts';
import { makeZip } from '../../test/helpers/zip.ts';
import { encodeNpy, readNpz, writeNpz } from './npy.ts';
import { bufferSource } from './read-file.ts';
import { crc32, ZipArchive } from './zip.ts';

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
