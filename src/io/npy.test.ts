import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { deflateRawSync } from 'node:zlib';
import { runIsolated } from '../../test/helpers/isolated.ts';
import { tempDir } from '../../test/helpers/tmp.ts';
import { deflatedZeros, makeZip } from '../../test/helpers/zip.ts';
import { createRng } from '../random/rng.ts';
import { encodeNpy, type NpyArray, readArrays, readNpy, readNpz, writeNpyDir, writeNpz } from './npy.ts';

// Fixtures written once by NumPy 1.24 (np.save / np.savez / np.savez_compressed).
const FIX = join(import.meta.dirname, '..', '..', 'test', 'fixtures', 'npy');

describe('.npy / .npz', () => {
  it('reads every supported dtype as NumPy wrote it', () => {
    const f4 = readNpy(join(FIX, 'f4.npy'));
    assert.deepEqual(f4.shape, [2, 3]);
    assert.deepEqual([...f4.data], [1.5, -2, 3.25, 0, Math.fround(1e-3), -7]);
    assert.deepEqual([...readNpy(join(FIX, 'f8.npy')).data], [0.1, 0.2, 0.3]);
    assert.deepEqual([...readNpy(join(FIX, 'i4.npy')).data], [0, 1, 2, 9]);
    assert.deepEqual([...readNpy(join(FIX, 'i8.npy')).data], [3, 1, 4, 1, 5]);
    const u1 = readNpy(join(FIX, 'u1.npy'));
    assert.deepEqual([u1.dtype, [...u1.data]], ['|u1', [0, 255, 7, 8]]);
    assert.deepEqual(readNpy(join(FIX, 'scalar_shape1.npy')).shape, [1]);
    assert.deepEqual([...readNpy(join(FIX, 'v2.npy')).data], [0, 1, 2, 3]);
  });
  it('writes .npy byte for byte as NumPy does', () => {
    const ref = readFileSync(join(FIX, 'f4.npy'));
    const mine = encodeNpy(Float32Array.from([1.5, -2, 3.25, 0, 1e-3, -7]), [2, 3]);
    assert.deepEqual(Buffer.from(mine), ref);
    assert.deepEqual(
      Buffer.from(encodeNpy(Int32Array.from([0, 1, 2, 9]), [4])),
      readFileSync(join(FIX, 'i4.npy')),
    );
    assert.deepEqual(
      Buffer.from(encodeNpy(Uint8Array.from([0, 255, 7, 8]), [2, 2])),
      readFileSync(join(FIX, 'u1.npy')),
    );
  });
  it('reads stored and deflated .npz archives', () => {
    for (const f of ['tiny_features.npz', 'tiny_features_compressed.npz']) {
      const m = readNpz(join(FIX, f));
      const tf = m.get('train_features')!;
      assert.deepEqual(tf.shape, [6, 4]);
      assert.ok(Math.abs(tf.data[0]! - 1.7640524) < 1e-6);
      assert.deepEqual([...m.get('train_labels')!.data], [0, 0, 0, 1, 1, 2]);
    }
  });
  it('refuses Fortran order, big-endian and garbage, naming the file', () => {
    assert.throws(
      () => readNpy(join(FIX, 'fortran.npy')),
      /fortran.npy: Fortran-order arrays are not supported/,
    );
    assert.throws(() => readNpy(join(FIX, 'bigendian.npy')), /bigendian.npy: dtype '>f4' is not supported/);
    const dir = tempDir();
    writeFileSync(join(dir, 'x.npy'), 'hello world');
    assert.throws(() => readNpy(join(dir, 'x.npy')), /x.npy: not a NumPy .npy file/);
    const t = Buffer.from(readFileSync(join(FIX, 'f4.npy'))).subarray(0, 140);
    writeFileSync(join(dir, 't.npy'), t);
    assert.throws(
      () => readNpy(join(dir, 't.npy')),
      /t.npy: truncated: shape \(2,3\) needs 24 bytes of data, file has 12/,
    );
    writeFileSync(join(dir, 'z.npz'), 'PK not a zip');
    assert.throws(() => readNpz(join(dir, 'z.npz')), /z.npz: not a valid .npz/);
  });
  it('round-trips through writeNpz and writeNpyDir, and NumPy reads what we write', () => {
    const dir = tempDir();
    const arrays = {
      train_features: { data: Float32Array.from([1, 2, 3, 4, 5, 6]), shape: [3, 2] },
      train_labels: { data: Int32Array.from([0, 1, 1]), shape: [3] },
    };
    writeNpz(join(dir, 'a.npz'), arrays);
    writeNpyDir(join(dir, 'feats'), arrays);
    for (const m of [readArrays(join(dir, 'a.npz')), readArrays(join(dir, 'feats'))]) {
      assert.deepEqual([...m.get('train_features')!.data], [1, 2, 3, 4, 5, 6]);
      assert.deepEqual(m.get('train_features')!.shape, [3, 2]);
      assert.deepEqual([...m.get('train_labels')!.data], [0, 1, 1]);
    }
    const py = spawnSync(
      '/usr/bin/python3',
      [
        '-c',
        `import numpy as np; z = np.load('${join(dir, 'a.npz')}'); print(z['train_features'].sum(), z['train_labels'].tolist())`,
      ],
      { encoding: 'utf8' },
    );
    if (py.status === 0) assert.equal(py.stdout.trim(), '21.0 [0, 1, 1]');
  });
});

/** A .npy header (128 bytes, as encodeNpy writes it) for float32 data of the given shape text. */
function headerOf(shapeText: string): Buffer {
  const h = Buffer.from(encodeNpy(new Float32Array(1), [1]));
  const len = h.readUInt16LE(8);
  const text = h.toString('latin1', 10, 10 + len).replace('(1,)', shapeText);
  return Buffer.concat([
    h.subarray(0, 10),
    Buffer.from(
      `${text
        .slice(0, len - 1)
        .trimEnd()
        .padEnd(len - 1)}\n`,
      'latin1',
    ),
  ]);
}

describe('.npz archives are bounded (zip bombs)', () => {
  const dir = tempDir();
  const header = encodeNpy(new Float32Array(4), [4]); // 128-byte header + 16 bytes of data
  const good = encodeNpy(Float32Array.from([1, 2, 3, 4, 5, 6]), [3, 2]);
  const files = {
    // A real array beside 300 MiB of zeros in an entry that is no array.
    junk: makeZip([
      { name: 'junk.bin', method: 8, data: deflatedZeros(new Uint8Array(0), 300), declared: 300 << 20 },
      { name: 'train_features.npy', method: 0, data: good, declared: good.length },
    ]),
    // Declares 144 bytes and a header that agrees, then inflates to 1 GiB of zeros.
    bomb: makeZip([{ name: 'x.npy', method: 8, data: deflatedZeros(header, 1024), declared: header.length }]),
    // Declares 1 MiB (DEFLATE could reach that from its ~1 KB), but the header says 16 bytes of data.
    liar: makeZip([{ name: 'x.npy', method: 8, data: deflatedZeros(header, 1), declared: 1 << 20 }]),
    // A 5 GB array, header and declared size agree (zip64), under the machine ceiling: but ~1 KB
    // of DEFLATE cannot expand to 5 GB, so it is refused before anything is allocated.
    huge: makeZip([
      { name: 'x.npy', method: 8, data: deflatedZeros(headerOf('(1250000000,)'), 1), declared: 128 + 5e9 },
    ]),
  };
  for (const [k, b] of Object.entries(files)) writeFileSync(join(dir, `${k}.npz`), b);

  it('skips non-array entries uninflated and refuses lying or oversized ones, with RSS bounded', () => {
    const npy = join(import.meta.dirname, 'npy.ts');
    const t0 = Date.now();
    const r = runIsolated(`
      import { readNpz } from ${JSON.stringify(npy)};
      const out = {};
      const base = process.resourceUsage().maxRSS;
      for (const k of ['junk', 'bomb', 'liar', 'huge']) {
        try { out[k] = [...readNpz(${JSON.stringify(dir)} + '/' + k + '.npz').keys()]; }
        catch (e) { out[k] = e.name + ': ' + e.message; }
      }
      out.growthMiB = (process.resourceUsage().maxRSS - base) / 1024;
      console.log(JSON.stringify(out));`);
    assert.equal(r.timedOut, false, 'readNpz must not take long');
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.deepEqual(out.junk, ['train_features']);
    assert.equal(
      out.bomb,
      `DataError: ${dir}/bomb.npz:x.npy: entry inflates to more than the 144 bytes it declares; the archive is corrupt or crafted (a zip bomb)`,
    );
    assert.equal(
      out.liar,
      `DataError: ${dir}/liar.npz:x.npy: entry declares 1048576 bytes uncompressed, but its .npy header (shape (4), <f4) needs 144; the archive is corrupt or crafted`,
    );
    assert.match(
      out.huge,
      new RegExp(
        `^DataError: ${dir}/huge.npz:x.npy: entry declares 5000000128 bytes uncompressed from \\d+ compressed bytes, more than DEFLATE can expand to \\(1032:1\\); the archive is corrupt or crafted$`,
      ),
    );
    // 1.3 GiB of zeros are in these files; reading them may cost a few MiB.
    assert.ok(out.growthMiB < 64, `peak RSS grew by ${out.growthMiB} MiB`);
    console.log(`zip bombs: peak RSS growth ${out.growthMiB.toFixed(1)} MiB, ${Date.now() - t0} ms`);
  });

  it('the ceiling is set by option or LONGTAIL_MAX_ARRAY_BYTES; wanted names skip the rest', () => {
    const p = join(dir, 'ok.npz');
    writeNpz(p, {
      a: { data: new Float32Array(256), shape: [256] },
      b: { data: Int32Array.from([1, 2]), shape: [2] },
    });
    assert.throws(
      () => readNpz(p, { maxArrayBytes: 1000 }),
      new RegExp(
        `${p}:a.npy: entry declares 1152 bytes uncompressed, more than the limit of 1000 bytes per array`,
      ),
    );
    process.env.LONGTAIL_MAX_ARRAY_BYTES = '1000';
    try {
      assert.throws(
        () => readNpz(p),
        /more than the limit of 1000 bytes per array \(set LONGTAIL_MAX_ARRAY_BYTES/,
      );
      assert.deepEqual([...readNpz(p, { wanted: ['b'] }).keys()], ['b']);
      process.env.LONGTAIL_MAX_ARRAY_BYTES = 'lots';
      assert.throws(
        () => readNpz(p),
        /LONGTAIL_MAX_ARRAY_BYTES must be a positive whole number of bytes, got 'lots'/,
      );
    } finally {
      delete process.env.LONGTAIL_MAX_ARRAY_BYTES;
    }
    assert.deepEqual([...readNpz(p).keys()], ['a', 'b']);
  });

  it('refuses a .npy that is not a regular file instead of hanging on it', () => {
    const d = tempDir();
    spawnSync('mkfifo', [join(d, 'train_features.npy')]);
    const npy = join(import.meta.dirname, 'npy.ts');
    const r = runIsolated(
      `import { readArrays } from ${JSON.stringify(npy)};
       try { readArrays(${JSON.stringify(d)}); } catch (e) { console.log(e.message); }`,
    );
    assert.equal(r.timedOut, false, 'reading a FIFO hung');
    assert.equal(
      r.stdout.trim(),
      `${d}/train_features.npy is a FIFO (named pipe), not a regular file; only regular files are read`,
    );
  });
});

/** A .npy file of `descr` ('<f2', '<i8', ...: three characters) and shape around raw data bytes. */
function rawNpy(descr: string, shape: number[], data: Uint8Array): Buffer {
  const n = shape.reduce((a, x) => a * x, 1);
  const h = Buffer.from(encodeNpy(new Float32Array(n), shape));
  const len = h.readUInt16LE(8);
  const text = h.toString('latin1', 10, 10 + len).replace("'<f4'", `'${descr}'`);
  return Buffer.concat([h.subarray(0, 10), Buffer.from(text, 'latin1'), data]);
}

/** binary16 -> number by the textbook formula (independent of the reader's table). */
function halfRef(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 31;
  const m = h & 1023;
  if (e === 0) return s * 2 ** -14 * (m / 1024);
  if (e === 31) return m ? Number.NaN : s * Number.POSITIVE_INFINITY;
  return s * 2 ** (e - 15) * (1 + m / 1024);
}

const ITEMS: Record<string, number> = { '<f2': 2, '<f4': 4, '<f8': 8, '<i4': 4, '<i8': 8, '|u1': 1 };

describe('.npy / .npz read in chunks', () => {
  it('float16: known values, subnormals, infinities, NaN and signed zero widen exactly to float32', () => {
    const bits = [0x3c00, 0xc000, 0x0001, 0x03ff, 0x0400, 0x7bff, 0x7c00, 0xfc00, 0x7e00, 0x8000, 0x3555];
    const want = [
      1,
      -2,
      2 ** -24,
      1023 * 2 ** -24,
      2 ** -14,
      65504,
      Number.POSITIVE_INFINITY,
      Number.NEGATIVE_INFINITY,
      Number.NaN,
      -0,
      Math.fround(0.333251953125),
    ];
    const dir = tempDir();
    const p = join(dir, 'h.npy');
    writeFileSync(p, rawNpy('<f2', [bits.length], new Uint8Array(Uint16Array.from(bits).buffer)));
    for (const chunkBytes of [1, 3, 64, undefined]) {
      const a = readNpy(p, { chunkBytes });
      assert.equal(a.dtype, '<f2');
      assert.ok(a.data instanceof Float32Array);
      assert.deepEqual([...a.data], want); // deepEqual tells -0 from 0 and matches NaN with NaN
    }
  });

  it('float16: all 65,536 values agree with NumPy astype(float32), bit for bit', (t) => {
    const dir = tempDir();
    const py = spawnSync(
      '/usr/bin/python3',
      [
        '-c',
        `import numpy as np, sys
h = np.arange(65536, dtype=np.uint16).view(np.float16)
np.save(sys.argv[1] + '/h.npy', h); np.save(sys.argv[1] + '/f.npy', h.astype(np.float32))`,
        dir,
      ],
      { encoding: 'utf8' },
    );
    if (py.status !== 0) return t.skip('python3 with numpy not available');
    const mine = readNpy(join(dir, 'h.npy'), { chunkBytes: 7 }).data as Float32Array;
    const ref = readNpy(join(dir, 'f.npy')).data as Float32Array;
    const mb = new Uint32Array(mine.buffer);
    const rb = new Uint32Array(ref.buffer);
    for (let i = 0; i < 65536; i++) {
      if (Number.isNaN(ref[i]!)) assert.ok(Number.isNaN(mine[i]!), `0x${i.toString(16)}`);
      else assert.equal(mb[i], rb[i], `0x${i.toString(16)}`);
    }
  });

  it('chunked reads equal whole reads byte for byte, over random dtypes, shapes, chunk sizes and containers', () => {
    const dir = tempDir();
    const descrs = Object.keys(ITEMS);
    for (let seed = 0; seed < 60; seed++) {
      const rng = createRng(seed, 19);
      const descr = descrs[rng.int(descrs.length)]!;
      const shape = Array.from({ length: 1 + rng.int(3) }, () => rng.int(9) + (seed % 7 === 0 ? 0 : 1));
      const n = shape.reduce((a, x) => a * x, 1);
      const data = new Uint8Array(n * ITEMS[descr]!);
      for (let i = 0; i < data.length; i++) data[i] = rng.int(256);
      if (descr === '<i8') {
        // Values that fit in 32 bits: the high word is the sign extension of the low one.
        const w = new Int32Array(data.buffer);
        for (let i = 0; i < n; i++) w[2 * i + 1] = w[2 * i]! >> 31;
      }
      const npy = rawNpy(descr, shape, data);
      const kind = seed % 3;
      const p = join(dir, `s${seed}.${kind === 0 ? 'npy' : 'npz'}`);
      if (kind === 0) writeFileSync(p, npy);
      else
        writeFileSync(
          p,
          makeZip([
            {
              name: 'a.npy',
              method: kind === 1 ? 0 : 8,
              data: kind === 1 ? npy : deflateRawSync(npy),
              declared: npy.length,
            },
          ]),
        );
      const read = (chunkBytes?: number, float32 = false) =>
        kind === 0 ? readNpy(p, { chunkBytes, float32 }) : readNpz(p, { chunkBytes, float32 }).get('a')!;
      const whole = read();
      const chunk = 1 + rng.int(40);
      const pieces = read(chunk);
      const bytes = (a: NpyArray) => Buffer.from(a.data.buffer, a.data.byteOffset, a.data.byteLength);
      const label = `seed ${seed}: ${descr} (${shape}) kind ${kind} chunk ${chunk}`;
      assert.deepEqual(pieces.shape, shape, label);
      assert.deepEqual(bytes(pieces), bytes(whole), label);
      // And both equal what the bytes mean, worked out independently.
      const v = new DataView(data.buffer);
      for (let i = 0; i < n; i++) {
        const got = whole.data[i]!;
        const want =
          descr === '<f2'
            ? Math.fround(halfRef(v.getUint16(2 * i, true)))
            : descr === '<i8'
              ? Number(v.getBigInt64(8 * i, true))
              : descr === '<f4'
                ? v.getFloat32(4 * i, true)
                : descr === '<f8'
                  ? v.getFloat64(8 * i, true)
                  : descr === '<i4'
                    ? v.getInt32(4 * i, true)
                    : v.getUint8(i);
        if (Number.isNaN(want)) assert.ok(Number.isNaN(got), label);
        else assert.equal(got, want, `${label} [${i}]`);
      }
      if (descr === '<f8') {
        const narrow = read(chunk, true);
        assert.ok(narrow.data instanceof Float32Array, label);
        assert.deepEqual(narrow.data, Float32Array.from(whole.data as Float64Array), label);
      }
    }
  });

  it('allocates in a SharedArrayBuffer on request, with the same values', () => {
    const p = join(FIX, 'f4.npy');
    const a = readNpy(p, { shared: true });
    assert.ok(a.data.buffer instanceof SharedArrayBuffer);
    assert.ok(!(readNpy(p).data.buffer instanceof SharedArrayBuffer));
    assert.deepEqual([...a.data], [...readNpy(p).data]);
    const m = readNpz(join(FIX, 'tiny_features.npz'), { shared: ['train_features'] });
    assert.ok(m.get('train_features')!.data.buffer instanceof SharedArrayBuffer);
    assert.ok(!(m.get('train_labels')!.data.buffer instanceof SharedArrayBuffer));
  });

  it('refuses int64 values past 32 bits at the right index, whatever the chunk size', () => {
    const dir = tempDir();
    const p = join(dir, 'i8.npy');
    writeFileSync(p, rawNpy('<i8', [4], new Uint8Array(BigInt64Array.from([1n, -5n, 2n ** 31n, 0n]).buffer)));
    for (const chunkBytes of [1, 5, 9, undefined])
      assert.throws(
        () => readNpy(p, { chunkBytes }),
        (e: Error) => e.message === `${p}: int64 value 2147483648 at index 2 does not fit in 32 bits`,
      );
  });

  it('checks the header against the file size and the limits before allocating', () => {
    const dir = tempDir();
    const full = Buffer.from(encodeNpy(new Float32Array(6), [2, 3]));
    writeFileSync(join(dir, 'h.npy'), full.subarray(0, 50));
    assert.throws(
      () => readNpy(join(dir, 'h.npy')),
      (e: Error) => e.message === `${join(dir, 'h.npy')}: truncated .npy header (the file has 50 bytes)`,
    );
    writeFileSync(join(dir, 'ok.npy'), full);
    assert.throws(
      () => readNpy(join(dir, 'ok.npy'), { maxArrayBytes: 20 }),
      (e: Error) =>
        e.message.startsWith(
          `${join(dir, 'ok.npy')}: shape (2,3) needs 24 bytes in memory, more than the limit of 20 bytes per array`,
        ),
    );
    // An array with more elements than one typed array can hold (2^32), declared honestly in a
    // ~4 MB deflated entry: refused before anything is allocated.
    const big = join(dir, 'big.npz');
    const h = headerOf('(1073741825,)'); // f4: 4 GiB + 4 bytes of data, 2^30 + 1 elements: fits
    const u = Buffer.from(
      h.toString('latin1').replace("'<f4'", "'|u1'").replace('(1073741825,)', '(4294967297,)'),
      'latin1',
    );
    const header = Buffer.concat([
      u.subarray(0, 10),
      Buffer.from(
        `${u
          .toString('latin1', 10, u.length - 1)
          .trimEnd()
          .padEnd(h.length - 11)}\n`,
        'latin1',
      ),
    ]);
    writeFileSync(
      big,
      makeZip([
        {
          name: 'x.npy',
          method: 8,
          data: deflatedZeros(header, 4097),
          declared: header.length + 2 ** 32 + 1,
        },
      ]),
    );
    assert.throws(
      () => readNpz(big, { maxArrayBytes: 1e10 }),
      (e: Error) =>
        e.message ===
        `${big}:x.npy: shape (4294967297) holds 4294967297 values, more than the 4294967296 one typed array holds in Node`,
    );
  });
});
