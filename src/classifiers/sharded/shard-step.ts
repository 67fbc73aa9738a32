/**
 * One class shard of a softmax classifier head trained on frozen features (cRT, LWS), with the
 * gradient written out instead of taken by autodiff, so that the classes can be split across
 * threads: each shard holds the rows of its classes [lo, hi), computes its logits, and the
 * shards need to agree on one number per example, the softmax normaliser (log-sum-exp), before
 * each computes its own gradient and update. Nothing else crosses shards, so the result equals
 * training the whole head on one thread (up to float rounding).
 *
 * Per step with features X [B, d] and labels y:
 *   forward   Z = X W_s^T + b_s  (linear: cRT)   or   Z = s_s * (X W_s^T + b_s)  (scaled: LWS),
 *             plus the loss's per-class logit offset o_s if any (balanced softmax: o = log prior;
 *             it enters the softmax only), then the shard's row maxima m_w, local softmax p_w and
 *             its largest value (= 1 / sum of exp(z - m_w)), and the (weighted) sum of its label logits
 *   combine   lse = log sum_w exp(m_w) / max(p_w), one per row (combineShardStats)
 *   backward  G = u_r (p_w * exp(m_w - lse) / max(p_w) - onehot) / B, the exact softmax - onehot of
 *             the mean cross-entropy, each row weighted by its label's class weight u_r (1 unless
 *             class-balanced: weight balancing); dW = G^T X, db = sum_rows G (linear) or
 *             ds = sum_rows G * A (scaled); then SGD with momentum and weight decay (the Sgd class,
 *             PyTorch's rule), then, with a max norm, each row of W projected into the ball.
 *
 * Layout: the weight is kept as [Cw, d] and the logits class-major, Z^T [Cw, B] = W X^T, so that
 * the backward product dW = G^T X needs no transpose of the [Cw, B] gradient (X [B, d] is packed
 * for W X^T straight from its rows, and LWS's frozen W is packed once), and every per-row
 * statistic is a reduction over contiguous lanes.
 * The element-wise work is fused into two passes forward and one backward (backend/native-head.ts:
 * the native addon's AVX2 kernels, else the same arithmetic in TypeScript).
 */
import { type HeadKernels, headKernels } from '../../backend/native-head.ts';
import { bigFloats } from '../../io/huge-pages.ts';
export type HeadKind = 'linear' | 'scaled';

export interface ShardSpec {
  kind: HeadKind;
  dim: number;
  /** Classes [lo, hi) of this shard. */
  lo: number;
  hi: number;
  /** [hi - lo, d] rows of the weight (trained for linear, frozen for scaled). */
  weight: Float32Array;
  /** [hi - lo] bias (trained for linear, frozen for scaled). */
  bias: Float32Array;
  momentum: number;
  weightDecay: number;
  /** [hi - lo] per-class logit offset added inside the softmax only (balanced softmax); none: 0. */
  offset?: Float32Array | null;
  /** [C] loss weight per class, for every class (a row's weight is its label's); none: all 1. */
  classWeights?: Float32Array | null;
  /** After each step, each weight row w_j is rescaled to norm <= maxNorm (linear kind; MaxNorm). */
  maxNorm?: number | null;
  /**
   * Scaled kind: the training rows whose products X W^T (this shard's Cw values each) are kept
   * after their first use and reused when the row comes back (null or empty: none). W is frozen,
   * so a row's products never change, and each is the same FMA chain whichever batch computes
   * it: the very bits. trainHead picks the rows class-aware sampling draws most often in the run
   * (the tail's: a class of n_c images has each drawn about (steps x batch / C) / n_c times an
   * epoch), up to its memory budget.
   */
  cacheRows?: Int32Array | null;
  /**
   * Scaled kind: the training features [n, d] themselves (on a SharedArrayBuffer where a worker
   * holds the shard). Then forward takes no batch: the product reads the batch's rows by index
   * while it packs them (matmulNTRows), so no thread gathers or copies the batch (the same bits).
   */
  features?: Float32Array | null;
}

/** What a shard tells the others after its forward pass: per row, its max logit and max softmax. */
export interface ShardStats {
  max: Float32Array;
  pmax: Float32Array;
  /** Sum over the batch rows whose label is in this shard of the label's logit (times the row's weight). */
  labelLogitSum: number;
}

/** The shards' statistics combined: the softmax normaliser per row and the batch loss. */
export interface CombinedStats {
  /** Per shard, per row: exp(m_w - lse) / max(p_w), the factor from the local to the global softmax. */
  rowScale: Float32Array[];
  /** Mean cross-entropy of the batch. */
  loss: number;
}

/** `rowWeights` [B]: each row's loss weight (its label's class weight); default all 1. */
export function combineShardStats(
  stats: ShardStats[],
  batch: number,
  rowWeights: Float32Array | null = null,
): CombinedStats {
  const rowScale = stats.map(() => new Float32Array(batch));
  let lseSum = 0;
  let labelSum = 0;
  for (const s of stats) labelSum += s.labelLogitSum;
  for (let r = 0; r < batch; r++) {
    let top = -Infinity;
    for (const s of stats) top = Math.max(top, s.max[r]!);
    // sum_w exp(m_w - top) * S_w with S_w = sum_c exp(z_c - m_w) = 1 / pmax_w.
    let total = 0;
    for (const s of stats) total += Math.exp(s.max[r]! - top) / s.pmax[r]!;
    const lse = top + Math.log(total);
    lseSum += (rowWeights ? rowWeights[r]! : 1) * lse;
    stats.forEach((s, w) => {
      rowScale[w]![r] = Math.exp(s.max[r]! - lse) / s.pmax[r]!;
    });
  }
  return { rowScale, loss: (lseSum - labelSum) / batch };
}

/** Splits C classes into `shards` contiguous ranges of near-equal size. */
export function classRanges(numClasses: number, shards: number): [number, number][] {
  return Array.from({ length: shards }, (_, k) => [
    Math.round((k * numClasses) / shards),
    Math.round(((k + 1) * numClasses) / shards),
  ]);
}

/** The arrays of one batch size, reused from step to step. */
interface BatchBuffers {
  B: number;
  /** [B, d] the batch (linear kind: dW = G^T X reads it in backward). */
  x: Float32Array;
  /** [Cw, B] logits before scaling and offset (the products plus bias). */
  a: Float32Array;
  /** [Cw, B] exp(z - max) after forward, the gradient G after backward. */
  e: Float32Array;
  /** [B] per-row max logit and sum of exp(z - max) over this shard's classes. */
  max: Float32Array;
  sum: Float32Array;
  /** [B] the label's column in this shard, or -1. */
  hot: Int32Array;
  /** [B] u_r / B: the onehot's value in the gradient. */
  hv: Float32Array;
  /** [B] u_r exp(m_w - lse) / B: the factor from exp(z - max) to the gradient. */
  f: Float32Array;
}

export class HeadShard {
  readonly width: number;
  private readonly weight: Float32Array; // [Cw, d]
  private readonly bias: Float32Array; // [Cw]
  private readonly scales: Float32Array | null; // [Cw], scaled kind only
  /** The frozen weight packed once for the product (scaled kind, where the packed product runs). */
  private readonly packed: Float32Array | null;
  private readonly offset: Float32Array | null; // [Cw]
  /** Momentum buffers: weight and bias (linear), scales (scaled). */
  private readonly mom: Float32Array[];
  /** [Cw, d] dW (linear kind). */
  private readonly dw: Float32Array | null;
  /** [Cw] db (linear) or ds (scaled). */
  private readonly dv: Float32Array;
  private readonly k: HeadKernels;
  /** [B] the current batch's row weights (null: all 1). */
  private rowWeights: Float32Array | null = null;
  private buf: BatchBuffers | null = null;
  /** Whether forward ran since the last backward. */
  private pending = false;
  /** Scaled kind: training row -> its slot in `cache` ([slots, Cw], row-major), or -1: not kept. */
  private readonly slotOf: Int32Array;
  /** Per slot: 1 once its products are in `cache`. */
  private readonly filled: Uint8Array;
  private cache = new Float32Array(0);
  /** The batch's rows whose products are computed this step, gathered [m, d], and their [Cw, m] products. */
  private missX = new Float32Array(0);
  private missA = new Float32Array(0);
  /** Index lists of cachedProducts, [4 * B]. */
  private idx = new Int32Array(0);

  constructor(
    readonly spec: ShardSpec,
    kernels: HeadKernels = headKernels(),
  ) {
    const { dim, lo, hi, kind } = spec;
    this.width = hi - lo;
    if (spec.weight.length !== this.width * dim || spec.bias.length !== this.width)
      throw new Error(`head shard [${lo}, ${hi}): weight or bias has the wrong size`);
    if (spec.offset && spec.offset.length !== this.width)
      throw new Error(`head shard [${lo}, ${hi}): offset has the wrong size`);
    this.k = kernels;
    this.weight = spec.weight.slice();
    this.bias = spec.bias.slice();
    this.offset = spec.offset ? spec.offset.slice() : null;
    if (kind === 'linear') {
      this.scales = null;
      this.mom = [new Float32Array(this.width * dim), new Float32Array(this.width)];
      this.dw = new Float32Array(this.width * dim);
    } else {
      this.scales = new Float32Array(this.width).fill(1);
      // LWS's weight never changes: packed for the product once, not at every step.
      this.mom = [new Float32Array(this.width)];
      this.dw = null;
    }
    this.dv = new Float32Array(this.width);
    this.packed = kind === 'scaled' ? this.k.packA(this.weight, this.width, dim) : null;
    if (spec.features && (kind !== 'scaled' || (spec.cacheRows?.length ?? 0) > 0))
      throw new Error('head shard: features by index are for the scaled kind without kept products');
    const keep = kind === 'scaled' ? (spec.cacheRows ?? null) : null;
    let top = -1;
    if (keep) for (const r of keep) top = Math.max(top, r);
    this.slotOf = new Int32Array(top + 1).fill(-1);
    let slots = 0;
    if (keep) for (const r of keep) if (r >= 0 && this.slotOf[r] === -1) this.slotOf[r] = slots++;
    this.filled = new Uint8Array(slots);
  }

  /** The shards' statistics combined with this batch's row weights (the same in every shard). */
  combine(stats: ShardStats[], batch: number): CombinedStats {
    return combineShardStats(stats, batch, this.rowWeights);
  }

  private buffers(B: number): BatchBuffers {
    if (this.buf?.B === B) return this.buf;
    const d = this.spec.dim;
    const Cw = this.width;
    this.buf = {
      B,
      x: new Float32Array(this.spec.kind === 'linear' ? B * d : 0),
      a: new Float32Array(Cw * B),
      e: new Float32Array(Cw * B),
      max: new Float32Array(B),
      sum: new Float32Array(B),
      hot: new Int32Array(B),
      hv: new Float32Array(B),
      f: new Float32Array(B),
    };
    return this.buf;
  }

  /**
   * The products [Cw, B] = W X^T of the scaled kind from the cache where it holds a row, computed
   * for the others (gathered into one product) and kept if the row is one to keep.
   */
  private cachedProducts(xs: Float32Array, rows: Int32Array, a: Float32Array, B: number): void {
    const d = this.spec.dim;
    const Cw = this.width;
    const slotOf = this.slotOf;
    if (this.idx.length < 4 * B) this.idx = new Int32Array(4 * B);
    // [hit columns | their slots | miss columns | 0 .. m-1], then the new rows' (k, slot) reuse the hit halves.
    const hitR = this.idx.subarray(0, B);
    const hitSlot = this.idx.subarray(B, 2 * B);
    const miss = this.idx.subarray(2 * B, 3 * B);
    const ks = this.idx.subarray(3 * B, 4 * B);
    let h = 0;
    let m = 0;
    for (let r = 0; r < B; r++) {
      const row = rows[r]!;
      const slot = row >= 0 && row < slotOf.length ? slotOf[row]! : -1;
      if (slot >= 0 && this.filled[slot] === 1) {
        hitR[h] = r;
        hitSlot[h++] = slot;
      } else {
        ks[m] = m;
        miss[m++] = r;
      }
    }
    this.k.moveColumns(this.cache, true, hitSlot, Cw, a, false, hitR, B, h, Cw);
    if (m === 0) return;
    if (this.missX.length < m * d) this.missX = new Float32Array(B * d);
    if (this.missA.length < m * Cw) this.missA = new Float32Array(B * Cw);
    const xm = this.missX;
    for (let k = 0; k < m; k++) xm.set(xs.subarray(miss[k]! * d, (miss[k]! + 1) * d), k * d);
    const am = this.missA;
    this.k.matmulNT(this.packed ?? this.weight, this.packed !== null, xm, am, Cw, d, m);
    this.k.moveColumns(am, false, ks, m, a, false, miss, B, m, Cw);
    // Keep the rows to keep (a row twice in the batch is kept once).
    let n = 0;
    for (let k = 0; k < m; k++) {
      const row = rows[miss[k]!]!;
      const slot = row >= 0 && row < slotOf.length ? slotOf[row]! : -1;
      if (slot < 0 || this.filled[slot] === 1) continue;
      // All slots at once, on huge pages: the kernel backs only what is written, and growing by
      // copies paid every page fault twice on this VM.
      if (this.cache.length === 0) this.cache = bigFloats(this.filled.length * Cw);
      this.filled[slot] = 1;
      hitR[n] = k;
      hitSlot[n++] = slot;
    }
    this.k.moveColumns(am, false, hitR, m, this.cache, true, hitSlot, Cw, n, Cw);
  }

  /**
   * Forward on features x [B, d] (row-major) with global labels; keeps what backward needs.
   * `rows`: the batch's training-row indices (-1: not a training row), for the scaled kind's cache;
   * with spec.features, x is null and the batch is those rows of the features.
   */
  forward(x: Float32Array | null, labels: Int32Array, rows: Int32Array | null = null): ShardStats {
    const B = labels.length;
    const { lo, hi, dim: d } = this.spec;
    const feats = this.spec.features ?? null;
    if (x === null ? feats === null || rows === null || rows.length < B : x.length < B * d)
      throw new Error(`head shard: expected ${B} rows of ${d} features`);
    const Cw = this.width;
    const b = this.buffers(B);
    const cw = this.spec.classWeights;
    this.rowWeights = cw ? Float32Array.from(labels.subarray(0, B), (y) => cw[y]!) : null;
    const w = this.packed ?? this.weight;
    if (x === null) {
      // [Cw, B] = W X^T with X's rows read from the features by index as the product packs them.
      this.k.matmulNTRows(w, this.packed !== null, feats!, rows!.subarray(0, B), b.a, Cw, d, B);
    } else {
      let xs = x.subarray(0, B * d);
      if (this.spec.kind === 'linear') {
        // A copy: backward reads it, and x may be a shared buffer the next batch is written to.
        b.x.set(xs);
        xs = b.x;
      }
      // [Cw, B] = W X^T, X packed for the product straight from its rows.
      if (this.scales && rows && this.filled.length > 0) this.cachedProducts(xs, rows, b.a, B);
      else this.k.matmulNT(w, this.packed !== null, xs, b.a, Cw, d, B);
    }
    this.k.forward(b.a, this.bias, this.scales, this.offset, b.e, b.max, b.sum, Cw, B);
    // The (weighted) sum of the label logits z = a * s + o of the rows whose label is here.
    let labelLogitSum = 0;
    for (let r = 0; r < B; r++) {
      const y = labels[r]!;
      const u = this.rowWeights ? this.rowWeights[r]! : 1;
      b.hv[r] = u / B;
      if (y < lo || y >= hi) {
        b.hot[r] = -1;
        continue;
      }
      const c = y - lo;
      b.hot[r] = c;
      let z = b.a[c * B + r]!;
      if (this.scales) z = Math.fround(z * this.scales[c]!);
      if (this.offset) z = Math.fround(z + this.offset[c]!);
      labelLogitSum += u * z;
    }
    this.pending = true;
    // The local softmax's largest value is exp(0) / sum = 1 / sum.
    const pmax = Float32Array.from(b.sum.subarray(0, B), (v) => 1 / v);
    return { max: b.max.slice(0, B), pmax, labelLogitSum };
  }

  /** Gradient of the mean cross-entropy from the combined row scales, then one SGD step. */
  backward(rowScale: Float32Array, lr: number): void {
    const b = this.buf;
    if (!this.pending || b === null) throw new Error('head shard: backward without forward');
    this.pending = false;
    const B = b.B;
    const Cw = this.width;
    const d = this.spec.dim;
    const u = this.rowWeights;
    // p * rowScale = (e / sum) * exp(m_w - lse) * sum: G = u (e exp(m_w - lse) - onehot) / B.
    for (let r = 0; r < B; r++) b.f[r] = ((u ? u[r]! : 1) * rowScale[r]!) / (b.sum[r]! * B);
    const { momentum, weightDecay } = this.spec;
    if (this.scales) {
      this.k.backward(b.e, b.f, b.hot, b.hv, b.a, this.dv, Cw, B); // ds = sum_rows G * A
      this.k.sgd(this.scales, this.dv, this.mom[0]!, momentum, weightDecay, lr);
      return;
    }
    this.k.backward(b.e, b.f, b.hot, b.hv, null, this.dv, Cw, B); // db = sum_rows G
    this.k.matmul(b.e, b.x, this.dw!, Cw, B, d); // dW [Cw, d] = G^T X
    this.k.sgd(this.weight, this.dw!, this.mom[0]!, momentum, weightDecay, lr);
    this.k.sgd(this.bias, this.dv, this.mom[1]!, momentum, weightDecay, lr);
    const r = this.spec.maxNorm;
    if (r !== undefined && r !== null) {
      // Projected gradient descent onto ||w_j|| <= r (rows inside the ball are untouched).
      const w = this.weight;
      for (let c = 0; c < Cw; c++) {
        let n2 = 0;
        for (let j = c * d; j < (c + 1) * d; j++) n2 += w[j]! * w[j]!;
        const f = Math.fround(Math.min(1, r / Math.max(Math.fround(Math.sqrt(n2)), 1e-12)));
        if (f < 1) for (let j = c * d; j < (c + 1) * d; j++) w[j] = w[j]! * f;
      }
    }
  }

  /** The shard's trained state: weight rows and bias (linear) or scales (scaled). */
  state(): { weight: Float32Array; bias: Float32Array; scales: Float32Array | null } {
    return {
      weight: this.weight.slice(),
      bias: this.bias.slice(),
      scales: this.scales ? this.scales.slice() : null,
    };
  }

  dispose(): void {
    this.buf = null;
    this.pending = false;
    this.filled.fill(0);
    this.cache = new Float32Array(0);
  }
}
