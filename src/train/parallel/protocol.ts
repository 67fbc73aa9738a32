/** Messages between the training thread and its data-parallel workers. */
import type { BackboneSpec } from '../../models/backbone.ts';
import type { NamedArrays } from '../../models/params.ts';
import type { ThreadCounters } from './thread-clock.ts';

export interface ReplicaSpec {
  /** The backbone with its options, so a replica builds the very model the trainer holds. */
  backbone: BackboneSpec;
  /**
   * The module that registered the backbone at run time (registerBackbone), which the worker
   * imports first: a worker thread starts with the built-in registry only.
   */
  backboneModule?: string;
  inputShape: [number, number, number];
  numClasses: number;
  seed: number;
  momentum: number;
  weightDecay: number;
  backend: string;
  /** The stage-1 loss's per-class logit offset [C] (balanced softmax, logit adjustment); none for CE. */
  logitOffset?: Float32Array | null;
  /** `bf16`: the replica trains on the bf16 kernel set (JointConfig.precision). */
  precision?: 'fp32' | 'bf16';
}

/**
 * One worker's views on SharedArrayBuffers: its shard of the batch and labels, its gradients,
 * and the averaged gradients (one buffer for all workers). No array is copied or allocated per
 * step; the message order keeps writer and reader apart (the main thread writes a shard only
 * after the worker answered for the previous one, and the average only after all answered).
 */
export interface SharedBuffers {
  batch: Float32Array;
  labels: Int32Array;
  grads: Float32Array;
  avg: Float32Array;
}

/** A shard's gradients, asked for: the answer carries `id`. */
export interface GradsRequest {
  id: number;
  count: number;
  batchStats: boolean;
  profile?: boolean;
}

export type ToWorker =
  | { type: 'init'; spec: ReplicaSpec; weights: NamedArrays; momentum: NamedArrays }
  /** Shared memory for the step exchange (sent again when the batch outgrows it). */
  | { type: 'buffers'; shared: SharedBuffers }
  /** Gradients on the first `count` examples of the shared batch, into the shared gradients. */
  | ({ type: 'grads' } & GradsRequest)
  /**
   * Apply the averaged gradients in the shared `avg`; with `next`, then compute the next step's
   * gradients on the shard already in shared memory (answered as a 'grads' request with next.id).
   */
  | { type: 'apply'; lr: number; next?: GradsRequest }
  | { type: 'getBn'; id: number }
  | { type: 'setBn'; stats: NamedArrays }
  | { type: 'getWeights'; id: number };

export type FromWorker =
  | { type: 'ready' }
  | { type: 'grads'; id: number; loss: number; correct: number; timing: WorkerTiming }
  | { type: 'bn'; id: number; stats: NamedArrays }
  | { type: 'weights'; id: number; weights: NamedArrays }
  | { type: 'error'; message: string };

/**
 * Where a worker's time went around one shard (for profiling: bench/profile-parallel.ts). Times
 * are epoch milliseconds (performance.timeOrigin + now), comparable across threads.
 */
export interface WorkerTiming {
  /** When the worker began the shard and when its gradients were written. */
  start: number;
  end: number;
  /** Its update after the previous shard, ms (0 before the first). */
  apply: number;
  /** With `profile`: this thread's time on a core and waiting for one during the shard, ms. */
  cpu?: number;
  queued?: number;
  /** With `profile`: the thread's events during the shard (thread-clock.ts). */
  events?: ThreadCounters;
  /**
   * With `profile`: ms on a core from the start of the worker's previous shard to this one's:
   * a whole step's work on that thread (the update, messages, its event loop's garbage-collection
   * tasks), apart from this shard.
   */
  cycle?: number;
}
