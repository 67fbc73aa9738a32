/** Messages between the training thread and its data-parallel workers. */
import type { NamedArrays } from '../models/params.ts';

export interface ReplicaSpec {
  backbone: string;
  inputShape: [number, number, number];
  numClasses: number;
  seed: number;
  momentum: number;
  weightDecay: number;
  backend: string;
}

export type ToWorker =
  | { type: 'init'; spec: ReplicaSpec; weights: NamedArrays; momentum: NamedArrays }
  | { type: 'grads'; id: number; batch: Float32Array; labels: Int32Array; batchStats: boolean }
  | { type: 'apply'; grads: Float32Array; lr: number }
  | { type: 'getBn'; id: number }
  | { type: 'setBn'; stats: NamedArrays }
  | { type: 'getWeights'; id: number };

export type FromWorker =
  | { type: 'ready' }
  | { type: 'grads'; id: number; loss: number; correct: number; grads: Float32Array }
  | { type: 'bn'; id: number; stats: NamedArrays }
  | { type: 'weights'; id: number; weights: NamedArrays }
  | { type: 'error'; message: string };
