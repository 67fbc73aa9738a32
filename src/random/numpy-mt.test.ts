import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { NumpyRandomState } from './numpy-mt.ts';

// Golden values printed by NumPy 1.24 (Debian's python3-numpy).
describe('NumpyRandomState', () => {
  it('reproduces np.random.seed(0) raw 32-bit outputs', () => {
    const r = new NumpyRandomState(0);
    assert.deepEqual([r.nextU32(), r.nextU32(), r.nextU32()], [2357136044, 2546248239, 3071714933]);
  });
  it('reproduces np.random.shuffle after np.random.seed', () => {
    const r = new NumpyRandomState(0);
    const a = Array.from({ length: 20 }, (_, i) => i);
    r.shuffle(a);
    assert.deepEqual(a, [18, 1, 19, 8, 10, 17, 6, 13, 4, 2, 5, 14, 9, 7, 16, 11, 3, 0, 15, 12]);
    const b = Array.from({ length: 7 }, (_, i) => i);
    r.shuffle(b); // the stream continues, as with np.random's global state
    assert.deepEqual(b, [5, 2, 3, 4, 1, 0, 6]);
    const r2 = new NumpyRandomState(12345);
    const c = Int32Array.from({ length: 1000 }, (_, i) => i);
    r2.shuffle(c);
    assert.deepEqual([...c.subarray(0, 10)], [144, 833, 270, 468, 962, 186, 942, 516, 286, 458]);
  });
});
