/** The native training-mode batch norm (+ residual) (+ ReLU): BATCH_NORM_KERNEL (names.ts). */
import type { KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import type { NativeAddon } from '../../native-addon.ts';
import { rowsChannels, sameShape, type WasmBackend } from './heap.ts';

export function nativeBatchNorm(a: NativeAddon): KernelFunc {
  return ({ inputs, backend, attrs }) => {
    const { x, gamma, beta, res, runningMean, runningVar } = inputs as Record<string, TensorInfo | undefined>;
    const { relu, epsilon, momentum, packed } = attrs as unknown as {
      relu: boolean;
      epsilon: number;
      momentum?: number;
      packed?: boolean;
    };
    const be = backend as unknown as WasmBackend;
    const [M, C] = rowsChannels(x!);
    sameShape(res, x!, 'residual');
    const y = be.makeOutput([...x!.shape], 'float32');
    const mean = be.makeOutput([C], 'float32');
    const variance = be.makeOutput([C], 'float32');
    const off = (t: TensorInfo) => be.getMemoryOffset(t.dataId);
    // Read at each call, after every makeOutput: an allocation can grow (replace) the heap.
    const heap = () => be.wasm.HEAPU8.buffer as ArrayBuffer;
    if (runningMean === undefined || runningVar === undefined) {
      const offsets = Float64Array.of(
        off(x!),
        off(gamma!),
        off(beta!),
        off(y),
        off(mean),
        off(variance),
        ...(res ? [off(res)] : []),
      );
      a.batchNorm(0, heap(), offsets, M, C, relu, epsilon);
      return [y, mean, variance];
    }
    // A training step's: also invstd, the affine applied (the backward pass's ReLU mask) and
    // the running statistics moved by `momentum`, in the same call.
    if (momentum === undefined) throw new Error('batch norm: running statistics need a momentum');
    for (const [name, t] of [
      ['running mean', runningMean],
      ['running variance', runningVar],
    ] as const)
      if (t.shape.length !== 1 || t.shape[0] !== C)
        throw new Error(`batch norm: the ${name} [${t.shape}] must be [${C}]`);
    if (packed) {
      // One [5, C] output (rows mean, biased variance, invstd, scale, shift) and the running
      // statistics moved in place (the caller makes sure no other tensor shares their data):
      // two tensors a call instead of eight, no assigns.
      const stats = be.makeOutput([5, C], 'float32');
      const s = off(stats);
      const offsets = Float64Array.of(
        off(x!),
        off(gamma!),
        off(beta!),
        off(runningMean),
        off(runningVar),
        off(y),
        s,
        s + 4 * C,
        s + 8 * C,
        s + 12 * C,
        s + 16 * C,
        off(runningMean),
        off(runningVar),
        ...(res ? [off(res)] : []),
      );
      a.batchNormTrain(0, heap(), offsets, M, C, relu, epsilon, momentum);
      return [y, stats];
    }
    const extra = [C, C, C, C, C].map((n) => be.makeOutput([n], 'float32'));
    const [invstd, scale, shift, rmOut, rvOut] = extra as [
      TensorInfo,
      TensorInfo,
      TensorInfo,
      TensorInfo,
      TensorInfo,
    ];
    const offsets = Float64Array.of(
      off(x!),
      off(gamma!),
      off(beta!),
      off(runningMean),
      off(runningVar),
      off(y),
      off(mean),
      off(variance),
      off(invstd),
      off(scale),
      off(shift),
      off(rmOut),
      off(rvOut),
      ...(res ? [off(res)] : []),
    );
    a.batchNormTrain(0, heap(), offsets, M, C, relu, epsilon, momentum);
    return [y, mean, variance, invstd, scale, shift, rmOut, rvOut];
  };
}
