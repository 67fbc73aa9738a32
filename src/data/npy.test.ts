import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { runIsolated } from '../../test/helpers/isolated.ts';
import { tempDir } from '../../test/helpers/tmp.ts';
import { deflatedZeros, makeZip } from '../../test/helpers/zip.ts';
import { encodeNpy, readArrays, readNpy, readNpz, writeNpyDir, writeNpz } from './npy.ts';

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
      { timeoutMs: 10_000 },
    );
    assert.equal(r.timedOut, false, 'reading a FIFO hung');
    assert.equal(
      r.stdout.trim(),
      `${d}/train_features.npy is a FIFO (named pipe), not a regular file; only regular files are read`,
    );
  });
});
