/** The native training-mode batch norm (+ residual) (+ ReLU): BATCH_NORM_KERNEL (names.ts). */
import type { KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import type { NativeAddon } from '../../native-addon.ts';
import { rowsChannels, sameShape, type WasmBackend } from './heap.ts';

export function nativeBatchNorm(a: NativeAddon): KernelFunc {
  return ({ inputs, backend, attrs }) => {
    const { x, gamma, beta, res } = inputs as Record<string, TensorInfo | undefined>;
    const { relu, epsilon } = attrs as unknown as { relu: boolean; epsilon: number };
    const be = backend as unknown as WasmBackend;
    const [M, C] = rowsChannels(x!);
    sameShape(res, x!, 'residual');
    const y = be.makeOutput([...x!.shape], 'float32');
    const mean = be.makeOutput([C], 'float32');
    const variance = be.makeOutput([C], 'float32');
    const off = (t: TensorInfo) => be.getMemoryOffset(t.dataId);
    const offsets = Float64Array.of(
      off(x!),
      off(gamma!),
      off(beta!),
      off(y),
      off(mean),
      off(variance),
      ...(res ? [off(res)] : []),
    );
    a.batchNorm(0, be.wasm.HEAPU8.buffer as ArrayBuffer, offsets, M, C, relu, epsilon);
    return [y, mean, variance];
  };
}
