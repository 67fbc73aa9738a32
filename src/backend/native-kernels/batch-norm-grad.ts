/** The gradient of the native batch norm (+ residual) (+ ReLU): BATCH_NORM_GRAD_KERNEL (names.ts). */
import type { KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import type { NativeAddon } from '../../native-addon.ts';
import { rowsChannels, type WasmBackend } from './heap.ts';

export function nativeBatchNormGrad(a: NativeAddon): KernelFunc {
  return ({ inputs, backend, attrs }) => {
    const { dy, x, y, mean, invstd, gamma } = inputs as Record<string, TensorInfo>;
    const { relu, residual } = attrs as unknown as { relu: boolean; residual?: boolean };
    const be = backend as unknown as WasmBackend;
    const [M, C] = rowsChannels(x!);
    const dx = be.makeOutput([...x!.shape], 'float32');
    const dgamma = be.makeOutput([C], 'float32');
    const dbeta = be.makeOutput([C], 'float32');
    const dres = residual ? be.makeOutput([...x!.shape], 'float32') : null;
    const off = (t: TensorInfo) => be.getMemoryOffset(t.dataId);
    const offsets = Float64Array.of(
      off(dy!),
      off(x!),
      off(y!),
      off(mean!),
      off(invstd!),
      off(gamma!),
      off(dx),
      off(dgamma),
      off(dbeta),
      ...(dres ? [off(dres)] : []),
    );
    a.batchNorm(1, be.wasm.HEAPU8.buffer as ArrayBuffer, offsets, M, C, relu, 0);
    return dres ? [dx, dgamma, dbeta, dres] : [dx, dgamma, dbeta];
  };
}
