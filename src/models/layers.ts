/**
 * The building blocks of the backbones, as plain functions over a ParamSet. Written with
 * broadcasting ops rather than tf.batchNorm: on wasm, tf.batchNorm's gradient goes through Tile,
 * which made a ResNet-8 training step markedly slower (docs/benchmarks.md).
 */
import * as tf from '@tensorflow/tfjs-core';
import {
  BATCH_NORM_GRAD_KERNEL,
  BATCH_NORM_KERNEL,
  CHANNEL_AFFINE_KERNEL,
  CHANNEL_MEAN_KERNEL,
  CONV_BN_KERNEL,
  CONV_BN_PROGRAM_KERNEL,
} from '../backend/native-kernels/names.ts';
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
  return tf.conv2d(x, c.w as tf.Tensor4D, c.stride, convPad(c));
}

/**
 * Symmetric numeric padding as PyTorch's, passed to the kernel explicitly: a separate tf.pad
 * costs a Slice in the backward pass, and Slice is slow on wasm.
 */
function convPad(c: Conv): 'same' | 'valid' | [[0, 0], [number, number], [number, number], [0, 0]] {
  return typeof c.pad === 'number'
    ? [
        [0, 0],
        [c.pad, c.pad],
        [c.pad, c.pad],
        [0, 0],
      ]
    : c.pad;
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
 * Batch norm over [batch, H, W, C], optionally plus a residual branch of the same shape, then
 * optionally ReLU: relu(bn(x) + residual), the tail of a residual block. In training it
 * normalises by the batch's statistics and updates the running ones (momentum 0.1, unbiased
 * variance, as PyTorch); in evaluation it uses the running statistics.
 *
 * The training path has a hand-written gradient (the standard closed form), which needs about
 * half the full-size element-wise passes of tfjs's automatic one. Where the native kernels run,
 * the whole tail (normalise, add, ReLU) is one pass each way.
 */
export function batchNorm(
  bn: BatchNorm,
  x: tf.Tensor4D,
  training: boolean,
  relu = false,
  residual?: tf.Tensor4D,
): tf.Tensor4D {
  if (!training) {
    const scale = tf.mul(bn.gamma, tf.rsqrt(tf.add(bn.runningVar, BN_EPS))) as tf.Tensor1D; // [c]
    const shift = tf.sub(bn.beta, tf.mul(bn.runningMean, scale)) as tf.Tensor1D; // [c]
    if (tf.getKernel(CHANNEL_AFFINE_KERNEL, tf.getBackend()) !== undefined) {
      const k = relu ? 1 : 0;
      return (
        residual ? nativeAffineRes[k]!(x, scale, shift, residual) : nativeAffine[k]!(x, scale, shift)
      ) as tf.Tensor4D;
    }
    if (residual === undefined) return channelAffine(x, scale, shift, relu);
    const sum = tf.add(channelAffine(x, scale, shift, false), residual) as tf.Tensor4D;
    return relu ? tf.relu(sum) : sum;
  }
  return batchNormTrain(x, bn.gamma, bn.beta, bn, relu, residual);
}

/**
 * bn(conv(x)) (+ residual) (then ReLU): the convolution and the batch norm that follows it. In
 * evaluation mode on the native kernels, with no gradient being recorded (a frozen backbone's
 * forward: extraction, prediction), it is one call with the batch norm folded into the filter
 * (w * gamma / sqrt(var + eps), bias beta - mean * scale) and the tail applied while each image's
 * output is in cache; equal to the unfolded path within float rounding (fused-bn.test.ts).
 */
export function convBn(
  c: Conv,
  bn: BatchNorm,
  x: tf.Tensor4D,
  training: boolean,
  relu = false,
  residual?: tf.Tensor4D,
): tf.Tensor4D {
  if (!training && foldedAvailable()) {
    const inputs: tf.NamedTensorMap = {
      x,
      filter: c.w,
      gamma: bn.gamma,
      beta: bn.beta,
      mean: bn.runningMean,
      variance: bn.runningVar,
    };
    if (residual) inputs.res = residual;
    const attrs = { strides: c.stride, pad: convPad(c), relu, epsilon: BN_EPS };
    return tf.engine().runKernel(CONV_BN_KERNEL, inputs, attrs as unknown as tf.NamedAttrMap) as tf.Tensor4D;
  }
  return batchNorm(bn, conv(c, x), training, relu, residual);
}

/** One step of an evaluation-mode chain (convBnChain): buffer 0 is the chain's input, buffer i + 1 step i's output. */
export interface ChainStep {
  c: Conv;
  bn: BatchNorm;
  input: number;
  /** A buffer added before the ReLU (a residual), as convBn's `residual`. */
  res?: number;
  relu: boolean;
}

/**
 * Evaluation-mode convBn steps as one native call that runs every step on one image before the
 * next image (the activations stay in cache; no dispatch between layers): the last step's output,
 * bit-identical to calling convBn step by step. null where it does not run (no native kernel, a
 * gradient being recorded, a padding given as a string): the caller then runs convBn per step.
 */
export function convBnChain(x: tf.Tensor4D, steps: readonly ChainStep[]): tf.Tensor4D | null {
  if (tf.getKernel(CONV_BN_PROGRAM_KERNEL, tf.getBackend()) === undefined) return null;
  if ((tf.engine().state as unknown as { gradientDepth: number }).gradientDepth > 0) return null;
  if (steps.some((s) => typeof s.c.pad !== 'number')) return null;
  const inputs: tf.NamedTensorMap = { x };
  const flat: number[] = [];
  steps.forEach((s, i) => {
    inputs[`w${i}`] = s.c.w;
    inputs[`gamma${i}`] = s.bn.gamma;
    inputs[`beta${i}`] = s.bn.beta;
    inputs[`mean${i}`] = s.bn.runningMean;
    inputs[`variance${i}`] = s.bn.runningVar;
    const pad = s.c.pad as number;
    flat.push(s.input, s.res ?? -1, s.relu ? 1 : 0, s.c.stride, pad, pad);
  });
  const attrs = { steps: flat, epsilon: BN_EPS };
  return tf
    .engine()
    .runKernel(CONV_BN_PROGRAM_KERNEL, inputs, attrs as unknown as tf.NamedAttrMap) as tf.Tensor4D;
}

/**
 * Global average pooling x [b, h, w, c] -> [b, c]. With no gradient being recorded, an average
 * pool over the whole image (on wasm, tf.mean over axes 1-2 transposes the tensor first); under a
 * tape tf.mean with the gradient below.
 */
export function globalAvgPool(x: tf.Tensor4D): tf.Tensor2D {
  const [b, h, w, c] = x.shape;
  if ((tf.engine().state as unknown as { gradientDepth: number }).gradientDepth > 0) return meanPool(x);
  return tf.reshape(tf.avgPool(x, [h, w], 1, 'valid'), [b, c]);
}

/**
 * tf.mean over axes 1-2 whose gradient is dy / (h w) broadcast over the image: tfjs's own Mean
 * gradient fills a ones tensor of x's whole shape in JavaScript and multiplies dy by it, about 6 %
 * of a ResNet-8 step (tf.broadcastTo's Tile kernel is slower still). A product of [b, 1, 1, c]
 * with ones [1, h, w, 1] broadcasts both sides: the same values (x 1 is exact), 50x less time.
 */
const meanPool = tf.customGrad((x) => {
  const [b, h, w, c] = (x as tf.Tensor4D).shape;
  // The native kernel: tf.mean's arithmetic without wasm's transpose of x first (bit-identical).
  const native = tf.getKernel(CHANNEL_MEAN_KERNEL, tf.getBackend()) !== undefined;
  return {
    value: native
      ? (tf.engine().runKernel(CHANNEL_MEAN_KERNEL, { x: x as tf.Tensor }, {}) as tf.Tensor)
      : tf.mean(x as tf.Tensor, [1, 2]),
    gradFunc: (dy: tf.Tensor) => tf.mul(tf.reshape(tf.div(dy, h * w), [b, 1, 1, c]), tf.ones([1, h, w, 1])),
  };
}) as (x: tf.Tensor4D) => tf.Tensor2D;

/** The folded kernel is registered here and no gradient tape is recording (it has no gradient). */
function foldedAvailable(): boolean {
  if (tf.getKernel(CONV_BN_KERNEL, tf.getBackend()) === undefined) return false;
  return (tf.engine().state as unknown as { gradientDepth: number }).gradientDepth === 0;
}

/**
 * Evaluation-mode batch norm on the native kernel: x * scale + shift (+ res) (then ReLU) in one
 * pass, with its gradient from tfjs ops (only fine-tuning with frozen statistics needs it).
 */
function makeNativeAffine(relu: boolean, withRes: boolean) {
  return tf.customGrad((...args: unknown[]) => {
    const save = args[args.length - 1] as tf.GradSaveFunc;
    const [x, scale, shift] = args as [tf.Tensor4D, tf.Tensor1D, tf.Tensor1D];
    const inputs: tf.NamedTensorMap = { x, scale, shift };
    if (withRes) inputs.res = args[3] as tf.Tensor4D;
    const y = tf.engine().runKernel(CHANNEL_AFFINE_KERNEL, inputs, { relu }) as tf.Tensor4D;
    save([x, scale, y]);
    return {
      value: y,
      gradFunc: (dyIn: tf.Tensor, saved: tf.Tensor[]) => {
        const [xS, sS, yS] = saved as [tf.Tensor4D, tf.Tensor1D, tf.Tensor4D];
        const g = (relu ? tf.mul(dyIn, tf.step(yS)) : dyIn) as tf.Tensor4D; // [b, h, w, c]
        const n = g.size / g.shape[3];
        const dx = tf
          .engine()
          .runKernel(
            CHANNEL_AFFINE_KERNEL,
            { x: g, scale: sS, shift: tf.zerosLike(sS) },
            { relu: false },
          ) as tf.Tensor;
        const grads = [dx, tf.mul(channelMean(tf.mul(g, xS) as tf.Tensor4D), n), tf.mul(channelMean(g), n)];
        return withRes ? [...grads, g] : grads;
      },
    };
  }) as (x: tf.Tensor, scale: tf.Tensor, shift: tf.Tensor, res?: tf.Tensor) => tf.Tensor;
}

const nativeAffine = [makeNativeAffine(false, false), makeNativeAffine(true, false)];
const nativeAffineRes = [makeNativeAffine(false, true), makeNativeAffine(true, true)];

/** Batch-mean and variance into the running statistics (unbiased variance, as PyTorch). */
function updateRunning(bn: BatchNorm, mean: tf.Tensor, variance: tf.Tensor, n: number): void {
  tf.tidy(() => {
    const m = BN_MOMENTUM;
    const unbiased = tf.mul(variance, n / Math.max(n - 1, 1));
    bn.runningMean.assign(tf.add(tf.mul(bn.runningMean, 1 - m), tf.mul(mean, m)));
    bn.runningVar.assign(tf.add(tf.mul(bn.runningVar, 1 - m), tf.mul(unbiased, m)));
  });
}

/**
 * The same op on the native kernels (native/src/bn.cc: two passes over memory each way instead
 * of about eight), used where they are registered for the current backend; with `withRes` the
 * residual branch is added before the ReLU in the same pass, and its gradient (the ReLU-masked
 * dy) comes out of the backward pass. The forward call also moves the running statistics and
 * returns invstd (bit-identical to updateRunning's and tf.rsqrt's float ops: about ten tfjs
 * kernels fewer per layer). A ReLU without a residual keeps the affine instead of y: the
 * backward pass recomputes the mask from x (one full-size read fewer each pass, and y is freed
 * after the next layer) where the channels are a multiple of 8 (bn.cc's AVX2 passes).
 */
function makeNativeBnTrain(relu: boolean, withRes: boolean) {
  return (x: tf.Tensor4D, gamma: tf.Tensor, beta: tf.Tensor, bn: BatchNorm, res?: tf.Tensor4D): tf.Tensor => {
    const maskFromX = relu && !withRes && x.shape[3] % 8 === 0;
    const f = tf.customGrad((...args: unknown[]) => {
      const save = args[args.length - 1] as tf.GradSaveFunc;
      const [xi, g, b] = args as [tf.Tensor4D, tf.Tensor1D, tf.Tensor1D];
      const inputs: tf.NamedTensorMap = {
        x: xi,
        gamma: g,
        beta: b,
        runningMean: bn.runningMean,
        runningVar: bn.runningVar,
      };
      if (withRes) inputs.res = args[3] as tf.Tensor4D;
      if (ownData(bn.runningMean) && ownData(bn.runningVar)) {
        // The running statistics moved in place and the statistics as one packed tensor: the
        // tape clones what is saved (a kernel call each), so 2-3 saves instead of 5-6, and
        // gamma read from its variable (variables outlive the forward scope's tidy).
        const [y, stats] = tf.engine().runKernel(BATCH_NORM_KERNEL, inputs, {
          relu,
          epsilon: BN_EPS,
          momentum: BN_MOMENTUM,
          packed: true,
        } as unknown as tf.NamedAttrMap) as tf.Tensor[];
        const gKept = g instanceof tf.Variable;
        save([xi, stats!, ...(maskFromX ? [] : [y!]), ...(gKept ? [] : [g])]);
        return {
          value: y!,
          gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
            const [xS, sS, ...rest] = saved;
            const grad: tf.NamedTensorMap = { dy, x: xS!, stats: sS!, gamma: gKept ? g : rest.at(-1)! };
            if (!maskFromX) grad.y = rest[0]!;
            return tf.engine().runKernel(BATCH_NORM_GRAD_KERNEL, grad, {
              relu,
              residual: withRes,
              fromX: maskFromX,
            }) as tf.Tensor[];
          },
        };
      }
      const [y, mean, , invstd, scale, shift, rm, rv] = tf.engine().runKernel(BATCH_NORM_KERNEL, inputs, {
        relu,
        epsilon: BN_EPS,
        momentum: BN_MOMENTUM,
      } as unknown as tf.NamedAttrMap) as tf.Tensor[];
      bn.runningMean.assign(rm!);
      bn.runningVar.assign(rv!);
      save(maskFromX ? [xi, mean!, invstd!, g, scale!, shift!] : [xi, y!, mean!, invstd!, g]);
      return {
        value: y!,
        gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
          const [xS, yS, mS, iS, gS] = maskFromX ? [saved[0], undefined, ...saved.slice(1)] : saved;
          const grad: tf.NamedTensorMap = { dy, x: xS!, mean: mS!, invstd: iS!, gamma: gS! };
          if (maskFromX) {
            grad.scale = saved[4]!;
            grad.shift = saved[5]!;
          } else grad.y = yS!;
          return tf
            .engine()
            .runKernel(BATCH_NORM_GRAD_KERNEL, grad, { relu, residual: withRes }) as tf.Tensor[];
        },
      };
    });
    return withRes ? f(x, gamma, beta, res!) : f(x, gamma, beta);
  };
}

function makeBnTrain(relu: boolean) {
  return (x: tf.Tensor4D, gamma: tf.Tensor, beta: tf.Tensor, bn: BatchNorm): tf.Tensor =>
    tf.customGrad((...args: unknown[]) => {
      const [xi, g, b, save] = args as [tf.Tensor4D, tf.Tensor1D, tf.Tensor1D, tf.GradSaveFunc];
      const n = xi.size / xi.shape[3];
      const mean = channelMean(xi); // [c]
      const xc = channelAffine(xi, tf.onesLike(mean), tf.neg(mean), false); // [b, h, w, c]
      const variance = channelMean(tf.square(xc)); // [c] (biased, for normalising)
      const invstd = tf.rsqrt(tf.add(variance, BN_EPS)) as tf.Tensor1D; // [c]
      const a = tf.mul(g, invstd) as tf.Tensor1D; // [c]
      const y = channelAffine(xc, a, b, relu); // [b, h, w, c]
      updateRunning(bn, mean, variance, n);
      save([xc, invstd, a, y]);
      return {
        value: y,
        gradFunc: (dyIn: tf.Tensor, saved: tf.Tensor[]) => {
          const [xcS, inv, aS, yS] = saved as [tf.Tensor4D, tf.Tensor1D, tf.Tensor1D, tf.Tensor4D];
          const dy = (relu ? tf.mul(dyIn, tf.step(yS)) : dyIn) as tf.Tensor4D; // [b, h, w, c]
          const dbeta = tf.mul(channelMean(dy), n) as tf.Tensor1D; // [c] = sum(dy)
          const sdyxc = tf.mul(channelMean(tf.mul(dy, xcS) as tf.Tensor4D), n); // [c] = sum(dy * xc)
          const dgamma = tf.mul(sdyxc, inv); // [c] = sum(dy * xhat)
          // dx = a * (dy - mean(dy) - xc * invstd^2 * mean(dy * xc))
          const k = tf.mul(tf.mul(tf.square(inv), sdyxc), 1 / n); // [c]
          const c0 = tf.mul(tf.mul(dbeta, 1 / n), aS) as tf.Tensor1D; // [c]
          const dx = tf.sub(
            channelAffine(dy, aS, tf.neg(c0), false),
            channelAffine(xcS, tf.mul(aS, k) as tf.Tensor1D, null, false),
          );
          return [dx, dgamma, dbeta];
        },
      };
    })(x, gamma, beta);
}

/**
 * Per-channel mean over [b, h, w] of x [b, h, w, c] -> [c]: an average pool over the whole
 * image, then a mean over the small [b, c]. On wasm, tf.mean over axes 0-2 transposes the whole
 * tensor first; this reads it once.
 */
export function channelMean(x: tf.Tensor4D): tf.Tensor1D {
  const [b, h, w, c] = x.shape;
  return tf.mean(tf.reshape(tf.avgPool(x, [h, w], 1, 'valid'), [b, c]), 0);
}

/**
 * x * scale + shift per channel, optionally then ReLU, as one fused 1x1 depthwise convolution:
 * on wasm one pass over x instead of three (broadcast multiply, add, ReLU, each its own output).
 * With its own gradient (the wasm backend has no depthwise-convolution gradient kernels).
 */
export function channelAffine(
  x: tf.Tensor4D,
  scale: tf.Tensor1D,
  shift: tf.Tensor1D | null,
  relu: boolean,
): tf.Tensor4D {
  return (relu ? affineRelu : affine)(x, scale, shift ?? tf.zerosLike(scale)) as tf.Tensor4D;
}

function fusedAffine(x: tf.Tensor4D, scale: tf.Tensor1D, shift: tf.Tensor1D, relu: boolean): tf.Tensor4D {
  return tf.fused.depthwiseConv2d({
    x,
    filter: tf.reshape(scale, [1, 1, x.shape[3], 1]) as tf.Tensor4D,
    strides: 1,
    pad: 'valid',
    bias: shift,
    activation: relu ? 'relu' : 'linear',
  });
}

function makeAffine(relu: boolean) {
  return tf.customGrad((...args: unknown[]) => {
    const [x, scale, shift, save] = args as [tf.Tensor4D, tf.Tensor1D, tf.Tensor1D, tf.GradSaveFunc];
    const y = fusedAffine(x, scale, shift, relu);
    save([x, scale, y]);
    return {
      value: y,
      gradFunc: (dyIn: tf.Tensor, saved: tf.Tensor[]) => {
        const [xS, sS, yS] = saved as [tf.Tensor4D, tf.Tensor1D, tf.Tensor4D];
        const dy = (relu ? tf.mul(dyIn, tf.step(yS)) : dyIn) as tf.Tensor4D; // [b, h, w, c]
        const n = dy.size / dy.shape[3];
        return [
          fusedAffine(dy, sS, tf.zerosLike(sS), false),
          tf.mul(channelMean(tf.mul(dy, xS) as tf.Tensor4D), n),
          tf.mul(channelMean(dy), n),
        ];
      },
    };
  });
}

const affine = makeAffine(false);
const affineRelu = makeAffine(true);

const bnTrain = makeBnTrain(false);
const bnReluTrain = makeBnTrain(true);
/** No other tensor shares the variable's data (it can be written in place). */
function ownData(v: tf.Variable): boolean {
  const be = tf.backend() as unknown as { refCount?: (dataId: object) => number };
  return be.refCount?.(v.dataId) === 1;
}

/** Native training ops by [residual ? 1 : 0][relu ? 1 : 0]. */
const nativeBnTrainOps = [
  [makeNativeBnTrain(false, false), makeNativeBnTrain(true, false)],
  [makeNativeBnTrain(false, true), makeNativeBnTrain(true, true)],
];

/**
 * The training-mode op itself (gamma and beta as explicit inputs), for gradient checks:
 * relu(bn(x) + residual), the residual and the ReLU optional.
 */
export function batchNormTrain(
  x: tf.Tensor4D,
  gamma: tf.Tensor,
  beta: tf.Tensor,
  bn: BatchNorm,
  relu: boolean,
  residual?: tf.Tensor4D,
): tf.Tensor4D {
  if (tf.getKernel(BATCH_NORM_KERNEL, tf.getBackend()) !== undefined)
    return nativeBnTrainOps[residual ? 1 : 0]![relu ? 1 : 0]!(x, gamma, beta, bn, residual) as tf.Tensor4D;
  if (residual === undefined) return (relu ? bnReluTrain : bnTrain)(x, gamma, beta, bn) as tf.Tensor4D;
  const sum = tf.add(bnTrain(x, gamma, beta, bn), residual) as tf.Tensor4D;
  return relu ? tf.relu(sum) : sum;
}
