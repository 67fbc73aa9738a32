/**
 * The kernels of a stage-2 head step (classifiers/sharded/shard-step.ts) on plain Float32Arrays: the
 * native addon's (native/src/head.cc: AVX2 exp, one pass per statistic over the class-major
 * [Cw, B] logits; a packed AVX-512 matrix product, bit-identical to the addon's general one and
 * 1.1-1.6x its speed on the head's shapes) or, where the addon is missing or
 * `LONGTAIL_NATIVE=0`, the same arithmetic in TypeScript with the products on tfjs. Both round
 * every operation to float32 in the same order; they differ only in exp (about 1 ulp) and in
 * the products' sums.
 */
import { createRequire } from 'node:module';
import type * as TF from '@tensorflow/tfjs-core';
import { loadNativeAddon } from '../native-addon.ts';

// tfjs-core is loaded on the first TypeScript product only (the same instance as the backend's:
// its Node entry is CommonJS, shared through the require cache), so that a head worker running
// the native kernels starts without parsing tfjs (about a third of its start).
let tfCore: typeof TF | null = null;
const tfc = (): typeof TF => {
  tfCore ??= createRequire(import.meta.url)('@tensorflow/tfjs-core') as typeof TF;
  return tfCore;
};

export interface HeadKernels {
  /** True for the native addon's kernels. */
  readonly native: boolean;
  /** xt [d, B] = x [B, d] transposed. */
  transpose(x: Float32Array, xt: Float32Array, B: number, d: number): void;
  /** c [M, N] = a [M, K] x b [K, N], row-major. */
  matmul(a: Float32Array, b: Float32Array, c: Float32Array, M: number, K: number, N: number): void;
  /**
   * a [M, K] packed once for matmulNT (a frozen weight), into `out` when given (at least
   * packedSize(M, K) floats, e.g. shared with worker threads) or a new array; null where no
   * packed product runs (then pass `a` itself, unpacked).
   */
  packA(a: Float32Array, M: number, K: number, out?: Float32Array): Float32Array | null;
  /** The floats packA writes for a [M, K]; 0 where no packed product runs. */
  packedSize(M: number, K: number): number;
  /**
   * c [M, N] = A x^T with x [N, K] row-major (the batch as it comes); A is a [M, K] or, with
   * `packed`, packA's array of it. The same sums as transpose + matmul, bit for bit.
   */
  matmulNT(
    a: Float32Array,
    packed: boolean,
    x: Float32Array,
    c: Float32Array,
    M: number,
    K: number,
    N: number,
  ): void;
  /**
   * matmulNT with X's row j the row rows[j] of x [n, K] (each index in [0, n)): the batch read
   * straight from the training features while the product packs it, with no gathered copy.
   * The same sums as gather + matmulNT, bit for bit.
   */
  matmulNTRows(
    a: Float32Array,
    packed: boolean,
    x: Float32Array,
    rows: Int32Array,
    c: Float32Array,
    M: number,
    K: number,
    N: number,
  ): void;
  /**
   * In place a [Cw, B] (products) += bias[c]; z = a * scale[c] + offset[c] (either may be null);
   * max[r] = max_c z; e [Cw, B] = exp(z - max[r]); sum[r] = sum_c e (c ascending).
   */
  forward(
    a: Float32Array,
    bias: Float32Array,
    scale: Float32Array | null,
    offset: Float32Array | null,
    e: Float32Array,
    max: Float32Array,
    sum: Float32Array,
    Cw: number,
    B: number,
  ): void;
  /**
   * In place g = e [Cw, B] * f[r] - (hot[r] === c ? hv[r] : 0); out[c] = sum_r g (a null) or
   * sum_r g * a[c, r].
   */
  backward(
    e: Float32Array,
    f: Float32Array,
    hot: Int32Array,
    hv: Float32Array,
    a: Float32Array | null,
    out: Float32Array,
    Cw: number,
    B: number,
  ): void;
  /** PyTorch's SGD: d = g + wd * p; buf = momentum * buf + d; p = p - lr * buf (float32 each). */
  sgd(p: Float32Array, g: Float32Array, buf: Float32Array, momentum: number, wd: number, lr: number): void;
  /**
   * For i < count and c < Cw: dst(dstIdx[i], c) = src(srcIdx[i], c), a row-major array holding
   * (j, c) at j * ld + c, a class-major one at c * ld + j (LWS's kept products). Copies only.
   */
  moveColumns(
    src: Float32Array,
    srcRowMajor: boolean,
    srcIdx: Int32Array,
    srcLd: number,
    dst: Float32Array,
    dstRowMajor: boolean,
    dstIdx: Int32Array,
    dstLd: number,
    count: number,
    Cw: number,
  ): void;
  // The stage-2 row kernels (NCM's centroids and scores, evaluation's logits): the native ones
  // give the very bits of the TypeScript ones (double where it computes in double, every sum in
  // its order), so which one runs never changes a result.
  /** mean [d]: mean[j] = float32(mean[j] + f[i, j] / divisor) for the rows of f [n, d] in order. */
  meanRows(f: Float32Array, n: number, d: number, divisor: number, mean: Float32Array): void;
  /**
   * out [n, d] = each row of f minus `mean` (null: unchanged), computed in double and stored as
   * float32, then times 1 / max(||row||, 1e-12), the norm summed in double over the differences.
   */
  transformRows(f: Float32Array, mean: Float32Array | null, out: Float32Array, n: number, d: number): void;
  /** out [C, d]: row labels[i] += x[i] (float32 adds, rows in order); a label outside 0..C-1 throws. */
  addRows(x: Float32Array, labels: Int32Array, out: Float32Array, n: number, d: number, C: number): void;
  /**
   * out [m, C] from `offset` (floats) out of the class-major products zt [C, m]: zt + bias[c]
   * (bias null: zt), or with `sq` NCM's -sqrt(max(0, ||x_i||^2 - 2 zt + sq[c])) in double, x [m, d]
   * the transformed rows and ||x_i||^2 summed in double over j ascending.
   */
  logitRows(
    zt: Float32Array,
    C: number,
    m: number,
    out: Float32Array,
    offset: number,
    bias: Float32Array | null,
    sq: Float32Array | null,
    x: Float32Array | null,
    d: number,
  ): void;
  /**
   * out[i] = the first c maximising (z[i, c] * scale[c]) + shift[c] over z [m, C], each operation
   * rounded to float32 (scale or shift null: left out): tfjs's mul, add and argMax, to the bit (a
   * NaN never wins unless it is the row's first value).
   */
  argmaxColumns(
    z: Float32Array,
    m: number,
    C: number,
    scale: Float32Array | null,
    shift: Float32Array | null,
    out: Int32Array,
  ): void;
  /**
   * w [C, K] packed for rowsProduct (panels of 32 classes), into `out` when given (at least
   * panelsSize(C, K) floats, e.g. shared with worker threads) or a new array; null where that
   * product does not run (no addon or no AVX-512): then transform, matmulNT and logitRows.
   */
  packPanels(w: Float32Array, C: number, K: number, out?: Float32Array): Float32Array | null;
  /** The floats packPanels writes for w [C, K]; 0 where it would return null. */
  panelsSize(C: number, K: number): number;
  /**
   * out [m, C] from `offset` (floats) = x [m, K] W^T from packPanels' array, then + bias, or with
   * sq NCM's score as logitRows computes it: matmulNT then logitRows, to the bit, in one pass
   * over tiles held in registers (no class-major block in memory).
   */
  rowsProduct(
    panels: Float32Array,
    x: Float32Array,
    m: number,
    K: number,
    C: number,
    out: Float32Array,
    offset: number,
    bias: Float32Array | null,
    sq: Float32Array | null,
  ): void;
}

/**
 * The addon's functions (native/src/head.cc), present in addons built with head.cc: the same
 * signatures as the kernels they serve.
 */
interface HeadAddon {
  headTranspose: HeadKernels['transpose'];
  headMatmul: HeadKernels['matmul'];
  headPackA: HeadKernels['packA'];
  headPackedSize: HeadKernels['packedSize'];
  headMatmulNT: HeadKernels['matmulNT'];
  headMatmulNTRows: HeadKernels['matmulNTRows'];
  headForward: HeadKernels['forward'];
  headBackward: HeadKernels['backward'];
  headSgd: HeadKernels['sgd'];
  headMeanRows: HeadKernels['meanRows'];
  headTransformRows: HeadKernels['transformRows'];
  headAddRows: HeadKernels['addRows'];
  headLogitRows: HeadKernels['logitRows'];
  headMoveColumns: HeadKernels['moveColumns'];
  headArgmaxColumns: HeadKernels['argmaxColumns'];
  headPackPanels: HeadKernels['packPanels'];
  headPanelsSize: HeadKernels['panelsSize'];
  headRowsProduct: HeadKernels['rowsProduct'];
}

/** [N, K]: row j is row rows[j] of x [n, K]. */
function gatherRows(x: Float32Array, rows: Int32Array, K: number, N: number): Float32Array {
  const n = Math.floor(x.length / K);
  const out = new Float32Array(N * K);
  for (let j = 0; j < N; j++) {
    const r = rows[j]!;
    if (!(r >= 0 && r < n)) throw new Error(`head kernels: row index ${r} is outside the ${n} rows`);
    out.set(x.subarray(r * K, (r + 1) * K), j * K);
  }
  return out;
}

const fr = Math.fround;
const pairwise = (l: Float32Array) =>
  fr(fr(fr(l[0]! + l[1]!) + fr(l[2]! + l[3]!)) + fr(fr(l[4]! + l[5]!) + fr(l[6]! + l[7]!)));

export const tsHeadKernels: HeadKernels = {
  native: false,
  transpose(x, xt, B, d) {
    const T = 32;
    for (let r0 = 0; r0 < B; r0 += T)
      for (let k0 = 0; k0 < d; k0 += T) {
        const r1 = Math.min(B, r0 + T);
        const k1 = Math.min(d, k0 + T);
        for (let k = k0; k < k1; k++) for (let r = r0; r < r1; r++) xt[k * B + r] = x[r * d + k]!;
      }
  },
  matmul(a, b, c, M, K, N) {
    const tf = tfc();
    const t = tf.tidy(() =>
      tf.matMul(tf.tensor2d(a.subarray(0, M * K), [M, K]), tf.tensor2d(b.subarray(0, K * N), [K, N])),
    );
    // Read outside tidy (on wasm a read inside tidy is much slower).
    c.set(t.dataSync() as Float32Array);
    t.dispose();
  },
  packA: () => null,
  packedSize: () => 0,
  matmulNT(a, packed, x, c, M, K, N) {
    if (packed) throw new Error('head kernels: no packed product in the TypeScript kernels');
    const xt = new Float32Array(K * N);
    tsHeadKernels.transpose(x, xt, N, K);
    tsHeadKernels.matmul(a, xt, c, M, K, N);
  },
  matmulNTRows(a, packed, x, rows, c, M, K, N) {
    tsHeadKernels.matmulNT(a, packed, gatherRows(x, rows, K, N), c, M, K, N);
  },
  forward(a, bias, scale, offset, e, max, sum, Cw, B) {
    max.fill(-Infinity, 0, B);
    sum.fill(0, 0, B);
    for (let c = 0; c < Cw; c++) {
      const o = c * B;
      const bc = bias[c]!;
      for (let r = 0; r < B; r++) {
        const v = fr(a[o + r]! + bc);
        a[o + r] = v;
        let z = scale ? fr(v * scale[c]!) : v;
        if (offset) z = fr(z + offset[c]!);
        e[o + r] = z;
        if (z > max[r]!) max[r] = z;
      }
    }
    for (let c = 0; c < Cw; c++) {
      const o = c * B;
      for (let r = 0; r < B; r++) {
        const v = Math.exp(fr(e[o + r]! - max[r]!));
        e[o + r] = v;
        sum[r] = sum[r]! + v; // (sum is float32: rounded at every add, as natively)
      }
    }
  },
  backward(e, f, hot, hv, a, out, Cw, B) {
    // Eight lanes of rows r = l mod 8, summed pairwise at the end, then the tail rows: the
    // native kernel's order.
    const B8 = B - (B % 8);
    const lanes = new Float32Array(8);
    for (let c = 0; c < Cw; c++) {
      const o = c * B;
      lanes.fill(0);
      let s = 0;
      for (let r = 0; r < B; r++) {
        const g = fr(fr(e[o + r]! * f[r]!) - (hot[r] === c ? hv[r]! : 0));
        e[o + r] = g;
        const t = a ? fr(g * a[o + r]!) : g;
        if (r < B8) lanes[r % 8] = lanes[r % 8]! + t;
        else {
          if (r === B8) s = pairwise(lanes);
          s = fr(s + t);
        }
      }
      out[c] = B8 === B ? pairwise(lanes) : s;
    }
  },
  sgd(p, g, buf, momentum, wd, lr) {
    const m = fr(momentum);
    const w = fr(wd);
    const l = fr(lr);
    for (let i = 0; i < p.length; i++) {
      const d = fr(g[i]! + fr(p[i]! * w));
      const b = fr(fr(buf[i]! * m) + d);
      buf[i] = b;
      p[i] = fr(p[i]! - fr(b * l));
    }
  },
  moveColumns(src, srcRowMajor, srcIdx, srcLd, dst, dstRowMajor, dstIdx, dstLd, count, Cw) {
    for (let i = 0; i < count; i++) {
      const sj = srcIdx[i]!;
      const dj = dstIdx[i]!;
      for (let c = 0; c < Cw; c++)
        dst[dstRowMajor ? dj * dstLd + c : c * dstLd + dj] =
          src[srcRowMajor ? sj * srcLd + c : c * srcLd + sj]!;
    }
  },
  meanRows(f, n, d, divisor, mean) {
    for (let i = 0; i < n; i++) {
      const o = i * d;
      for (let j = 0; j < d; j++) mean[j]! += f[o + j]! / divisor;
    }
  },
  transformRows(f, mean, out, n, d) {
    for (let i = 0; i < n; i++) {
      const o = i * d;
      let s = 0;
      // The difference in double, stored as f32; the norm sums the double differences.
      for (let j = 0; j < d; j++) {
        const v = mean ? f[o + j]! - mean[j]! : f[o + j]!;
        out[o + j] = v;
        s += v * v;
      }
      const inv = 1 / Math.max(Math.sqrt(s), 1e-12);
      for (let j = 0; j < d; j++) out[o + j]! *= inv;
    }
  },
  addRows(x, labels, out, n, d, C) {
    for (let i = 0; i < n; i++) {
      const c = labels[i]!;
      if (!(c >= 0 && c < C)) throw new Error('head kernels: a label is outside 0 .. C-1');
      const o = c * d;
      const xo = i * d;
      for (let j = 0; j < d; j++) out[o + j]! += x[xo + j]!;
    }
  },
  logitRows(zt, C, m, out, offset, bias, sq, x, d) {
    for (let i = 0; i < m; i++) {
      const o = offset + i * C;
      if (sq) {
        let xx = 0;
        for (let j = 0; j < d; j++) xx += x![i * d + j]! ** 2;
        for (let c = 0; c < C; c++) out[o + c] = -Math.sqrt(Math.max(0, xx - 2 * zt[c * m + i]! + sq[c]!));
      } else if (bias) {
        for (let c = 0; c < C; c++) out[o + c] = zt[c * m + i]! + bias[c]!;
      } else {
        for (let c = 0; c < C; c++) out[o + c] = zt[c * m + i]!;
      }
    }
  },
  argmaxColumns(z, m, C, scale, shift, out) {
    for (let i = 0; i < m; i++) {
      const o = i * C;
      let best = 0;
      let bestV = 0;
      for (let c = 0; c < C; c++) {
        let v = z[o + c]!;
        if (scale) v = fr(v * scale[c]!);
        if (shift) v = fr(v + shift[c]!);
        if (c === 0 || v > bestV) {
          bestV = v;
          best = c;
        }
      }
      out[i] = best;
    }
  },
  packPanels: () => null,
  panelsSize: () => 0,
  rowsProduct() {
    throw new Error('head kernels: no packed product in the TypeScript kernels');
  },
};

let cached: HeadKernels | null | undefined;

/** The native head kernels, or null where the addon is missing, disabled or older than head.cc. */
export function nativeHeadKernels(): HeadKernels | null {
  if (cached !== undefined) return cached;
  cached = headKernelsOf(loadNativeAddon());
  return cached;
}

/**
 * The head kernels of an addon object (this package's, or another build's for a benchmark that
 * alternates two builds in one process: bench/profile-head.ts --baseline); null if it has none.
 */
export function headKernelsOf(addon: object | null): HeadKernels | null {
  const a = addon as Partial<HeadAddon> | null;
  if (!a || typeof a.headForward !== 'function') return null;
  const h = a as HeadAddon;
  return {
    native: true,
    transpose: (x, xt, B, d) => h.headTranspose(x, xt, B, d),
    matmul: (x, y, c, M, K, N) => h.headMatmul(x, y, c, M, K, N),
    // An addon built before headMatmulNT: transpose, then the product (the same sums).
    packA: (x, M, K, out) =>
      typeof h.headPackA !== 'function' ? null : out ? h.headPackA(x, M, K, out) : h.headPackA(x, M, K),
    // An addon built before headPackedSize: no packing into a caller's array.
    packedSize: (M, K) => (typeof h.headPackedSize === 'function' ? h.headPackedSize(M, K) : 0),
    matmulNT:
      typeof h.headMatmulNT === 'function'
        ? (x, packed, y, c, M, K, N) => h.headMatmulNT(x, packed, y, c, M, K, N)
        : (x, _packed, y, c, M, K, N) => {
            const yt = new Float32Array(K * N);
            h.headTranspose(y, yt, N, K);
            h.headMatmul(x, yt, c, M, K, N);
          },
    // An addon built before headMatmulNTRows: gather, then the product (the same sums).
    matmulNTRows:
      typeof h.headMatmulNTRows === 'function'
        ? (x, packed, y, rows, c, M, K, N) => h.headMatmulNTRows(x, packed, y, rows, c, M, K, N)
        : (x, packed, y, rows, c, M, K, N) =>
            h.headMatmulNT(x, packed, gatherRows(y, rows, K, N), c, M, K, N),
    forward: (x, bias, scale, offset, e, max, sum, Cw, B) =>
      h.headForward(x, bias, scale, offset, e, max, sum, Cw, B),
    backward: (e, f, hot, hv, x, out, Cw, B) => h.headBackward(e, f, hot, hv, x, out, Cw, B),
    sgd: (p, g, buf, m, wd, lr) => h.headSgd(p, g, buf, m, wd, lr),
    // An addon built before headMoveColumns: the TypeScript copies.
    moveColumns:
      typeof h.headMoveColumns === 'function'
        ? (src, sr, si, sl, dst, dr, di, dl, count, Cw) => {
            if (count > 0) h.headMoveColumns(src, sr, si, sl, dst, dr, di, dl, count, Cw);
          }
        : tsHeadKernels.moveColumns,
    // An addon built before headArgmaxColumns: the TypeScript loop (the same answers).
    argmaxColumns:
      typeof h.headArgmaxColumns === 'function'
        ? (z, m, C, scale, shift, out) => {
            if (m > 0) h.headArgmaxColumns(z, m, C, scale, shift, out);
          }
        : tsHeadKernels.argmaxColumns,
    // An addon built before headRowsProduct: no panels (callers take matmulNT and logitRows).
    ...(typeof h.headRowsProduct === 'function'
      ? {
          packPanels: (w, C, K, out) => (out ? h.headPackPanels(w, C, K, out) : h.headPackPanels(w, C, K)),
          panelsSize: (C, K) => h.headPanelsSize(C, K),
          rowsProduct: (panels, x, m, K, C, out, offset, bias, sq) => {
            if (m > 0) h.headRowsProduct(panels, x, m, K, C, out, offset, bias, sq);
          },
        }
      : {
          packPanels: tsHeadKernels.packPanels,
          panelsSize: tsHeadKernels.panelsSize,
          rowsProduct: tsHeadKernels.rowsProduct,
        }),
    // An addon built before the row kernels: the TypeScript ones (the same bits).
    ...(typeof h.headLogitRows === 'function'
      ? {
          meanRows: (f, n, d, divisor, mean) => {
            if (n > 0) h.headMeanRows(f, n, d, divisor, mean);
          },
          transformRows: (f, mean, out, n, d) => {
            if (n > 0) h.headTransformRows(f, mean, out, n, d);
          },
          addRows: (x, labels, out, n, d, C) => {
            if (n > 0) h.headAddRows(x, labels, out, n, d, C);
          },
          logitRows: (zt, C, m, out, offset, bias, sq, x, d) => {
            if (m > 0) h.headLogitRows(zt, C, m, out, offset, bias, sq, x, d);
          },
        }
      : {
          meanRows: tsHeadKernels.meanRows,
          transformRows: tsHeadKernels.transformRows,
          addRows: tsHeadKernels.addRows,
          logitRows: tsHeadKernels.logitRows,
        }),
  };
}

/** The kernels a head step runs: native where it can, else TypeScript. */
export function headKernels(): HeadKernels {
  return nativeHeadKernels() ?? tsHeadKernels;
}
