/** Dense helpers shared by the stage-2 classifiers. */
import * as tf from '@tensorflow/tfjs-core';
import { type HeadKernels, headKernels, nativeHeadKernels } from '../backend/native-head.ts';
import { defaultChunkRows } from '../eval/metrics.ts';
import { bigFloats } from '../io/huge-pages.ts';
import type { FeatureTransform, FoldedLinear, LinearLogits } from './types.ts';

/**
 * Applies a feature transform to [n, d] features: f itself for 'none', else a new array (or
 * `out`, at least n * d floats). The arithmetic is the head kernels' transformRows (native where
 * it runs: the same bits).
 */
export function transformFeatures(
  f: Float32Array,
  n: number,
  d: number,
  t: FeatureTransform,
  out?: Float32Array,
): Float32Array {
  if (t.kind === 'none') return f;
  const x = out ?? bigFloats(n * d);
  headKernels().transformRows(f, t.kind === 'cl2n' ? t.mean : null, x, n, d);
  return x;
}

/**
 * logits = f W^T + b. f [n, d], W [C, d], b [C] -> [n, C]. `batch` rows at a time (default:
 * defaultChunkRows(C, d), 8 MiB of features or logits). Where the native packed product runs, W
 * is packed once and each batch's products come from it (LinearRows); elsewhere on the tfjs
 * backend, whose heap then holds W^T and one batch (on wasm it never shrinks once grown). Each
 * row's logits do not depend on the batch (the product computes every row alike), and both paths
 * give the same bits where both run (the native product is the tfjs backend's there).
 */
export function linearLogits(
  f: Float32Array,
  n: number,
  d: number,
  weight: Float32Array,
  bias: Float32Array | null,
  C: number,
  batch: number = defaultChunkRows(C, d),
): Float32Array {
  const out = bigFloats(n * C);
  const step = Math.max(1, Math.floor(batch));
  const rows = n > 0 ? LinearRows.create({ transform: { kind: 'none' }, weight, bias }, C, d) : null;
  if (rows) {
    for (let s = 0; s < n; s += step) {
      const m = Math.min(step, n - s);
      rows.compute(f.subarray(s * d, (s + m) * d), m, out, s * C);
    }
    return out;
  }
  // W^T once (what matMul's transposeB would do on every batch: the same values).
  const wT = tf.tidy(() => tf.transpose(tf.tensor2d(weight, [C, d]))); // [d, C]
  const b = bias ? tf.tensor1d(bias) : null;
  try {
    for (let s = 0; s < n; s += step) {
      const m = Math.min(step, n - s);
      const z = tf.tidy(() => {
        const x = tf.tensor2d(f.subarray(s * d, (s + m) * d), [m, d]);
        const y = tf.matMul(x, wT); // [m, C]
        return b ? tf.add(y, b) : y;
      });
      out.set(z.dataSync() as Float32Array, s * C); // read outside tidy (fast on wasm)
      z.dispose();
    }
  } finally {
    wT.dispose();
    b?.dispose();
  }
  return out;
}

/**
 * The logits of a LinearLogits, rows [m, C] for features [m, d], with the weight packed once
 * instead of W^T built for every block. Where the addon has it (AVX-512), the rows product:
 * [m, C] = X W^T tile by tile with the bias or NCM's distance applied while each tile is in
 * registers; elsewhere with a packed product, the class-major Z^T = W X^T of the head's training,
 * transposed on the way out with the bias or the distance. Either way each logit is the same FMA
 * chain over the features, in order, as linearLogits' product, and the epilogue the same
 * operations: the very bits of linearLogits, whatever the rows' split into blocks or threads.
 */
export class LinearRows {
  private readonly k: HeadKernels;
  /** [C, m] products of the last block (the class-major path). */
  private zt = new Float32Array(0);

  private constructor(
    private readonly spec: LinearLogits,
    private readonly packed: Float32Array,
    /** `packed` is packPanels' layout (the rows product), else packA's. */
    private readonly panels: boolean,
    private readonly C: number,
    private readonly d: number,
    k: HeadKernels,
  ) {
    this.k = k;
  }

  /**
   * For `spec` [C, d]: `packed` is the weight already packed by LinearRows.pack (e.g. shared by
   * threads), else packed here. Null where no packed product runs (no addon, no AVX-512):
   * linearLogits (tfjs) then computes the logits.
   */
  static create(spec: LinearLogits, C: number, d: number, packed?: Float32Array): LinearRows | null {
    const k = nativeHeadKernels();
    if (k === null || !(C > 0 && d > 0) || packedLinearSize(C, d) === 0) return null;
    const panels = k.panelsSize(C, d) > 0;
    const p = packed ?? LinearRows.pack(spec.weight, C, d);
    return p === null ? null : new LinearRows(spec, p, panels, C, d, k);
  }

  /** weight [C, d] packed for LinearRows (into `out`: packedLinearSize floats), or null where none runs. */
  static pack(weight: Float32Array, C: number, d: number, out?: Float32Array): Float32Array | null {
    const k = nativeHeadKernels();
    if (k === null) return null;
    return k.panelsSize(C, d) > 0 ? k.packPanels(weight, C, d, out) : k.packA(weight, C, d, out);
  }

  /** [m, d] transformed rows of the last block (a transform but 'none'). */
  private xt = new Float32Array(0);

  /** Logits of features f [m, d] into out [m, C] from `offset` (floats). */
  compute(f: Float32Array, m: number, out: Float32Array, offset = 0): void {
    const { C, d, spec } = this;
    if (m === 0) return;
    if (spec.transform.kind !== 'none' && this.xt.length < m * d) this.xt = bigFloats(m * d);
    const x = transformFeatures(f.subarray(0, m * d), m, d, spec.transform, this.xt);
    const sq = spec.sqDistance ?? null;
    if (this.panels) {
      this.k.rowsProduct(this.packed, x, m, d, C, out, offset, sq ? null : spec.bias, sq);
      return;
    }
    if (this.zt.length < C * m) this.zt = bigFloats(C * m);
    const zt = this.zt;
    this.k.matmulNT(this.packed, true, x, zt, C, d, m); // [C, m] = W X^T
    // Out row by row, by tiles (the class-major zt read one value a cache line cost more than
    // the product): + bias, or NCM's l2 score as ncm.ts defines it.
    this.k.logitRows(zt, C, m, out, offset, sq ? null : spec.bias, sq, sq ? x : null, d);
  }
}

/** The floats of a packed [C, d] weight (LinearRows), or 0 where no packed product runs. */
export function packedLinearSize(C: number, d: number): number {
  const k = nativeHeadKernels();
  if (k === null) return 0;
  const panels = k.panelsSize(C, d);
  return panels > 0 ? panels : k.packedSize(C, d);
}

/** The logits of a LinearLogits spec on one thread: f [n, d] -> [n, C] (the methods' `logits`). */
export function specLogits(
  spec: LinearLogits,
  f: Float32Array,
  n: number,
  d: number,
  C: number,
): Float32Array {
  // Packed: a block of rows at a time, transformed, multiplied and scored (no whole [n, d] copy).
  const rows = n > 0 ? LinearRows.create(spec, C, d) : null;
  if (rows) {
    const out = bigFloats(n * C);
    const step = Math.max(1, Math.floor(defaultChunkRows(C, d)));
    for (let s = 0; s < n; s += step) {
      const m = Math.min(step, n - s);
      rows.compute(f.subarray(s * d, (s + m) * d), m, out, s * C);
    }
    return out;
  }
  const x = transformFeatures(f, n, d, spec.transform);
  const z = linearLogits(x, n, d, spec.weight, spec.bias, C);
  const sq = spec.sqDistance;
  if (!sq) return z;
  // -||x - c|| = -sqrt(||x||^2 - 2 x.c + ||c||^2)
  for (let i = 0; i < n; i++) {
    let xx = 0;
    for (let j = 0; j < d; j++) xx += x[i * d + j]! ** 2;
    for (let c = 0; c < C; c++) z[i * C + c] = -Math.sqrt(Math.max(0, xx - 2 * z[i * C + c]! + sq[c]!));
  }
  return z;
}

export function foldedLogits(
  layer: FoldedLinear,
  f: Float32Array,
  n: number,
  d: number,
  C: number,
): Float32Array {
  const dist = layer.distance;
  if (!dist)
    return linearLogits(transformFeatures(f, n, d, layer.transform), n, d, layer.weight, layer.bias, C);
  // b - scale ||x - c||: the distances by the run's own path (the same bits as NCM's logits).
  const spec = { transform: layer.transform, weight: layer.weight, bias: null, sqDistance: dist.sqNorms };
  const z = specLogits(spec, f, n, d, C);
  for (let i = 0; i < n; i++)
    for (let c = 0; c < C; c++) z[i * C + c] = layer.bias[c]! + dist.scale * z[i * C + c]!;
  return z;
}

/** Row norms of W [C, d]. */
export function rowNorms(w: Float32Array, C: number, d: number): number[] {
  return Array.from({ length: C }, (_, i) => {
    let s = 0;
    for (let j = 0; j < d; j++) s += w[i * d + j]! ** 2;
    return Math.sqrt(s);
  });
}
