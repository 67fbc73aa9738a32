/** The native filter gradient of a convolution (tfjs Conv2DBackpropFilter): x, dy -> dw. */
import {
  backend_util,
  type Conv2DBackpropFilterAttrs,
  type KernelFunc,
  type TensorInfo,
} from '@tensorflow/tfjs-core';
import type { NativeAddon } from '../../native-addon.ts';
import { nativeConvKernel, type Shape4 } from './conv.ts';

export function nativeConv2DBackpropFilter(a: NativeAddon, fallback: KernelFunc, bf16 = false): KernelFunc {
  return nativeConvKernel(
    a,
    2,
    fallback,
    ({ inputs, attrs }) => {
      const { x, dy } = inputs as { x: TensorInfo; dy: TensorInfo };
      const { strides, pad, dataFormat, dimRoundingMode, filterShape } =
        attrs as unknown as Conv2DBackpropFilterAttrs;
      const info = backend_util.computeConv2DInfo(
        x.shape as Shape4,
        filterShape,
        strides,
        1,
        pad,
        dimRoundingMode,
      );
      return { first: x, second: dy, info, dataFormat, outShape: [...filterShape] };
    },
    bf16,
  );
}
