/** The native evaluation-mode convolution + folded batch norm: CONV_BN_KERNEL (names.ts). */
import { backend_util, type Conv2DAttrs, type KernelFunc, type TensorInfo } from '@tensorflow/tfjs-core';
import type { NativeAddon } from '../../native-addon.ts';
import { nativeShape, type Shape4 } from './conv.ts';
import { sameShape, type WasmBackend } from './heap.ts';

export function nativeConvBn(a: NativeAddon): KernelFunc {
  return ({ inputs, backend, attrs }) => {
    const { x, filter, gamma, beta, mean, variance, res } = inputs as Record<string, TensorInfo | undefined>;
    const { strides, pad, relu, epsilon } = attrs as unknown as {
      strides: number | [number, number];
      pad: Conv2DAttrs['pad'];
      relu: boolean;
      epsilon: number;
    };
    const info = backend_util.computeConv2DInfo(x!.shape as Shape4, filter!.shape as Shape4, strides, 1, pad);
    const shape = nativeShape(info, 'NHWC', [x!.dtype, filter!.dtype]);
    if (shape === null)
      throw new Error(`convolution + batch norm: padding ${JSON.stringify(pad)} is not supported`);
    for (const [name, t] of [
      ['scale', gamma],
      ['shift', beta],
      ['mean', mean],
      ['variance', variance],
    ] as const) {
      if (t!.shape.length !== 1 || t!.shape[0] !== info.outChannels)
        throw new Error(`convolution + batch norm: the ${name} [${t!.shape}] must be [${info.outChannels}]`);
    }
    const be = backend as unknown as WasmBackend;
    const y = be.makeOutput(info.outShape, 'float32');
    sameShape(res, y, 'residual', "the convolution output's");
    if (info.batchSize === 0) return y;
    const off = (t: TensorInfo) => be.getMemoryOffset(t.dataId);
    const offsets = Float64Array.of(
      off(x!),
      off(filter!),
      off(gamma!),
      off(beta!),
      off(mean!),
      off(variance!),
      off(y),
      ...(res ? [off(res)] : []),
    );
    a.convBn(be.wasm.HEAPU8.buffer as ArrayBuffer, offsets, shape, relu, epsilon);
    return y;
  };
}
