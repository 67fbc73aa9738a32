/**
 * Shared memory of the class-sharded head training (head-threads.ts, head-worker.ts): a control
 * block of counters waited on with Atomics, double-buffered batch and statistics slots (step s
 * uses slot s % 2, so a fast shard can publish step s + 1 while a slow one still reads step s),
 * and each worker's result rows. And the evaluation pool's (logit-threads.ts, logit-worker.ts):
 * a counter of row jobs done and the failure slot, with its jobs as messages.
 */
import type { LinearLogits } from '../types.ts';
import type { ShardStats } from './shard-step.ts';

/** Indices into the control block. */
export const CTL = {
  /** Workers that have started. */
  ready: 0,
  /** Steps whose batch the main thread has published. */
  published: 1,
  /** Shard arrivals at the per-step barrier, summed over steps. */
  arrived: 2,
  /** 0 while all is well; errorCode when a worker failed, abortCode when the main thread stopped (-1 while the message is written). */
  error: 3,
  /** Set by the main thread after the last step. */
  finish: 4,
  /** Workers that have written their results. */
  done: 5,
  errorCode: 1,
  abortCode: 2,
} as const;

/** Index of the evaluation pool's counter of row jobs done (CTL.error is its failure slot too). */
export const JOBS_DONE = 0;

/** Messages to an evaluation worker. Arrays on SharedArrayBuffers are shared, not copied. */
export type LogitJob =
  | { kind: 'open'; id: number; spec: LinearLogits; packed: Float32Array; C: number; d: number }
  | { kind: 'rows'; id: number; x: Float32Array; out: Float32Array; lo: number; hi: number }
  | { kind: 'close'; id: number };

/** What a failure and a wait need: the control block and the error text (the evaluation pool has only these). */
export interface SyncBuffers {
  ctl: Int32Array;
  /** UTF-8 error text. */
  message: Uint8Array;
}

export interface HeadBuffers extends SyncBuffers {
  /** [2, B, d] */
  x: Float32Array;
  /** [2, B] */
  labels: Int32Array;
  /** [2, B] the batch's training-row indices (-1: none given), for LWS's product cache. */
  rows: Int32Array;
  /** [2] */
  lr: Float64Array;
  /** [2, shards, 2B + 1]: per slot and shard, row maxima, row softmax maxima, label-logit sum. */
  stats: Float32Array;
  /** Per shard, its [Cw, d] weight, [Cw] bias and [Cw] scales after the last step. */
  results: Float32Array[];
  shards: number;
  batch: number;
}

const statsOffset = (b: HeadBuffers, slot: number, shard: number) =>
  (slot * b.shards + shard) * (2 * b.batch + 1);

export function writeStats(b: HeadBuffers, slot: number, shard: number, s: ShardStats): void {
  const o = statsOffset(b, slot, shard);
  b.stats.set(s.max, o);
  b.stats.set(s.pmax, o + b.batch);
  b.stats[o + 2 * b.batch] = s.labelLogitSum;
}

export function readStats(b: HeadBuffers, slot: number): ShardStats[] {
  return Array.from({ length: b.shards }, (_, k) => {
    const o = statsOffset(b, slot, k);
    return {
      max: b.stats.slice(o, o + b.batch),
      pmax: b.stats.slice(o + b.batch, o + 2 * b.batch),
      labelLogitSum: b.stats[o + 2 * b.batch]!,
    };
  });
}

/** ctl[error] while the first failing thread writes its message (waiters read it only after). */
const WRITING = -1;

/**
 * Records a failure (first one wins) and wakes every waiter. The slot is claimed, the message
 * written, and only then the code published: a waiter that saw the code before the message was
 * in place read an empty one (seen once in CI).
 */
export function writeError(b: SyncBuffers, text: string, code: number = CTL.errorCode): void {
  if (Atomics.compareExchange(b.ctl, CTL.error, 0, WRITING) !== 0) return;
  const bytes = new TextEncoder().encode(text).subarray(0, b.message.length - 1);
  b.message.fill(0);
  b.message.set(bytes);
  Atomics.store(b.ctl, CTL.error, code);
  for (let i = 0; i <= CTL.done; i++) Atomics.notify(b.ctl, i);
}

export class HeadWorkerError extends Error {}

/**
 * Blocks until `ok(ctl[index])`, waking on changes; throws when another thread failed or the
 * wait exceeds `timeoutMs` (a worker that died without reporting).
 */
export function waitFor(
  b: SyncBuffers,
  index: number,
  ok: (v: number) => boolean,
  what: string,
  timeoutMs: number,
): number {
  const start = Date.now();
  for (;;) {
    const v = Atomics.load(b.ctl, index);
    if (ok(v)) return v;
    const err = Atomics.load(b.ctl, CTL.error);
    if (err > 0) {
      const end = b.message.indexOf(0);
      const text = new TextDecoder().decode(b.message.slice(0, end < 0 ? undefined : end));
      throw new HeadWorkerError(
        err === CTL.abortCode ? 'stopped by the main thread' : `a stage-2 head worker failed: ${text}`,
      );
    }
    if (Date.now() - start > timeoutMs)
      throw new HeadWorkerError(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    // A failure being written is published within microseconds: wait briefly, not 250 ms.
    Atomics.wait(b.ctl, index, v, err === WRITING ? 1 : 250);
  }
}
