/**
 * A method's logits computed a block of rows at a time on several threads (evaluation: the
 * validation, test and shifted sets, about 1.6 TFLOP a method at 8,142 classes). The weight is
 * packed once per method into shared memory (LinearRows); for each block this thread copies the
 * other threads' rows into a shared buffer, posts them their row ranges, computes its own, and
 * waits on an Atomics counter, so the API stays synchronous. Every logit is computed by the same
 * code on some thread, so the logits are the very bits of one thread's (a test compares them for
 * every registry method).
 *
 * One pool serves the process (logitThreads): its workers start once, wait in their event loop
 * between blocks (no CPU), and do not keep the process alive.
 */
import type { Worker } from 'node:worker_threads';
import { nativeHeadKernels } from '../../backend/native-head.ts';
import { bigFloats } from '../../io/huge-pages.ts';
import { startWorker } from '../../workers/spawn.ts';
import { LinearRows, packedLinearSize } from '../linear-ops.ts';
import { MIN_SPLIT_WEIGHTS } from '../train-head.ts';
import type { LinearLogits } from '../types.ts';
import { CTL, JOBS_DONE, type LogitJob, type SyncBuffers, waitFor, writeError } from './head-protocol.ts';
import { classRanges } from './shard-step.ts';

const ENTRY = new URL('./logit-worker.ts', import.meta.url);

/** Time allowed for one block (a worker's start included: tfjs-core and the addon load there). */
const BLOCK_TIMEOUT_MS = 600_000;

/** Logits of one method, block by block. */
export interface LogitSession {
  /**
   * Logits [m, C] of features f [m, d], valid until the session's next call: one array per
   * session, reused (a new array per block was garbage of a block's size that piled up between
   * collections beside the run's largest memory; docs/benchmarks.md).
   */
  logits(f: Float32Array, m: number): Float32Array;
  /** Lets the packed weight go (here and in the workers). */
  close(): void;
}

const shared = (floats: number) => new Float32Array(new SharedArrayBuffer(4 * Math.max(1, floats)));
const sharedCopy = (a: Float32Array) => {
  const s = shared(a.length);
  s.set(a);
  return s.subarray(0, a.length);
};

export class LogitThreads {
  private readonly workers: Worker[] = [];
  private readonly sync: SyncBuffers;
  /** Row jobs posted so far (the control block's JOBS_DONE catches up). */
  private posted = 0;
  private sessions = 0;
  private closed = false;
  /** The packed weight of the open session, and the blocks of features in and logits out. */
  private packed = shared(0);
  private packedInUse = false;
  /** Sessions open. */
  private live = 0;
  private x = shared(0);
  private out = shared(0);

  /** `threads` in all: this one and threads - 1 workers. */
  constructor(readonly threads: number) {
    this.sync = {
      ctl: new Int32Array(new SharedArrayBuffer(4 * 16)),
      message: new Uint8Array(new SharedArrayBuffer(4096)),
    };
    try {
      for (let k = 1; k < threads; k++) {
        const w = startWorker(ENTRY, { sync: this.sync });
        w.unref();
        this.workers.push(w);
      }
    } catch (e) {
      this.dispose();
      throw e;
    }
  }

  /**
   * A session for `spec` [C, d], or null where the packed product does not run (the method's
   * own `logits` then computes them on this thread).
   */
  open(spec: LinearLogits, C: number, d: number): LogitSession | null {
    if (this.closed) throw new Error('logit threads: used after dispose');
    const size = C > 0 && d > 0 ? packedLinearSize(C, d) : 0;
    if (size === 0) return null;
    // The pool's packed weight, reused from method to method (a second session open at once gets
    // its own): a fresh shared array per method would stay alive in an idle worker's garbage.
    const own = this.packedInUse;
    if (!own && this.packed.length < size) this.packed = shared(size);
    const packed = (own ? shared(size) : this.packed).subarray(0, size);
    LinearRows.pack(spec.weight, C, d, packed);
    const mine = LinearRows.create(spec, C, d, packed);
    if (mine === null) return null;
    if (!own) this.packedInUse = true;
    this.live++;
    const id = ++this.sessions;
    // The workers get the small arrays shared and the packed weight, not W itself.
    const t = spec.transform;
    const theirs: LinearLogits = {
      transform: t.kind === 'cl2n' ? { kind: 'cl2n', mean: sharedCopy(t.mean) } : t,
      weight: new Float32Array(0),
      bias: spec.bias ? sharedCopy(spec.bias) : null,
      sqDistance: spec.sqDistance ? sharedCopy(spec.sqDistance) : null,
    };
    this.post({ kind: 'open', id, spec: theirs, packed, C, d });
    let open = true;
    let mineOut = new Float32Array(0);
    return {
      logits: (f, m) => {
        if (this.closed) throw new Error('logit threads: used after dispose');
        if (!open) throw new Error('logit threads: session used after close');
        if (f.length < m * d) throw new Error(`logit threads: ${f.length} features for ${m} rows of ${d}`);
        if (m === 0) return new Float32Array(0);
        // Blocks in and out, kept by the pool (grown, never shrunk) for the same reason.
        if (this.out.length < m * C) this.out = shared(m * C);
        const out = this.out;
        const parts = classRanges(m, Math.min(this.threads, m));
        const [lo0, hi0] = parts[0]!;
        if (parts.length > 1) {
          const from = parts[1]![0];
          if (this.x.length < m * d) this.x = shared(m * d);
          const x = this.x;
          x.set(f.subarray(from * d, m * d), from * d);
          for (let k = 1; k < parts.length; k++) {
            const [lo, hi] = parts[k]!;
            this.post({ kind: 'rows', id, x, out, lo, hi }, k - 1);
            this.posted++;
            jobsPosted++;
          }
        }
        mine.compute(f.subarray(lo0 * d, hi0 * d), hi0 - lo0, out, lo0 * C);
        const want = this.posted;
        try {
          waitFor(this.sync, JOBS_DONE, (v) => v >= want, 'the logit workers', BLOCK_TIMEOUT_MS);
        } catch (e) {
          // A failed or stuck worker: this pool is done (the next evaluation starts another).
          this.dispose();
          throw e;
        }
        // Out of the shared block (the next block overwrites it) into the session's own array.
        if (mineOut.length < m * C) mineOut = new Float32Array(m * C);
        const z = mineOut.subarray(0, m * C);
        z.set(out.subarray(0, m * C));
        return z;
      },
      close: () => {
        if (!open) return;
        open = false;
        this.live--;
        if (!own) this.packedInUse = false;
        if (!this.closed) this.post({ kind: 'close', id });
      },
    };
  }

  /** Row jobs handed to the workers so far. */
  get jobs(): number {
    return this.posted;
  }

  /** No session is open. */
  get idle(): boolean {
    return this.live === 0;
  }

  /** To worker `k`, or to all when k is undefined. */
  private post(job: LogitJob, k?: number): void {
    for (const [i, w] of this.workers.entries()) if (k === undefined || k === i) w.postMessage(job);
  }

  dispose(): void {
    if (this.closed) return;
    this.closed = true;
    if (Atomics.load(this.sync.ctl, CTL.error) === 0)
      writeError(this.sync, 'stopped by the main thread', CTL.abortCode);
    for (const w of this.workers) void w.terminate();
    if (pool === this) pool = null;
  }
}

let pool: LogitThreads | null = null;
/** Row jobs handed to workers by every pool of the process (tests: the work was split). */
let jobsPosted = 0;
export const rowJobsPosted = () => jobsPosted;

/**
 * The process's pool of `threads` threads (this one included), started on first use; null for one
 * thread or where the packed product does not run (nothing to split then).
 */
export function logitThreads(threads: number): LogitThreads | null {
  const t = Math.floor(threads);
  if (!(t > 1) || nativeHeadKernels() === null || packedLinearSize(1, 1) === 0) return null;
  if (pool?.threads !== t) {
    pool?.dispose();
    pool = new LogitThreads(t);
  }
  return pool;
}

/**
 * Weights (C x d) from which logits are split over threads: below, a worker's start (about half
 * a second, once a process) costs more than it saves, and the tests' and the demo's runs stay on
 * one thread (the heads' rule, MIN_SPLIT_WEIGHTS). Tests lower it to reach the pool on tiny data.
 */
export const EVAL_SPLIT = {
  minWeights: MIN_SPLIT_WEIGHTS,
  /**
   * Keep the workers between sessions. Off: the pool stops when its last session closes, so an
   * idle worker (its runtime, tens of MiB, and the pool's packed weight and blocks) does not sit
   * beside the next method's training, the run's memory peak; a start costs about half a second
   * a method. Tests turn it on to start one worker for many tiny sessions.
   */
  keepWorkers: false,
};

/**
 * Logits of `spec` [C, d] for evaluation: over the process's pool with `threads` > 1 (for a
 * weight of EVAL_SPLIT.minWeights or more), else on this thread with the weight packed once;
 * null where the packed product does not run (the method's own `logits` then serves, with the
 * same bits).
 */
export function logitSession(spec: LinearLogits, C: number, d: number, threads = 1): LogitSession | null {
  const pool = C * d >= EVAL_SPLIT.minWeights ? logitThreads(threads) : null;
  if (pool) {
    const s = pool.open(spec, C, d);
    if (s === null || EVAL_SPLIT.keepWorkers) return s;
    return {
      logits: s.logits,
      close: () => {
        s.close();
        if (pool.idle) pool.dispose();
      },
    };
  }
  const rows = C > 0 && d > 0 ? LinearRows.create(spec, C, d) : null;
  if (rows === null) return null;
  let out = new Float32Array(0);
  return {
    logits: (f, m) => {
      if (out.length < m * C) out = bigFloats(m * C);
      const z = out.subarray(0, m * C);
      rows.compute(f, m, z);
      return z;
    },
    close: () => {},
  };
}
