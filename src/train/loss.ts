/**
 * Mean softmax cross-entropy with a hand-written gradient: one exp pass instead of the three
 * tfjs's own loss takes (logits [B, C] -> scalar; gradient (softmax - onehot) / B).
 *
 * With a per-class logit offset (`offset` [C]) it is the logit-adjusted / balanced-softmax loss,
 * CE(z + offset): the offset enters the softmax only, so the gradient w.r.t. z is
 * (softmax(z + offset) - onehot) / B, and the model predicts with z alone.
 */
import * as tf from '@tensorflow/tfjs-core';
import { logPrior } from '../sampling/probabilities.ts';
import type { LossName } from './joint-config.ts';

export function crossEntropy(logits: tf.Tensor2D, oneHot: tf.Tensor2D, offset?: tf.Tensor1D): tf.Scalar {
  const B = logits.shape[0];
  return tf.customGrad((...args: unknown[]) => {
    const [z0, y, save] = args as [tf.Tensor2D, tf.Tensor2D, tf.GradSaveFunc];
    const z = offset ? tf.add(z0, offset) : z0; // [B, C]
    const m = tf.max(z, 1, true); // [B, 1]
    const e = tf.exp(tf.sub(z, m)); // [B, C]
    const s = tf.sum(e, 1, true); // [B, 1]
    // loss_i = log s_i + m_i - z_i[y_i]
    const zy = tf.sum(tf.mul(z, y), 1, true); // [B, 1]
    const loss = tf.mean(tf.sub(tf.add(tf.log(s), m), zy));
    save([e, s, y]);
    return {
      value: loss as tf.Scalar,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [eS, sS, yS] = saved as [tf.Tensor2D, tf.Tensor2D, tf.Tensor2D];
        const g = tf.mul(tf.sub(tf.div(eS, sS), yS), tf.div(dy, B)); // [B, C]
        return [g, tf.zerosLike(yS)];
      },
    };
  })(logits, oneHot) as tf.Scalar;
}

/** The per-class logit offset a stage-1 loss adds inside the softmax (null for plain CE). */
export function lossOffset(loss: LossName, counts: readonly number[], tau = 1): Float32Array | null {
  if (loss === 'ce') return null;
  const lp = logPrior(counts, `--loss ${loss}`);
  return loss === 'balanced-softmax' ? lp : lp.map((v) => tau * v);
}
