/** What the native kernels share: the wasm heap they read and write in place, and shape checks. */
import type { TensorInfo } from '@tensorflow/tfjs-core';

/** The slice of the wasm backend the kernels need. */
export interface WasmBackend {
  wasm: { HEAPU8: Uint8Array };
  getMemoryOffset(dataId: object): number;
  makeOutput(shape: number[], dtype: 'float32'): TensorInfo;
}

/** Rows and channels of a channels-last tensor. */
export function rowsChannels(t: TensorInfo): [number, number] {
  const C = t.shape[t.shape.length - 1]!;
  return [t.shape.reduce((p, d) => p * d, 1) / C, C];
}

/** Throws unless `t` (when given) has the shape of `x`: the addon reads [M, C] from both. */
export function sameShape(
  t: TensorInfo | undefined,
  x: TensorInfo,
  what: string,
  whose = "the input's",
): void {
  if (t !== undefined && (t.shape.length !== x.shape.length || t.shape.some((d, i) => d !== x.shape[i])))
    throw new Error(`batch norm: the ${what} [${t.shape}] must have ${whose} shape [${x.shape}]`);
}
