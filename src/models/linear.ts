/**
 * The linear classifier head, kept apart from the backbone. Weight is [C, d] (one row per
 * class, as PyTorch's nn.Linear), so per-class weight norms are row norms.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Rng } from '../random/rng.ts';
import { ParamSet, uniformTensor } from './params.ts';

export interface LinearHead {
  readonly params: ParamSet;
  readonly weight: tf.Variable; // [C, d]
  readonly bias: tf.Variable; // [C]
  /** features [batch, d] -> logits [batch, C]. */
  apply(features: tf.Tensor2D): tf.Tensor2D;
  dispose(): void;
}

/** logits = f W^T + b. features [batch, d], weight [C, d], bias [C] -> [batch, C]. */
export function linear(features: tf.Tensor2D, weight: tf.Tensor, bias: tf.Tensor | null): tf.Tensor2D {
  const z = tf.matMul(features, weight as tf.Tensor2D, false, true) as tf.Tensor2D;
  return bias === null ? z : (tf.add(z, bias) as tf.Tensor2D);
}

/** A linear layer initialised as PyTorch's nn.Linear: U(-1/sqrt(d), 1/sqrt(d)) for weight and bias. */
export function makeLinearHead(inDim: number, numClasses: number, rng: Rng, prefix = 'fc'): LinearHead {
  const ps = new ParamSet();
  const bound = 1 / Math.sqrt(inDim);
  const weight = ps.addParam(`${prefix}.weight`, uniformTensor([numClasses, inDim], bound, rng));
  const bias = ps.addParam(`${prefix}.bias`, uniformTensor([numClasses], bound, rng));
  return {
    params: ps,
    weight,
    bias,
    apply: (f) => linear(f, weight, bias),
    dispose: () => ps.dispose(),
  };
}
