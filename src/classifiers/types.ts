/** The one stage-2 classifier contract: features [n, d] -> logits [n, C], plus per-class weight norms. */
import type { FeatureSet, LinearWeights } from '../features/feature-set.ts';

/** How features are transformed before the folded linear layer. */
export type FeatureTransform = { kind: 'none' } | { kind: 'l2n' } | { kind: 'cl2n'; mean: Float32Array };

/**
 * Every stage-2 classifier as one plain linear layer for deployment: logits' = T(f) W^T + b.
 * For all but NCM these are exactly the method's logits; for NCM they rank classes identically
 * (argmin ||f - c||^2 = argmax 2 f.c - ||c||^2 on normalised f).
 */
export interface FoldedLinear extends LinearWeights {
  transform: FeatureTransform;
}

export interface Stage2Classifier {
  readonly method: string;
  readonly numClasses: number;
  readonly dim: number;
  /** features [n, d] -> logits [n, C]. */
  logits(features: Float32Array, n: number): Float32Array;
  /** ||w_i|| per class of the effective classifier (the paper's weight-norm figure). */
  weightNorms(): number[];
  folded(): FoldedLinear;
  /** What was chosen or learned, for the results (tau and its sweep, epochs, mode, ...). */
  details: Record<string, unknown>;
}

/** Trains a classifier on a batch source of training features. */
export interface TrainFeatureSource {
  /** `features`: cached, un-augmented features; `augmented`: through the frozen backbone with training augmentation. */
  mode: 'features' | 'augmented';
  /** Features [indices.length, d] of the training images at `indices`, for this epoch. */
  batch(indices: ArrayLike<number>, epoch: number, step: number): Float32Array;
}

export interface Stage2Context {
  features: FeatureSet;
  /** Where the trained methods (cRT, LWS) draw training batches from; default cached features. */
  source?: TrainFeatureSource;
  seed?: number;
  /** Threads to split the trained heads' classes over (cRT, LWS); default 1. Results do not depend on it. */
  threads?: number;
  onProgress?: (method: string, done: number, total: number) => void;
}
