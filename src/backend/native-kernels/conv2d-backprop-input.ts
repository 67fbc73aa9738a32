/** The native input gradient of a convolution (tfjs Conv2DBackpropInput): dy, w -> dx. */
import {
  backend_util,
  type Conv2DBackpropInputAttrs,
  type KernelFunc,
  type TensorInfo,
} from '@tensorflow/tfjs-core';
import type { NativeAddon } from '../../native-addon.ts';
import { nativeConvKernel, type Shape4 } from './conv.ts';

export function nativeConv2DBackpropInput(a: NativeAddon, fallback: KernelFunc, bf16 = false): KernelFunc {
  return nativeConvKernel(
    a,
    1,
    fallback,
    ({ inputs, attrs }) => {
      const { dy, filter } = inputs as { dy: TensorInfo; filter: TensorInfo };
      const { strides, pad, dataFormat, dimRoundingMode, inputShape } =
        attrs as unknown as Conv2DBackpropInputAttrs;
      const info = backend_util.computeConv2DInfo(
        inputShape,
        filter.shape as Shape4,
        strides,
        1,
        pad,
        dimRoundingMode,
      );
      return { first: dy, second: filter, info, dataFormat, outShape: [...inputShape] };
    },
    bf16,
  );
}
