/**
 * Stage-2 head training split by classes over worker_threads (model parallel, not data
 * parallel): this thread holds the first class shard and the workers the others (see
 * classifiers/sharded/shard-step.ts for the arithmetic). Per step this thread publishes the batch in
 * shared memory, every shard computes its logits, the shards exchange two numbers per row and
 * meet at one barrier, then each updates its own rows. No gradient crosses threads, so the
 * update is exactly the one-thread update, and the API stays synchronous (the coordination is
 * Atomics on SharedArrayBuffers, which Node allows on the main thread).
 */
import type { Worker } from 'node:worker_threads';
import { backendInfo } from '../../backend/backend.ts';
import { startWorker } from '../../workers/spawn.ts';
import { CTL, type HeadBuffers, readStats, waitFor, writeError, writeStats } from './head-protocol.ts';
import { classRanges, type HeadKind, HeadShard, type ShardSpec, type ShardStats } from './shard-step.ts';

const ENTRY = new URL('./head-worker.ts', import.meta.url);

export interface ShardedHeadSpec {
  kind: HeadKind;
  dim: number;
  numClasses: number;
  /** [C, d] initial (linear) or frozen (scaled) weight; [C] bias. */
  weight: Float32Array;
  bias: Float32Array;
  momentum: number;
  weightDecay: number;
  batchSize: number;
  /** Threads to split the classes over (at most one per class); 1 runs on this thread only. */
  threads: number;
  /** [C] logit offset inside the loss's softmax (balanced softmax), split with the classes. */
  offset?: Float32Array | null;
  /** [C] per-class loss weights (class-balanced loss), given whole to every shard. */
  classWeights?: Float32Array | null;
  /** Max norm of each weight row after every step (weight balancing). */
  maxNorm?: number | null;
  /** Scaled kind: training rows whose products each shard keeps (ShardSpec.cacheRows); null: none. */
  cacheRows?: Int32Array | null;
  /**
   * Scaled kind without kept products: the training features [n, d]; then every step passes the
   * batch's rows instead of the batch (step(null, ...)), and each shard's product reads them by
   * index. Used only where every thread can read them: one thread, or a SharedArrayBuffer.
   */
  features?: Float32Array | null;
}

export interface HeadState {
  /** [C, d] */
  weight: Float32Array;
  /** [C] */
  bias: Float32Array;
  /** [C], the scaled kind only. */
  scales: Float32Array | null;
}

/** Time allowed for a worker to start (load tfjs, compile wasm) and for any one step. */
const START_TIMEOUT_MS = 180_000;
const STEP_TIMEOUT_MS = 600_000;

export class ShardedHead {
  private readonly shard: HeadShard;
  private readonly workers: Worker[] = [];
  private readonly buf: HeadBuffers | null;
  private readonly ranges: [number, number][];
  private steps = 0;
  private closed = false;
  /** The training features every shard reads the batch's rows from, or null: steps pass the batch. */
  private readonly features: Float32Array | null;

  constructor(private readonly spec: ShardedHeadSpec) {
    const { numClasses: C, dim: d, batchSize: B } = spec;
    const n = Math.max(1, Math.min(Math.floor(spec.threads), C));
    this.ranges = classRanges(C, n);
    const f = spec.features ?? null;
    // A worker given a plain (unshared) array would get a copy of all the features: gather instead.
    this.features =
      f &&
      spec.kind === 'scaled' &&
      (spec.cacheRows?.length ?? 0) === 0 &&
      (n === 1 || f.buffer instanceof SharedArrayBuffer)
        ? f
        : null;
    const shardSpec = (k: number): ShardSpec => {
      const [lo, hi] = this.ranges[k]!;
      return {
        kind: spec.kind,
        dim: d,
        lo,
        hi,
        weight: spec.weight.slice(lo * d, hi * d),
        bias: spec.bias.slice(lo, hi),
        momentum: spec.momentum,
        weightDecay: spec.weightDecay,
        offset: spec.offset ? spec.offset.slice(lo, hi) : null,
        classWeights: spec.classWeights ?? null,
        maxNorm: spec.maxNorm ?? null,
        cacheRows: spec.cacheRows ?? null,
        features: this.features,
      };
    };
    this.buf = n > 1 ? allocBuffers(n, B, d, this.ranges, this.features === null) : null;
    this.shard = new HeadShard(shardSpec(0));
    try {
      for (let k = 1; k < n; k++) {
        const w = startWorker(ENTRY, {
          index: k,
          spec: shardSpec(k),
          backend: backendInfo().name,
          buf: this.buf,
        });
        w.unref();
        this.workers.push(w);
      }
      if (this.buf)
        waitFor(
          this.buf,
          CTL.ready,
          (v) => v >= n - 1,
          'the stage-2 head workers to start',
          START_TIMEOUT_MS,
        );
    } catch (e) {
      this.dispose();
      throw e;
    }
  }

  /** True when steps take the batch's rows (step(null, labels, lr, rows)) rather than the batch. */
  get readsRows(): boolean {
    return this.features !== null;
  }

  get threads(): number {
    return this.ranges.length;
  }

  /**
   * One SGD step on features x [B, d] with labels [B]; returns the batch's mean cross-entropy.
   * `rows`: the batch's training-row indices, which let the scaled kind reuse a row's products;
   * where readsRows, x is null and the shards read those rows of the features.
   */
  step(x: Float32Array | null, labels: Int32Array, lr: number, rows: Int32Array | null = null): number {
    const { batchSize: B, dim: d } = this.spec;
    if (labels.length !== B || (x === null ? !this.features || !rows || rows.length < B : x.length < B * d))
      throw new Error(`head step: expected ${B} rows of ${d} features, got ${labels.length} labels`);
    const s = this.steps;
    const buf = this.buf;
    let stats: ShardStats[];
    if (buf === null) {
      stats = [this.shard.forward(x, labels, rows)];
    } else {
      const slot = s % 2;
      if (x) buf.x.set(x.subarray(0, B * d), slot * B * d);
      buf.labels.set(labels, slot * B);
      if (rows) buf.rows.set(rows.subarray(0, B), slot * B);
      else buf.rows.fill(-1, slot * B, (slot + 1) * B);
      buf.lr[slot] = lr;
      Atomics.store(buf.ctl, CTL.published, s + 1);
      Atomics.notify(buf.ctl, CTL.published);
      writeStats(buf, slot, 0, this.shard.forward(x, labels, rows));
      Atomics.add(buf.ctl, CTL.arrived, 1);
      Atomics.notify(buf.ctl, CTL.arrived);
      const n = this.ranges.length;
      waitFor(buf, CTL.arrived, (v) => v >= n * (s + 1), `stage-2 head step ${s + 1}`, STEP_TIMEOUT_MS);
      stats = readStats(buf, slot);
    }
    const combined = this.shard.combine(stats, B);
    this.shard.backward(combined.rowScale[0]!, lr);
    this.steps++;
    return combined.loss;
  }

  /** The trained head, gathered from every shard. The workers stop. */
  finish(): HeadState {
    const { numClasses: C, dim: d } = this.spec;
    const out: HeadState = {
      weight: new Float32Array(C * d),
      bias: new Float32Array(C),
      scales: this.spec.kind === 'scaled' ? new Float32Array(C) : null,
    };
    const put = (
      k: number,
      st: { weight: Float32Array; bias: Float32Array; scales: Float32Array | null },
    ) => {
      const [lo] = this.ranges[k]!;
      out.weight.set(st.weight, lo * d);
      out.bias.set(st.bias, lo);
      if (out.scales && st.scales) out.scales.set(st.scales, lo);
    };
    put(0, this.shard.state());
    const buf = this.buf;
    if (buf) {
      Atomics.store(buf.ctl, CTL.finish, 1);
      Atomics.notify(buf.ctl, CTL.published);
      const n = this.ranges.length;
      waitFor(buf, CTL.done, (v) => v >= n - 1, 'the stage-2 head workers to finish', STEP_TIMEOUT_MS);
      for (let k = 1; k < n; k++) {
        const [lo, hi] = this.ranges[k]!;
        const w = hi - lo;
        const r = buf.results[k]!;
        put(k, {
          weight: r.subarray(0, w * d),
          bias: r.subarray(w * d, w * d + w),
          scales: r.subarray(w * d + w),
        });
      }
    }
    this.dispose();
    return out;
  }

  dispose(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.buf && Atomics.load(this.buf.ctl, CTL.done) < this.workers.length)
      writeError(this.buf, 'stopped by the main thread', CTL.abortCode);
    for (const w of this.workers) void w.terminate();
    this.shard.dispose();
  }
}

/** `withBatch` false: the shards read the rows from the features, so no batch slots. */
function allocBuffers(
  n: number,
  B: number,
  d: number,
  ranges: [number, number][],
  withBatch: boolean,
): HeadBuffers {
  const f32 = (len: number) => new Float32Array(new SharedArrayBuffer(4 * len));
  return {
    ctl: new Int32Array(new SharedArrayBuffer(4 * 16)),
    x: f32(withBatch ? 2 * B * d : 0),
    labels: new Int32Array(new SharedArrayBuffer(4 * 2 * B)),
    rows: new Int32Array(new SharedArrayBuffer(4 * 2 * B)),
    lr: new Float64Array(new SharedArrayBuffer(8 * 2)),
    stats: f32(2 * n * (2 * B + 1)),
    results: ranges.map(([lo, hi]) => f32((hi - lo) * (d + 2))),
    message: new Uint8Array(new SharedArrayBuffer(4096)),
    shards: n,
    batch: B,
  };
}
