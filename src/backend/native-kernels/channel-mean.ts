/** The native global average pooling: CHANNEL_MEAN_KERNEL (names.ts). */
import type { KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import type { NativeAddon } from '../../native-addon.ts';
import type { WasmBackend } from './heap.ts';

export function nativeChannelMean(a: NativeAddon): KernelFunc {
  return ({ inputs, backend }) => {
    const { x } = inputs as Record<string, TensorInfo>;
    if (x!.shape.length !== 4)
      throw new Error(`channel mean: x must be [batch, height, width, channels], got [${x!.shape}]`);
    const [B, H, W, C] = x!.shape as [number, number, number, number];
    const be = backend as unknown as WasmBackend;
    const y = be.makeOutput([B, C], 'float32');
    if (B * H * W * C > 0)
      a.channelMean(
        be.wasm.HEAPU8.buffer as ArrayBuffer,
        be.getMemoryOffset(x!.dataId),
        be.getMemoryOffset(y.dataId),
        B,
        H * W,
        C,
      );
    return y;
  };
}
