/** The gradient of the native batch norm (+ residual) (+ ReLU): BATCH_NORM_GRAD_KERNEL (names.ts). */
import type { KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import type { NativeAddon } from '../../native-addon.ts';
import { rowsChannels, type WasmBackend } from './heap.ts';

/** A row of a packed [5, C] statistics tensor. */
type Row = TensorInfo & { row?: number };

export function nativeBatchNormGrad(a: NativeAddon): KernelFunc {
  return ({ inputs, backend, attrs }) => {
    const { dy, x, y, gamma, stats } = inputs as Record<string, TensorInfo | undefined>;
    let { mean, invstd, scale, shift } = inputs as Record<string, TensorInfo | undefined>;
    const { relu, residual, fromX } = attrs as unknown as {
      relu: boolean;
      residual?: boolean;
      fromX?: boolean;
    };
    const be = backend as unknown as WasmBackend;
    const [M, C] = rowsChannels(x!);
    const dx = be.makeOutput([...x!.shape], 'float32');
    const dgamma = be.makeOutput([C], 'float32');
    const dbeta = be.makeOutput([C], 'float32');
    const off = (t: TensorInfo) => be.getMemoryOffset(t.dataId) + ((t as Row).row ?? 0) * 4 * C;
    if (stats !== undefined) {
      // The forward's packed [5, C] statistics: rows mean, variance, invstd, scale, shift.
      const row = (r: number): Row => ({ ...stats, row: r });
      [mean, invstd] = [row(0), row(2)];
      if (fromX) [scale, shift] = [row(3), row(4)];
    }
    // Read at each call, after every makeOutput: an allocation can grow (replace) the heap.
    const heap = () => be.wasm.HEAPU8.buffer as ArrayBuffer;
    if (scale !== undefined && shift !== undefined) {
      // ReLU without a residual: its mask recomputed from x and the forward's affine (no y).
      if (!relu || residual)
        throw new Error('batch norm gradient: the mask from x is for ReLU without a residual');
      const offsets = Float64Array.of(
        off(dy!),
        off(x!),
        off(mean!),
        off(invstd!),
        off(gamma!),
        off(scale),
        off(shift),
        off(dx),
        off(dgamma),
        off(dbeta),
      );
      a.batchNormTrain(1, heap(), offsets, M, C, true, 0, 0);
      return [dx, dgamma, dbeta];
    }
    const dres = residual ? be.makeOutput([...x!.shape], 'float32') : null;
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
    a.batchNorm(1, heap(), offsets, M, C, relu, 0);
    return dres ? [dx, dgamma, dbeta, dres] : [dx, dgamma, dbeta];
  };
}
