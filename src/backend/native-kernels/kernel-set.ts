/**
 * The `native` training-kernel set (training-kernels.ts registers it): the wasm set with the
 * addon's kernels in place of its convolutions and product, plus the kernels tfjs has no name for
 * (names.ts). A call the addon does not cover (dilation, NCHW, other dtypes) goes to the wasm
 * set's kernel of the same name.
 */
import {
  BatchMatMul,
  Conv2D,
  Conv2DBackpropFilter,
  Conv2DBackpropInput,
  type KernelConfig,
  type KernelFunc,
} from '@tensorflow/tfjs-core';
import { loadNativeAddon, type NativeAddon, nativeStatus } from '../../native-addon.ts';
import { batchMatMulConfig } from '../kernels/BatchMatMul.ts';
import { nativeBatchMatMul } from './batch-mat-mul.ts';
import { nativeBatchNorm } from './batch-norm.ts';
import { nativeBatchNormGrad } from './batch-norm-grad.ts';
import { nativeChannelAffine } from './channel-affine.ts';
import { nativeChannelMean } from './channel-mean.ts';
import { nativeConvBn } from './conv-bn.ts';
import { nativeConvBnProgram } from './conv-bn-program.ts';
import { nativeConv2D } from './conv2d.ts';
import { nativeConv2DBackpropFilter } from './conv2d-backprop-filter.ts';
import { nativeConv2DBackpropInput } from './conv2d-backprop-input.ts';
import {
  BATCH_NORM_GRAD_KERNEL,
  BATCH_NORM_KERNEL,
  CHANNEL_AFFINE_KERNEL,
  CHANNEL_MEAN_KERNEL,
  CONV_BN_KERNEL,
  CONV_BN_PROGRAM_KERNEL,
  SGD_KERNEL,
} from './names.ts';
import { nativeSgd } from './sgd.ts';

/**
 * The native set built over `wasm` (the wasm set, keyed by kernel name). With `bf16`, the
 * convolution passes that gain from it run in bf16 (conv.ts's bf16Wins). Throws where the
 * addon cannot run.
 */
export function nativeKernelSet(
  wasm: Record<string, KernelConfig>,
  backendName: string,
  bf16 = false,
): Record<string, KernelConfig> {
  const addon = loadNativeAddon();
  if (addon === null) throw new Error(`native kernels are not available: ${nativeStatus().reason}`);
  /** The wasm set's kernel of that name, run by the addon where it can. */
  const native = (
    name: string,
    kernel: (a: NativeAddon, fallback: KernelFunc, bf16: boolean) => KernelFunc,
  ) => {
    const fallback = wasm[name]!;
    return { ...fallback, kernelFunc: kernel(addon, fallback.kernelFunc, bf16) };
  };
  /** A kernel the wasm set lacks (models use tfjs ops when it is not registered). */
  const own = (kernelName: string, kernelFunc: KernelFunc) => ({ kernelName, backendName, kernelFunc });
  return {
    ...wasm,
    // The native product takes no transposes: the wasm set's wrapper transposes first.
    [BatchMatMul]: batchMatMulConfig(backendName, native(BatchMatMul, nativeBatchMatMul)),
    [Conv2D]: native(Conv2D, nativeConv2D),
    [Conv2DBackpropInput]: native(Conv2DBackpropInput, nativeConv2DBackpropInput),
    [Conv2DBackpropFilter]: native(Conv2DBackpropFilter, nativeConv2DBackpropFilter),
    [BATCH_NORM_KERNEL]: own(BATCH_NORM_KERNEL, nativeBatchNorm(addon)),
    [BATCH_NORM_GRAD_KERNEL]: own(BATCH_NORM_GRAD_KERNEL, nativeBatchNormGrad(addon)),
    [CHANNEL_AFFINE_KERNEL]: own(CHANNEL_AFFINE_KERNEL, nativeChannelAffine(addon)),
    [CONV_BN_KERNEL]: own(CONV_BN_KERNEL, nativeConvBn(addon)),
    // An addon built before the chain existed lacks it: models then run convBn layer by layer.
    ...(typeof addon.convBnProgram === 'function'
      ? { [CONV_BN_PROGRAM_KERNEL]: own(CONV_BN_PROGRAM_KERNEL, nativeConvBnProgram(addon)) }
      : {}),
    [SGD_KERNEL]: own(SGD_KERNEL, nativeSgd(addon)),
    // An addon built before it existed lacks it: global average pooling then runs tf.mean.
    ...(typeof addon.channelMean === 'function'
      ? { [CHANNEL_MEAN_KERNEL]: own(CHANNEL_MEAN_KERNEL, nativeChannelMean(addon)) }
      : {}),
  };
}
