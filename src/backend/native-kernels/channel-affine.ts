/** The native evaluation-mode batch norm (+ residual) (+ ReLU): CHANNEL_AFFINE_KERNEL (names.ts). */
import type { KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import type { NativeAddon } from '../../native-addon.ts';
import { rowsChannels, sameShape, type WasmBackend } from './heap.ts';

export function nativeChannelAffine(a: NativeAddon): KernelFunc {
  return ({ inputs, backend, attrs }) => {
    const { x, scale, shift, res } = inputs as Record<string, TensorInfo | undefined>;
    const { relu } = attrs as unknown as { relu: boolean };
    const be = backend as unknown as WasmBackend;
    const [M, C] = rowsChannels(x!);
    sameShape(res, x!, 'residual');
    const y = be.makeOutput([...x!.shape], 'float32');
    const off = (t: TensorInfo) => be.getMemoryOffset(t.dataId);
    const offsets = Float64Array.of(off(x!), off(scale!), off(shift!), off(y), ...(res ? [off(res)] : []));
    a.batchNorm(2, be.wasm.HEAPU8.buffer as ArrayBuffer, offsets, M, C, relu, 0);
    return y;
  };
}
