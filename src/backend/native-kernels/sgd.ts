/** The native fused SGD-momentum update: SGD_KERNEL (names.ts). */
import type { KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import type { NativeAddon } from '../../native-addon.ts';
import type { WasmBackend } from './heap.ts';

export function nativeSgd(a: NativeAddon): KernelFunc {
  return ({ inputs, backend, attrs }) => {
    const { p, g, buf } = inputs as Record<string, TensorInfo>;
    const { lr, momentum, weightDecay } = attrs as unknown as {
      lr: number;
      momentum: number;
      weightDecay: number;
    };
    for (const [name, t] of [
      ['gradient', g],
      ['momentum buffer', buf],
    ] as const) {
      if (t!.shape.length !== p!.shape.length || t!.shape.some((d, i) => d !== p!.shape[i]))
        throw new Error(`sgd: the ${name} [${t!.shape}] must have the parameter's shape [${p!.shape}]`);
    }
    const be = backend as unknown as WasmBackend;
    const pOut = be.makeOutput([...p!.shape], 'float32');
    const bufOut = be.makeOutput([...p!.shape], 'float32');
    const n = p!.shape.reduce((q, d) => q * d, 1);
    const off = (t: TensorInfo) => be.getMemoryOffset(t.dataId);
    if (n > 0)
      a.sgd(
        be.wasm.HEAPU8.buffer as ArrayBuffer,
        Float64Array.of(off(p!), off(g!), off(buf!), off(pOut), off(bufOut)),
        n,
        lr,
        momentum,
        weightDecay,
      );
    return [pOut, bufOut];
  };
}
