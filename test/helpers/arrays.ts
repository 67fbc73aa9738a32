/** Random arrays and their comparison, for tests. */
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

/** max |a - b|, the largest absolute difference; the arrays must be of one length. */
export function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`maxDiff: lengths differ (${a.length} vs ${b.length})`);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!));
  return d;
}

/** `maxDiff` over the named arrays `keys` (default: all of a's) of two parameter sets. */
export function maxDiffNamed(
  a: Record<string, { data: ArrayLike<number> }>,
  b: Record<string, { data: ArrayLike<number> }>,
  keys: string[] = Object.keys(a),
): number {
  let d = 0;
  for (const k of keys) {
    const [x, y] = [a[k], b[k]];
    if (x === undefined || y === undefined) throw new Error(`maxDiffNamed: '${k}' missing`);
    d = Math.max(d, maxDiff(x.data, y.data));
  }
  return d;
}

/** The index of the first element whose bits differ (NaN payloads and -0 included), or -1. */
export function firstDifference(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) throw new Error(`lengths differ: ${a.length} vs ${b.length}`);
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return i;
  return -1;
}
