/**
 * Synchronous data-parallel training over worker_threads, each with its own tfjs backend (the
 * wasm backend is single-threaded in Node). The batch is split into equal shards; this thread
 * computes shard 0 while the workers compute theirs; gradients are averaged (weighted by shard
 * size) and every replica applies the same update, so the update equals one worker's on the
 * whole batch. Batch norm uses each shard's own batch statistics (as PyTorch's DataParallel
 * without SyncBN); the replicas' running statistics are averaged by `syncBatchNorm`, which the
 * trainer calls at the end of every epoch. When the caller announces the next batch (its
 * `whileWaiting` returns true), the workers' next shards travel with this step's update, so a
 * worker starts on its next shard as soon as it has applied the update (one message each way a
 * step).
 */
import type { Worker } from 'node:worker_threads';
import { backendInfo } from '../../backend/backend.ts';
import { type Model, modelArrays } from '../../models/model.ts';
import { backboneModule } from '../../models/registry.ts';
import type { Sgd } from '../../optim/sgd.ts';
import { startWorker } from '../../workers/spawn.ts';
import { applyGrads, computeGrads, trainableVars } from '../step.ts';
import { averageStats, getBnStats, setBnStats } from './bn-sync.ts';
import type { FromWorker, ReplicaSpec, SharedBuffers, ToWorker, WorkerTiming } from './protocol.ts';
import { countersSince, type ThreadCounters, threadClock, threadCounters } from './thread-clock.ts';

const ENTRY = new URL('./worker.ts', import.meta.url);

/**
 * A replica's young generation, MB. With Node's default a worker scavenged about 2 times a
 * ResNet-8 step against the main thread's 1.1 (a step allocates a few MB of tfjs objects), and
 * each scavenge makes that replica's shard late while the other waits; at 48, 1.3 times.
 */
const WORKER_YOUNG_MB = 48;

class Replica {
  private readonly worker: Worker;
  private readonly waiting = new Map<number, (m: FromWorker) => void>();
  private readyResolve: (() => void) | null = null;
  private failure: Error | null = null;
  private nextId = 0;
  readonly ready: Promise<void>;

  constructor() {
    this.worker = startWorker(ENTRY, {}, { maxYoungGenerationSizeMb: WORKER_YOUNG_MB });
    this.ready = new Promise((resolve) => {
      this.readyResolve = resolve;
    });
    this.worker.on('message', (m: FromWorker) => {
      if (m.type === 'ready') this.readyResolve?.();
      else if (m.type === 'error') this.fail(new Error(`data-parallel worker failed: ${m.message}`));
      else {
        const cb = this.waiting.get(m.id);
        this.waiting.delete(m.id);
        cb?.(m);
      }
    });
    this.worker.on('error', (e) => this.fail(e));
  }

  private fail(e: Error) {
    this.failure = e;
    for (const cb of this.waiting.values()) cb({ type: 'error', message: e.message });
    this.waiting.clear();
  }

  post(m: ToWorker) {
    if (this.failure) throw this.failure;
    this.worker.postMessage(m);
  }

  /** Posts `m`, whose answer carries `id`. */
  request<T extends FromWorker>(m: ToWorker, id: number): Promise<T> {
    return new Promise((resolve, reject) => {
      if (this.failure) return reject(this.failure);
      this.waiting.set(id, (r) => (r.type === 'error' ? reject(new Error(r.message)) : resolve(r as T)));
      this.worker.postMessage(m);
    });
  }

  id(): number {
    return this.nextId++;
  }

  terminate() {
    return this.worker.terminate();
  }
}

type GradsReply = Extract<FromWorker, { type: 'grads' }>;

/** The workers' shards of the next step, sent with this step's update. */
interface Ahead {
  pending: Promise<GradsReply | null>[];
  batchStats: boolean;
  /** The shards' bounds in the batch and the values per example they were cut with. */
  bounds: number[];
  per: number;
}

/** a[0, count) equals b[from, from + count). */
function sameInts(a: Int32Array, b: Int32Array, from: number, count: number): boolean {
  for (let i = 0; i < count; i++) if (a[i] !== b[from + i]) return false;
  return true;
}

export interface StepResult {
  loss: number;
  correct: number;
}

/** Where the last step's wall time went on this thread, in ms (for profiling: bench/profile-parallel.ts). */
export interface StepTimings {
  /** Copying the workers' shards into shared memory and posting their requests. */
  post: number;
  /** This thread's own shard: forward, backward, gradients read out. */
  compute: number;
  /** `whileWaiting`: the caller's work after this thread's gradients (the next batch). */
  meanwhile: number;
  /** Waiting for the workers' gradients after that. */
  wait: number;
  /** The size-weighted mean of the gradients. */
  reduce: number;
  /** This thread's optimiser update. */
  apply: number;
  /** When the step began, epoch ms (performance.timeOrigin + now: comparable with the workers'). */
  start: number;
  /** With `profile`: this thread's time on a core and waiting for one during its own shard, ms. */
  cpu?: number;
  queued?: number;
  /** With `profile`: this thread's events during its own shard (thread-clock.ts). */
  events?: ThreadCounters;
  /** Each worker's shard (null where it had none). */
  workers: (WorkerTiming | null)[];
}

export class DataParallel {
  /** Averaged gradients, shared with every worker. */
  private readonly avg: Float32Array;
  /** This thread's gradients. */
  private readonly mine: Float32Array;
  private readonly shared: SharedBuffers[] = [];
  /** The last step's breakdown on this thread. */
  lastTimings: StepTimings = {
    post: 0,
    compute: 0,
    meanwhile: 0,
    wait: 0,
    reduce: 0,
    apply: 0,
    start: 0,
    workers: [],
  };
  /** The workers' shards of the next step, already sent (whileWaiting returned true). */
  private ahead: Ahead | null = null;
  /** Set when a step broke that promise: the replicas may differ, every later step refuses. */
  private broken: Error | null = null;
  /** Read every thread's scheduler clock around its shard (a file read per thread and step). */
  profile = false;

  private constructor(
    private readonly model: Model,
    private readonly opt: Sgd,
    private readonly replicas: Replica[],
    readonly threads: number,
    private readonly logitOffset: Float32Array | null = null,
  ) {
    const size = trainableVars(model).reduce((p, v) => p + v.size, 0);
    this.avg = new Float32Array(new SharedArrayBuffer(size * 4));
    this.mine = new Float32Array(size);
  }

  /** Starts `threads - 1` workers holding copies of `model` and `opt`'s state. */
  static async create(
    model: Model,
    opt: Sgd,
    threads: number,
    spec: Omit<ReplicaSpec, 'backend' | 'inputShape' | 'numClasses' | 'backbone' | 'backboneModule'>,
  ): Promise<DataParallel> {
    const replicas = Array.from({ length: Math.max(0, threads - 1) }, () => new Replica());
    const module = backboneModule(model.backboneSpec.name);
    const full: ReplicaSpec = {
      ...spec,
      backbone: model.backboneSpec,
      ...(module !== undefined ? { backboneModule: module } : {}),
      inputShape: [...model.inputShape] as [number, number, number],
      numClasses: model.numClasses,
      backend: backendInfo().name,
    };
    const weights = modelArrays(model);
    const momentum = opt.state();
    for (const r of replicas) r.post({ type: 'init', spec: full, weights, momentum });
    await Promise.all(replicas.map((r) => r.ready));
    return new DataParallel(model, opt, replicas, threads, spec.logitOffset ?? null);
  }

  /**
   * One synchronous step on the whole batch. `whileWaiting` runs once, as soon as `batch` and
   * `labels` are no longer read (the workers' shards are in shared memory and this thread's are
   * in its backend), while the workers may still compute: the trainer assembles the next batch
   * there instead of between steps, when the workers would wait for it. If it returns true, it
   * promises that the next call to `step` comes with these same arrays holding what it put there
   * and the same `batchStats`: the workers then receive their next shards with this step's
   * update and start on them at once, without waiting for that call (checked when it comes: a
   * different batch throws).
   */
  async step(
    batch: Float32Array,
    labels: Int32Array,
    lr: number,
    { batchStats = true, whileWaiting }: { batchStats?: boolean; whileWaiting?: () => unknown } = {},
  ): Promise<StepResult> {
    const t0 = performance.now();
    const B = labels.length;
    const n = this.replicas.length + 1;
    const per = batch.length / B;
    const bounds = Array.from({ length: n + 1 }, (_, k) => Math.round((k * B) / n));
    const sizes = bounds.slice(1).map((b, k) => b - bounds[k]!);
    if (this.broken) throw this.broken;
    const ahead = this.ahead;
    this.ahead = null;
    if (ahead !== null) this.checkAhead(ahead, batch, labels, bounds, per, batchStats);
    const pending = ahead?.pending ?? this.postShards(batch, labels, bounds, per, batchStats, null);
    const t1 = performance.now();
    const c0 = this.profile ? threadClock() : null;
    const e0 = this.profile ? threadCounters() : null;
    const mine = computeGrads(
      this.model,
      batch.subarray(0, bounds[1]! * per),
      labels.subarray(0, bounds[1]!),
      { batchStats, out: this.mine, logitOffset: this.logitOffset },
    );
    const c1 = c0 ? threadClock() : null;
    const e1 = e0 ? threadCounters() : null;
    const t2 = performance.now();
    const more = whileWaiting?.() === true;
    const t2b = performance.now();
    const theirs = await Promise.all(pending);
    const t3 = performance.now();
    // The size-weighted mean of the shards' gradients, into the buffer every replica reads.
    const avg = this.avg;
    const w0 = sizes[0]! / B;
    for (let i = 0; i < avg.length; i++) avg[i] = w0 * mine.grads[i]!;
    let loss = w0 * mine.loss;
    let correct = mine.correct;
    theirs.forEach((r, k) => {
      if (r === null) return;
      const w = sizes[k + 1]! / B;
      const g = this.shared[k]!.grads;
      for (let i = 0; i < avg.length; i++) avg[i]! += w * g[i]!;
      loss += w * r.loss;
      correct += r.correct;
    });
    const t4 = performance.now();
    if (Number.isFinite(loss)) {
      // The workers have read their shards (their gradients are in): the next ones may go in.
      if (more)
        this.ahead = {
          pending: this.postShards(batch, labels, bounds, per, batchStats, lr),
          batchStats,
          bounds,
          per,
        };
      else for (const r of this.replicas) r.post({ type: 'apply', lr });
      applyGrads(this.model, this.opt, avg, lr);
    }
    const t5 = performance.now();
    this.lastTimings = {
      post: t1 - t0,
      compute: t2 - t1,
      meanwhile: t2b - t2,
      wait: t3 - t2b,
      reduce: t4 - t3,
      apply: t5 - t4,
      start: performance.timeOrigin + t0,
      ...(c0 && c1 ? { cpu: (c1.cpuNs - c0.cpuNs) / 1e6, queued: (c1.queuedNs - c0.queuedNs) / 1e6 } : {}),
      ...(e0 && e1 ? { events: countersSince(e0, e1) } : {}),
      workers: theirs.map((r) => r?.timing ?? null),
    };
    return { loss, correct };
  }

  /**
   * Copies each worker's shard into its shared memory and asks for its gradients: as a request
   * of its own, or (`lr` given) after the update at `lr` in one message.
   */
  private postShards(
    batch: Float32Array,
    labels: Int32Array,
    bounds: number[],
    per: number,
    batchStats: boolean,
    lr: number | null,
  ): Promise<GradsReply | null>[] {
    return this.replicas.map((r, k) => {
      const lo = bounds[k + 1]!;
      const count = bounds[k + 2]! - lo;
      if (count === 0) {
        // Fewer examples than threads: this replica only applies.
        if (lr !== null) r.post({ type: 'apply', lr });
        return Promise.resolve(null);
      }
      const s = this.sharedFor(k, count, per);
      s.batch.set(batch.subarray(lo * per, (lo + count) * per));
      s.labels.set(labels.subarray(lo, lo + count));
      const req = { id: r.id(), count, batchStats, profile: this.profile };
      const p = r.request<GradsReply>(
        lr === null ? { type: 'grads', ...req } : { type: 'apply', lr, next: req },
        req.id,
      );
      // Read by the next step; a failure meanwhile must not count as unhandled.
      p.catch(() => {});
      return p;
    });
  }

  /** The batch of a step whose shards went out ahead must be the one announced. */
  private checkAhead(
    ahead: Ahead,
    batch: Float32Array,
    labels: Int32Array,
    bounds: number[],
    per: number,
    batchStats: boolean,
  ): void {
    const bits = new Int32Array(batch.buffer, batch.byteOffset, batch.length);
    let same =
      batchStats === ahead.batchStats &&
      per === ahead.per &&
      bounds.length === ahead.bounds.length &&
      bounds.every((b, k) => b === ahead.bounds[k]);
    for (let k = 0; same && k < this.replicas.length; k++) {
      const lo = bounds[k + 1]!;
      const count = bounds[k + 2]! - lo;
      if (count === 0) continue;
      const s = this.shared[k]!;
      const theirs = new Int32Array(s.batch.buffer, s.batch.byteOffset, count * per);
      same = sameInts(s.labels, labels, lo, count) && sameInts(theirs, bits, lo * per, count * per);
    }
    if (!same) {
      // A worker trained on the announced shard (its running statistics moved): no way back.
      this.broken = new Error(
        'DataParallel.step: whileWaiting returned true, yet the next step came with another batch or batchStats',
      );
      throw this.broken;
    }
  }

  /** Replica k's shared buffers, (re)made when a shard of `count` examples does not fit. */
  private sharedFor(k: number, count: number, per: number): SharedBuffers {
    const cur = this.shared[k];
    if (cur !== undefined && cur.labels.length >= count && cur.batch.length === cur.labels.length * per)
      return cur;
    const s: SharedBuffers = {
      batch: new Float32Array(new SharedArrayBuffer(count * per * 4)),
      labels: new Int32Array(new SharedArrayBuffer(count * 4)),
      grads: new Float32Array(new SharedArrayBuffer(this.avg.length * 4)),
      avg: this.avg,
    };
    this.shared[k] = s;
    this.replicas[k]!.post({ type: 'buffers', shared: s });
    return s;
  }

  /** Averages the batch-norm running statistics of all replicas and gives every replica the mean. */
  async syncBatchNorm(): Promise<void> {
    if (this.replicas.length === 0) return;
    // The shards sent ahead would move the workers' statistics after they were read.
    if (this.ahead !== null)
      throw new Error('DataParallel.syncBatchNorm: whileWaiting announced a next step that was not taken');
    const stats = await Promise.all(
      this.replicas.map((r) => {
        const id = r.id();
        return r.request<Extract<FromWorker, { type: 'bn' }>>({ type: 'getBn', id }, id);
      }),
    );
    const mean = averageStats([getBnStats(this.model), ...stats.map((s) => s.stats)]);
    setBnStats(this.model, mean);
    for (const r of this.replicas) r.post({ type: 'setBn', stats: mean });
  }

  /** A worker's parameters (for tests: replicas must stay identical). */
  async workerWeights(k: number) {
    const r = this.replicas[k]!;
    const id = r.id();
    return (await r.request<Extract<FromWorker, { type: 'weights' }>>({ type: 'getWeights', id }, id))
      .weights;
  }

  async dispose(): Promise<void> {
    await Promise.all(this.replicas.map((r) => r.terminate()));
  }
}
