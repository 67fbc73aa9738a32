import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createRng } from '../random/rng.ts';
import { solveLinear } from './linear-solve.ts';

describe('solveLinear', () => {
  it('solves a system whose first pivot is 0 (rows swapped), by hand: x = (1, 2, 3)', () => {
    // [0 2 1; 1 1 1; 2 1 0] x = (7, 6, 4) has x = (1, 2, 3); without pivoting step 1 divides by 0.
    const A = Float64Array.from([0, 2, 1, 1, 1, 1, 2, 1, 0]);
    const b = Float64Array.from([7, 6, 4]);
    const x = solveLinear(A, b, 3);
    for (const [i, want] of [1, 2, 3].entries()) assert.ok(Math.abs(x[i]! - want) < 1e-12, `x${i} ${x[i]}`);
    // The inputs are left as they were.
    assert.deepEqual([...A], [0, 2, 1, 1, 1, 1, 2, 1, 0]);
    assert.deepEqual([...b], [7, 6, 4]);
  });

  it('recovers x from A x over 60 random systems of 1 to 40 unknowns', () => {
    for (let seed = 0; seed < 60; seed++) {
      const rng = createRng(seed);
      const K = 1 + (seed % 40);
      const A = Float64Array.from({ length: K * K }, () => rng.normal());
      // A dominant diagonal keeps the system well conditioned, so x must come back to 1e-9.
      for (let k = 0; k < K; k++) A[k * K + k]! += K * Math.sign(A[k * K + k]! || 1);
      const truth = Float64Array.from({ length: K }, () => rng.normal());
      const b = Float64Array.from({ length: K }, (_, r) =>
        truth.reduce((s, v, c) => s + A[r * K + c]! * v, 0),
      );
      const x = solveLinear(A, b, K);
      for (let k = 0; k < K; k++) assert.ok(Math.abs(x[k]! - truth[k]!) < 1e-9, `seed ${seed} x${k}`);
    }
  });

  it('refuses a singular matrix', () => {
    assert.throws(
      () => solveLinear(Float64Array.from([1, 2, 2, 4]), Float64Array.from([1, 2]), 2),
      /^Error: solveLinear: singular matrix$/,
    );
  });
});
