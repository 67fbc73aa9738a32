/** The native forward convolution (tfjs Conv2D): y = x * w, NHWC, float32 (bf16 where bf16Wins). */
import { backend_util, type Conv2DAttrs, type KernelFunc, type TensorInfo } from '@tensorflow/tfjs-core';
import type { NativeAddon } from '../../native-addon.ts';
import { nativeConvKernel, type Shape4 } from './conv.ts';

export function nativeConv2D(a: NativeAddon, fallback: KernelFunc, bf16 = false): KernelFunc {
  return nativeConvKernel(
    a,
    0,
    fallback,
    ({ inputs, attrs }) => {
      const { x, filter } = inputs as { x: TensorInfo; filter: TensorInfo };
      const { strides, pad, dataFormat, dilations, dimRoundingMode } = attrs as unknown as Conv2DAttrs;
      const info = backend_util.computeConv2DInfo(
        x.shape as Shape4,
        filter.shape as Shape4,
        strides,
        dilations,
        pad,
        dimRoundingMode,
      );
      return { first: x, second: filter, info, dataFormat, outShape: info.outShape };
    },
    bf16,
  );
}
