/**
 * Dense linear systems for the small matrices evaluation meets (BBSE's C x C normal equations in
 * label-shift.ts): C is the number of classes, so O(C^3) in float64 is cheap, and no library is
 * needed.
 */

/** Solves A x = b (A [K, K] row-major, f64) by Gaussian elimination with partial pivoting. */
export function solveLinear(A: Float64Array, b: Float64Array, K: number): Float64Array {
  const M = Float64Array.from(A);
  const x = Float64Array.from(b);
  for (let k = 0; k < K; k++) {
    let p = k;
    for (let r = k + 1; r < K; r++) if (Math.abs(M[r * K + k]!) > Math.abs(M[p * K + k]!)) p = r;
    if (M[p * K + k] === 0) throw new Error('solveLinear: singular matrix');
    if (p !== k) {
      for (let c = 0; c < K; c++) {
        const t = M[k * K + c]!;
        M[k * K + c] = M[p * K + c]!;
        M[p * K + c] = t;
      }
      const t = x[k]!;
      x[k] = x[p]!;
      x[p] = t;
    }
    for (let r = k + 1; r < K; r++) {
      const f = M[r * K + k]! / M[k * K + k]!;
      if (f === 0) continue;
      for (let c = k; c < K; c++) M[r * K + c]! -= f * M[k * K + c]!;
      x[r]! -= f * x[k]!;
    }
  }
  for (let k = K - 1; k >= 0; k--) {
    let s = x[k]!;
    for (let c = k + 1; c < K; c++) s -= M[k * K + c]! * x[c]!;
    x[k] = s / M[k * K + k]!;
  }
  return x;
}
