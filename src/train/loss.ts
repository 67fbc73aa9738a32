/**
 * Mean softmax cross-entropy with a hand-written gradient: one exp pass instead of the three
 * tfjs's own loss takes (logits [B, C] -> scalar; gradient (softmax - onehot) / B).
 */
import * as tf from '@tensorflow/tfjs-core';

export function crossEntropy(logits: tf.Tensor2D, oneHot: tf.Tensor2D): tf.Scalar {
  const B = logits.shape[0];
  return tf.customGrad((...args: unknown[]) => {
    const [z, y, save] = args as [tf.Tensor2D, tf.Tensor2D, tf.GradSaveFunc];
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
