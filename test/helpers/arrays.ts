/** Random arrays and their comparison, for the kernel tests. */
import type { createRng } from '../../src/random/rng.ts';

/** n standard-normal float32 values from `rng`. */
export function randomArray(n: number, rng: ReturnType<typeof createRng>): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.normal();
  return a;
}

/** max |a - b| over max |b|: the error relative to the reference's scale. */
export function maxRelErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let scale = 0;
  let err = 0;
  for (let i = 0; i < b.length; i++) scale = Math.max(scale, Math.abs(b[i]!));
  for (let i = 0; i < a.length; i++) err = Math.max(err, Math.abs(a[i]! - b[i]!));
  return err / Math.max(scale, 1e-6);
}
