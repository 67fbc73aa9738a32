/**
 * The backbone contract (timm's `forward_features`): images [batch, H, W, C] -> features
 * [batch, d]. The classifier is kept apart (linear.ts), so decoupling is "freeze one, swap the
 * other". Exporting to a deployable graph is an optional capability (graph-sink.ts), so a
 * backbone that cannot describe itself as a graph still fits.
 */
import type * as tf from '@tensorflow/tfjs-core';
import type { ParamSet } from './params.ts';

export interface Backbone {
  readonly name: string;
  /** Length of the feature vector. */
  readonly featureDim: number;
  /** Input [height, width, channels] the backbone was built for. */
  readonly inputShape: readonly [number, number, number];
  /**
   * Whether stage 1 can train it. A frozen external feature extractor (an ONNX model) is not:
   * it only gives features, and its `params` are empty.
   */
  readonly trainable: boolean;
  /** Parameters and buffers, saved in checkpoints; empty when the weights live elsewhere. */
  readonly params: ParamSet;
  /** x [batch, H, W, C] -> features [batch, featureDim]. `training` uses batch statistics. */
  features(x: tf.Tensor4D, training: boolean): tf.Tensor2D;
  dispose(): void;
}

/** A backbone as configuration names it: a registry name and that entry's options. */
export interface BackboneSpec {
  name: string;
  /** Checked by the registry entry; an unknown option is an error listing the valid ones. */
  options?: Record<string, unknown>;
}
