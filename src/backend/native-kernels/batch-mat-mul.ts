/** The native matrix product (tfjs BatchMatMul without transposes). */
import { backend_util, type KernelFunc, type TensorInfo } from '@tensorflow/tfjs-core';
import type { NativeAddon } from '../../native-addon.ts';
import type { WasmBackend } from './heap.ts';

/**
 * BatchMatMul without transposes (the wrapper in kernels/BatchMatMul.ts transposes
 * first): float32, batch dimensions equal or one side's of size 1; anything else goes to
 * `fallback`.
 */
export function nativeBatchMatMul(a: NativeAddon, fallback: KernelFunc): KernelFunc {
  return (args) => {
    const { a: x, b: y } = args.inputs as { a: TensorInfo; b: TensorInfo };
    const { transposeA, transposeB } = args.attrs as unknown as { transposeA: boolean; transposeB: boolean };
    if (transposeA || transposeB || x.dtype !== 'float32' || y.dtype !== 'float32') return fallback(args);
    const ra = x.shape.length;
    const rb = y.shape.length;
    const [M, K] = x.shape.slice(ra - 2) as [number, number];
    const [K2, N] = y.shape.slice(rb - 2) as [number, number];
    const batchA = x.shape.slice(0, ra - 2);
    const batchB = y.shape.slice(0, rb - 2);
    const prod = (s: number[]) => s.reduce((p, d) => p * d, 1);
    const ba = prod(batchA);
    const bb = prod(batchB);
    const same = batchA.length === batchB.length && batchA.every((d, i) => d === batchB[i]);
    if (K !== K2 || M === 0 || N === 0 || ba === 0 || bb === 0 || (!same && ba !== 1 && bb !== 1)) {
      return fallback(args); // (the fallback reports shape errors)
    }
    const outBatch = backend_util.assertAndGetBroadcastShape(batchA, batchB);
    const be = args.backend as unknown as WasmBackend;
    const out = be.makeOutput([...outBatch, M, N], 'float32');
    a.matmul(
      be.wasm.HEAPU8.buffer as ArrayBuffer,
      be.getMemoryOffset(x.dataId),
      be.getMemoryOffset(y.dataId),
      be.getMemoryOffset(out.dataId),
      Int32Array.of(ba, bb, M, K, N),
    );
    return out;
  };
}
