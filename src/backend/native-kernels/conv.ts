/**
 * What the three native convolution kernels (conv2d.ts, conv2d-backprop-input.ts,
 * conv2d-backprop-filter.ts) share: the addon's shape vector, which passes run in bf16, and the
 * kernel body that calls the addon or hands the call to the wasm set's kernel.
 */
import type { backend_util, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import type { NativeAddon } from '../../native-addon.ts';
import type { WasmBackend } from './heap.ts';

type Shape13 = [
  number,
  number,
  number,
  number,
  number,
  number,
  number,
  number,
  number,
  number,
  number,
  number,
  number,
];

export type Shape4 = [number, number, number, number];

/** [b, H, W, ci, kh, kw, co, sh, sw, pt, pl, oh, ow], or null where the native kernels do not apply. */
export function nativeShape(
  info: backend_util.Conv2DInfo,
  dataFormat: string,
  dtypes: string[],
): Int32Array | null {
  if (dataFormat !== 'NHWC' || dtypes.some((d) => d !== 'float32')) return null;
  if (info.dilationHeight !== 1 || info.dilationWidth !== 1) return null;
  const s: Shape13 = [
    info.batchSize,
    info.inHeight,
    info.inWidth,
    info.inChannels,
    info.filterHeight,
    info.filterWidth,
    info.outChannels,
    info.strideHeight,
    info.strideWidth,
    info.padInfo.top,
    info.padInfo.left,
    info.outHeight,
    info.outWidth,
  ];
  if (info.outHeight < 0 || info.outWidth < 0) {
    // The wasm backend's own kernel would write outside its output here.
    throw new Error(
      `convolution: the ${info.filterHeight}x${info.filterWidth} filter is larger than the padded ` +
        `${info.inHeight}x${info.inWidth} input`,
    );
  }
  if (info.padInfo.top >= info.filterHeight || info.padInfo.left >= info.filterWidth) return null;
  return Int32Array.from(s);
}

/** What one convolution kernel call is: its two inputs, the geometry, the output's shape. */
export interface ConvCall {
  first: TensorInfo;
  second: TensorInfo;
  info: backend_util.Conv2DInfo;
  dataFormat: string;
  outShape: number[];
}

/**
 * Whether the bf16 kernel of a convolution pass beats the fp32 one, as bench/bf16-conv.ts measured
 * it on the CIFAR ResNet shapes (figures: docs/benchmarks.md, bf16 sections): the 3x3 forward with
 * at least 16 input channels, the 3x3 stride-1 input gradient, and the 3x3 filter gradient with
 * 64 input channels or more. The rest stays fp32: the stem (3 channels), the 1x1 shortcuts and
 * the stride-2 input gradient, where rounding the inputs to bf16 costs about what the products
 * save; and the filter gradient below 64 channels, which is 1.4-1.7x faster in bf16 (the
 * pair-plane kernel) but took the demo's Joint 0.86 points below fp32 over 5 seeds (more than
 * one fp32 standard deviation; docs/benchmarks.md 2026-12-04 21:10), so it waits for more seeds.
 */
export function bf16Wins(kind: 0 | 1 | 2, shape: Int32Array): boolean {
  const [, , , ci, kh, kw, , sh, sw] = shape as unknown as Shape13;
  if (kh !== 3 || kw !== 3 || ci < 16) return false;
  if (kind === 0) return true;
  if (kind === 2) return ci >= 64 && ci % 16 === 0;
  return sh === 1 && sw === 1;
}

/**
 * A native convolution kernel (kind 0 forward, 1 input gradient, 2 filter gradient): `parse`
 * reads the call's inputs and attributes; what the addon does not cover goes to `fallback`.
 * With `bf16`, the passes bf16Wins names run the bf16 kernels (inputs rounded to bf16, fp32 sums).
 */
export function nativeConvKernel(
  a: NativeAddon,
  kind: 0 | 1 | 2,
  fallback: KernelFunc,
  parse: (args: Parameters<KernelFunc>[0]) => ConvCall,
  bf16 = false,
): KernelFunc {
  return (args) => {
    const { first, second, info, dataFormat, outShape } = parse(args);
    const shape = nativeShape(info, dataFormat, [first.dtype, second.dtype]);
    if (shape === null) return fallback(args);
    const backend = args.backend as unknown as WasmBackend;
    const out = backend.makeOutput(outShape, 'float32');
    if (shape.some((v, i) => i !== 9 && i !== 10 && v === 0)) {
      // An empty input or output (a filter wider than a small 'valid' input): the sums are empty.
      // Handled here because the wasm backend's own Conv2D corrupts its heap on an empty output.
      const start = backend.getMemoryOffset(out.dataId);
      backend.wasm.HEAPU8.fill(0, start, start + outShape.reduce((p, d) => p * d, 4));
      return out;
    }
    // The heap's buffer can change when makeOutput grows memory: read it afterwards.
    const heap = backend.wasm.HEAPU8.buffer as ArrayBuffer;
    if (bf16 && bf16Wins(kind, shape)) {
      const view = (t: TensorInfo) =>
        new Float32Array(
          heap,
          backend.getMemoryOffset(t.dataId),
          t.shape.reduce((p, d) => p * d, 1),
        );
      a.conv2dBf16(view(first), view(second), view(out), shape, kind);
      return out;
    }
    a.conv2d(
      kind,
      heap,
      backend.getMemoryOffset(first.dataId),
      backend.getMemoryOffset(second.dataId),
      backend.getMemoryOffset(out.dataId),
      shape,
    );
    return out;
  };
}
