/**
 * The building blocks of the backbones, as plain functions over a ParamSet. Written with
 * broadcasting ops rather than tf.batchNorm: on wasm, tf.batchNorm's gradient goes through Tile
 * and trained a ResNet-8 step about 1.6x slower.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Rng } from '../random/rng.ts';
import { normalTensor, type ParamSet } from './params.ts';

/** Batch-norm settings, as PyTorch's defaults. */
export const BN_EPS = 1e-5;
export const BN_MOMENTUM = 0.1;

export interface Conv {
  kind: 'conv';
  w: tf.Variable; // [kh, kw, cin, cout]
  stride: number;
  pad: 'same' | 'valid' | number;
}

/** A bias-free convolution, He-normal initialised (fan_out, as torchvision's ResNets). */
export function makeConv(
  ps: ParamSet,
  name: string,
  k: number,
  cin: number,
  cout: number,
  stride: number,
  rng: Rng,
  pad: 'same' | 'valid' | number = 'same',
): Conv {
  const w = ps.addParam(
    `${name}.weight`,
    normalTensor([k, k, cin, cout], Math.sqrt(2 / (k * k * cout)), rng),
  );
  return { kind: 'conv', w, stride, pad };
}

export function conv(c: Conv, x: tf.Tensor4D): tf.Tensor4D {
  // Symmetric numeric padding as PyTorch's, passed to the kernel explicitly: a separate tf.pad
  // costs a Slice in the backward pass, and Slice is slow on wasm.
  const pad: 'same' | 'valid' | [[0, 0], [number, number], [number, number], [0, 0]] =
    typeof c.pad === 'number'
      ? [
          [0, 0],
          [c.pad, c.pad],
          [c.pad, c.pad],
          [0, 0],
        ]
      : c.pad;
  return tf.conv2d(x, c.w as tf.Tensor4D, c.stride, pad);
}

export interface BatchNorm {
  gamma: tf.Variable; // [c]
  beta: tf.Variable; // [c]
  runningMean: tf.Variable; // [c]
  runningVar: tf.Variable; // [c]
}

export function makeBatchNorm(ps: ParamSet, name: string, c: number): BatchNorm {
  return {
    gamma: ps.addParam(`${name}.weight`, tf.ones([c])),
    beta: ps.addParam(`${name}.bias`, tf.zeros([c])),
    runningMean: ps.addBuffer(`${name}.running_mean`, tf.zeros([c])),
    runningVar: ps.addBuffer(`${name}.running_var`, tf.ones([c])),
  };
}

/**
 * Batch norm over [batch, H, W, C], optionally followed by ReLU. In training it normalises by
 * the batch's statistics and updates the running ones (momentum 0.1, unbiased variance, as
 * PyTorch); in evaluation it uses the running statistics.
 *
 * The training path has a hand-written gradient (the standard closed form), which needs about
 * half the full-size element-wise passes of tfjs's automatic one.
 */
export function batchNorm(bn: BatchNorm, x: tf.Tensor4D, training: boolean, relu = false): tf.Tensor4D {
  if (!training) {
    const scale = tf.mul(bn.gamma, tf.rsqrt(tf.add(bn.runningVar, BN_EPS))); // [c]
    const shift = tf.sub(bn.beta, tf.mul(bn.runningMean, scale)); // [c]
    const y = tf.add<tf.Tensor4D>(tf.mul(x, scale), shift);
    return relu ? tf.relu(y) : y;
  }
  return (relu ? bnReluTrain : bnTrain)(x, bn.gamma, bn.beta, bn) as tf.Tensor4D;
}

function makeBnTrain(relu: boolean) {
  return (x: tf.Tensor4D, gamma: tf.Tensor, beta: tf.Tensor, bn: BatchNorm): tf.Tensor =>
    tf.customGrad((...args: unknown[]) => {
      const [xi, g, b, save] = args as [tf.Tensor4D, tf.Tensor1D, tf.Tensor1D, tf.GradSaveFunc];
      const n = xi.size / xi.shape[3];
      const mean = tf.mean(xi, [0, 1, 2]); // [c]
      const xc = tf.sub(xi, mean); // [b, h, w, c]
      const variance = tf.mean(tf.square(xc), [0, 1, 2]); // [c] (biased, for normalising)
      const invstd = tf.rsqrt(tf.add(variance, BN_EPS)); // [c]
      const a = tf.mul(g, invstd); // [c]
      let y = tf.add(tf.mul(xc, a), b); // [b, h, w, c]
      if (relu) y = tf.relu(y);
      tf.tidy(() => {
        const m = BN_MOMENTUM;
        const unbiased = tf.mul(variance, n / Math.max(n - 1, 1));
        bn.runningMean.assign(tf.add(tf.mul(bn.runningMean, 1 - m), tf.mul(mean, m)));
        bn.runningVar.assign(tf.add(tf.mul(bn.runningVar, 1 - m), tf.mul(unbiased, m)));
      });
      save([xc, invstd, a, y]);
      return {
        value: y,
        gradFunc: (dyIn: tf.Tensor, saved: tf.Tensor[]) => {
          const [xcS, inv, aS, yS] = saved as [tf.Tensor4D, tf.Tensor1D, tf.Tensor1D, tf.Tensor4D];
          const dy = relu ? tf.mul(dyIn, tf.step(yS)) : dyIn; // [b, h, w, c]
          const dbeta = tf.sum(dy, [0, 1, 2]); // [c]
          const sdyxc = tf.sum(tf.mul(dy, xcS), [0, 1, 2]); // [c] = sum(dy * xc)
          const dgamma = tf.mul(sdyxc, inv); // [c] = sum(dy * xhat)
          // dx = a * (dy - mean(dy) - xc * invstd^2 * mean(dy * xc))
          const k = tf.mul(tf.mul(tf.square(inv), sdyxc), 1 / n); // [c]
          const c0 = tf.mul(tf.mul(dbeta, 1 / n), aS); // [c]
          const dx = tf.sub(tf.sub(tf.mul(dy, aS), tf.mul(xcS, tf.mul(aS, k))), c0);
          return [dx, dgamma, dbeta];
        },
      };
    })(x, gamma, beta);
}

const bnTrain = makeBnTrain(false);
const bnReluTrain = makeBnTrain(true);

/** The training-mode op itself (gamma and beta as explicit inputs), for gradient checks. */
export function batchNormTrain(
  x: tf.Tensor4D,
  gamma: tf.Tensor,
  beta: tf.Tensor,
  bn: BatchNorm,
  relu: boolean,
): tf.Tensor4D {
  return (relu ? bnReluTrain : bnTrain)(x, gamma, beta, bn) as tf.Tensor4D;
}
