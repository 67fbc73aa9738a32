import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  LOADED_ABOVE,
  loadedLimit,
  MALLOC_FOR_TORCH,
  pairedRatio,
  THREAD_VARS,
  torchEnv,
  UNSET_FOR_TORCH,
} from '../bench/torch-env.ts';

// The PyTorch yardstick's environment, checked without starting PyTorch.
describe('bench: the PyTorch process environment', () => {
  const base = {
    OPENBLAS_CORETYPE: 'Haswell',
    OPENBLAS_L2_SIZE: '512',
    OMP_NUM_THREADS: '7',
    PATH: '/usr/bin',
    LD_LIBRARY_PATH: '/opt/lib',
  };

  it('unsets the two OpenBLAS variables and sets every thread count to the case threads', () => {
    for (const threads of [1, 2, 5]) {
      const env = torchEnv(base, threads);
      assert.equal('OPENBLAS_CORETYPE' in env, false);
      assert.equal('OPENBLAS_L2_SIZE' in env, false);
      for (const k of ['OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'MKL_NUM_THREADS', 'BLIS_NUM_THREADS'])
        assert.equal(env[k], String(threads), k);
      assert.equal(env.PATH, '/usr/bin');
      assert.equal(env.OMP_WAIT_POLICY, 'PASSIVE');
      assert.equal(env.LD_LIBRARY_PATH, '/opt/lib');
      // glibc keeps PyTorch's freed buffers (no mmap per activation, no trim).
      assert.equal(env.MALLOC_MMAP_THRESHOLD_, '4294967296');
      assert.equal(env.MALLOC_TRIM_THRESHOLD_, '4294967296');
      assert.equal(env.MALLOC_TOP_PAD_, '1073741824');
    }
    assert.deepEqual(Object.keys(MALLOC_FOR_TORCH).sort(), [
      'MALLOC_MMAP_THRESHOLD_',
      'MALLOC_TOP_PAD_',
      'MALLOC_TRIM_THRESHOLD_',
    ]);
    // A malloc setting the user made is kept.
    assert.equal(torchEnv({ MALLOC_TOP_PAD_: '0' }, 1).MALLOC_TOP_PAD_, '0');
    assert.deepEqual([...UNSET_FOR_TORCH], ['OPENBLAS_CORETYPE', 'OPENBLAS_L2_SIZE']);
    assert.equal(THREAD_VARS.length, 4);
  });

  it('changes neither the given environment nor this process', () => {
    const copy = { ...base };
    torchEnv(base, 2, '/tmp/openblas');
    assert.deepEqual(base, copy);
    const before = { ...process.env };
    torchEnv(process.env, 3);
    assert.deepEqual({ ...process.env }, before);
    // This process (the tests) keeps whatever the machine set.
    assert.equal(process.env.OPENBLAS_CORETYPE, before.OPENBLAS_CORETYPE);
  });

  it('puts --torch-blas first on LD_LIBRARY_PATH and keeps a set OMP_WAIT_POLICY', () => {
    assert.equal(torchEnv(base, 1, '/tmp/ob').LD_LIBRARY_PATH, '/tmp/ob:/opt/lib');
    assert.equal(torchEnv({}, 1, '/tmp/ob').LD_LIBRARY_PATH, '/tmp/ob');
    assert.equal(torchEnv({ OMP_WAIT_POLICY: 'ACTIVE' }, 1).OMP_WAIT_POLICY, 'ACTIVE');
  });

  it('refuses a thread count that is not a positive integer', () => {
    for (const t of [0, -1, 1.5, Number.NaN])
      assert.throws(() => torchEnv(base, t), /threads must be a positive integer, got/);
  });
});

describe('bench: ratios over alternating rounds', () => {
  it('is the ratio of the medians, with the rounds own ratios as min-max', () => {
    // images/s: longtail 100, 300, 200; PyTorch 50, 100, 400 -> medians 200 / 100 = 2.
    const r = pairedRatio([100, 300, 200], [50, 100, 400], 'images/s');
    assert.equal(r.median, 2);
    assert.equal(r.min, 0.5); // 200 / 400
    assert.equal(r.max, 3); // 300 / 100
    // Seconds: PyTorch's time over longtail's.
    const s = pairedRatio([2, 4], [8, 4], 's');
    assert.equal(s.median, 6 / 3);
    assert.deepEqual([s.min, s.max], [1, 4]);
    assert.throws(() => pairedRatio([1], [1, 2], 's'), /1 rounds of longtail against 2 of PyTorch/);
    assert.equal(LOADED_ABOVE, 0.5);
    // A case holds the load near its own thread count: the limit is above it.
    assert.equal(loadedLimit(1), 1.5);
    assert.equal(loadedLimit(2), 2.5);
  });
});
