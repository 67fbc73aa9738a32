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
 * Layout: the weight is kept as [Cw, d] and the product computed as (W X^T)^T: on the wasm backend
 * the packed right-hand operand is then the small X^T rather than the [d, C] weight, which ran at
 * 30 against 20 GFLOP/s for [128, 512] x [512, 1000].
 */
import * as tf from '@tensorflow/tfjs-core';
import { Sgd } from '../train/optimizer.ts';

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

export class HeadShard {
  readonly width: number;
  private readonly weight: tf.Variable | tf.Tensor2D; // [Cw, d]
  private readonly bias: tf.Variable | tf.Tensor1D; // [Cw]
  private readonly scales: tf.Variable | null; // [Cw], scaled kind only
  private readonly offset: tf.Tensor1D | null; // [Cw]
  private readonly opt: Sgd;
  /** [B] the current batch's row weights (null: all 1). */
  private rowWeights: Float32Array | null = null;
  // Kept from forward to backward.
  private x: tf.Tensor2D | null = null; // [B, d]
  private pre: tf.Tensor2D | null = null; // [B, Cw] logits before scaling (scaled kind)
  private p: tf.Tensor2D | null = null; // [B, Cw] local softmax
  private onehot: tf.Tensor2D | null = null; // [B, Cw]

  constructor(readonly spec: ShardSpec) {
    const { dim, lo, hi, kind } = spec;
    this.width = hi - lo;
    if (spec.weight.length !== this.width * dim || spec.bias.length !== this.width)
      throw new Error(`head shard [${lo}, ${hi}): weight or bias has the wrong size`);
    const w = tf.tensor2d(spec.weight, [this.width, dim]);
    const b = tf.tensor1d(spec.bias);
    if (kind === 'linear') {
      this.weight = tf.variable(w, true, `head-shard-w-${lo}-${uid()}`);
      this.bias = tf.variable(b, true, `head-shard-b-${lo}-${uid()}`);
      tf.dispose([w, b]);
      this.scales = null;
    } else {
      this.weight = w;
      this.bias = b;
      this.scales = tf.variable(tf.ones([this.width]), true, `head-shard-s-${lo}-${uid()}`);
    }
    this.offset = spec.offset ? tf.tensor1d(spec.offset) : null;
    if (spec.offset && spec.offset.length !== this.width)
      throw new Error(`head shard [${lo}, ${hi}): offset has the wrong size`);
    this.opt = new Sgd({ momentum: spec.momentum, weightDecay: spec.weightDecay });
  }

  /** The shards' statistics combined with this batch's row weights (the same in every shard). */
  combine(stats: ShardStats[], batch: number): CombinedStats {
    return combineShardStats(stats, batch, this.rowWeights);
  }

  /** Forward on features x [B, d] (row-major) with global labels; keeps what backward needs. */
  forward(x: Float32Array, labels: Int32Array): ShardStats {
    this.release();
    const B = labels.length;
    const { lo, hi, dim } = this.spec;
    const hot = new Float32Array(B * this.width);
    const cw = this.spec.classWeights;
    this.rowWeights = cw ? Float32Array.from(labels.subarray(0, B), (y) => cw[y]!) : null;
    for (let r = 0; r < B; r++) {
      const y = labels[r]!;
      // The onehot carries the row weight: the label-logit sum and the gradient's -u_r y_r use it.
      if (y >= lo && y < hi) hot[r * this.width + y - lo] = this.rowWeights ? this.rowWeights[r]! : 1;
    }
    // A copy: on the cpu backend a tensor would alias a shared buffer that is rewritten.
    this.x = tf.tensor2d(x.slice(0, B * dim), [B, dim]);
    this.onehot = tf.tensor2d(hot, [B, this.width]);
    const [pre, p, stats] = tf.tidy(() => {
      const xt = tf.transpose(this.x!); // [d, B]
      const a = tf.add(tf.transpose(tf.matMul(this.weight, xt)), this.bias) as tf.Tensor2D; // [B, Cw]
      const zs = this.scales ? (tf.mul(a, this.scales) as tf.Tensor2D) : a;
      const z = this.offset ? (tf.add(zs, this.offset) as tf.Tensor2D) : zs; // the loss's logits
      const p = tf.softmax(z);
      const stats = tf.concat([tf.max(z, 1), tf.max(p, 1), tf.reshape(tf.sum(tf.mul(z, this.onehot!)), [1])]);
      return [a, p, stats];
    });
    // Read outside tidy (on wasm a read inside tidy is an order of magnitude slower).
    const s = stats.dataSync() as Float32Array;
    stats.dispose();
    if (this.scales) this.pre = pre;
    else pre.dispose();
    this.p = p;
    return { max: s.slice(0, B), pmax: s.slice(B, 2 * B), labelLogitSum: s[2 * B]! };
  }

  /** Gradient of the mean cross-entropy from the combined row scales, then one SGD step. */
  backward(rowScale: Float32Array, lr: number): void {
    const B = rowScale.length;
    tf.tidy(() => {
      // Row r: u_r * softmax - u_r * onehot (the onehot already holds u_r).
      const u = this.rowWeights;
      const scale = tf.tensor2d(u ? rowScale.map((v, r) => v * u[r]!) : rowScale, [B, 1]);
      // G = u (softmax - onehot) / B   [B, Cw]
      const g = tf.mul(tf.sub(tf.mul(this.p!, scale), this.onehot!), 1 / B) as tf.Tensor2D;
      if (this.scales) {
        const ds = tf.sum(tf.mul(g, this.pre!), 0);
        this.opt.step([this.scales], { [this.scales.name]: ds }, lr);
      } else {
        const dw = tf.matMul(tf.transpose(g), this.x!); // [Cw, d]
        const db = tf.sum(g, 0);
        const w = this.weight as tf.Variable;
        const b = this.bias as tf.Variable;
        this.opt.step([w, b], { [w.name]: dw, [b.name]: db }, lr);
        const r = this.spec.maxNorm;
        if (r !== undefined && r !== null) {
          // Projected gradient descent onto ||w_j|| <= r (rows inside the ball are untouched).
          const norms = tf.sqrt(tf.sum(tf.square(w), 1, true)); // [Cw, 1]
          w.assign(tf.mul(w, tf.minimum(1, tf.div(r, tf.maximum(norms, 1e-12)))) as tf.Tensor2D);
        }
      }
    });
    this.release();
  }

  /** The shard's trained state: weight rows and bias (linear) or scales (scaled). */
  state(): { weight: Float32Array; bias: Float32Array; scales: Float32Array | null } {
    return {
      weight: (this.weight.dataSync() as Float32Array).slice(),
      bias: (this.bias.dataSync() as Float32Array).slice(),
      scales: this.scales ? (this.scales.dataSync() as Float32Array).slice() : null,
    };
  }

  private release(): void {
    tf.dispose([this.x, this.pre, this.p, this.onehot].filter((t): t is tf.Tensor2D => t !== null));
    this.x = this.pre = this.p = this.onehot = null;
  }

  dispose(): void {
    this.release();
    this.opt.dispose();
    tf.dispose([this.weight, this.bias]);
    this.scales?.dispose();
    this.offset?.dispose();
  }
}

let counter = 0;
const uid = () => `${process.pid}-${counter++}`;
