import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { tempDir } from '../../test/helpers/tmp.ts';
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
