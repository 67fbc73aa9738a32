/**
 * Conv2DBackpropFilter for the wasm backend, which has none (so a CNN could not train on it).
 * The filter gradient is a convolution in disguise, so it runs as the backend's own fast
 * (XNNPACK) Conv2D over rearranged tensors:
 *
 *   dW[kh, kw, ci, co] = sum_{b, i, j} x[b, i*s + kh - pt, j*s + kw - pl, ci] dy[b, i, j, co]
 *
 * is a stride-1 convolution of x^T [ci, H, W, b] with the "filter" dy^T [oh, ow, b, co],
 * dilated by the forward stride s, giving [ci, kh, kw, co] (then transposed).
 */
import {
  BatchMatMul,
  backend_util,
  Concat,
  Conv2DBackpropFilter,
  type Conv2DBackpropFilterAttrs,
  type Conv2DBackpropFilterInputs,
  type KernelConfig,
  type KernelFunc,
  type NamedTensorInfoMap,
  PadV2,
  Reshape,
  Slice,
  type TensorInfo,
  Transpose,
} from '@tensorflow/tfjs-core';
import { assertChannelsLast, KernelScope, type WasmKernelBackend } from './compose.ts';

export function conv2DBackpropFilterConfig(backendName: string): KernelConfig {
  return { kernelName: Conv2DBackpropFilter, backendName, kernelFunc: conv2DBackpropFilter(backendName) };
}

/** dW for Conv2D: see the module comment. x [b, H, W, ci], dy [b, oh, ow, co] -> [kh, kw, ci, co]. */
function conv2DBackpropFilter(backendName: string): KernelFunc {
  return ({ inputs, backend, attrs }) => {
    const { x, dy } = inputs as unknown as Required<{ [K in keyof Conv2DBackpropFilterInputs]: TensorInfo }>;
    const { strides, pad, dataFormat, dimRoundingMode, filterShape } =
      attrs as unknown as Conv2DBackpropFilterAttrs;
    assertChannelsLast(dataFormat, Conv2DBackpropFilter);
    const info = backend_util.computeConv2DInfo(
      x.shape as [number, number, number, number],
      filterShape,
      strides,
      1,
      pad,
      dimRoundingMode,
    );
    const { filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw } = info;
    const { top, bottom, left, right } = info.padInfo;
    const scope = new KernelScope(backend as WasmKernelBackend, backendName);
    try {
      const ci = x.shape[3]!;
      if (ci <= FEW_CHANNELS && sh === 1 && sw === 1) return tapFilterGrad(scope, x, dy, info);
      const xT = scope.run(Transpose, { x }, { perm: [3, 1, 2, 0] }); // [ci, H, W, b]
      const dyT = scope.run(Transpose, { x: dy }, { perm: [1, 2, 0, 3] }); // [oh, ow, b, co]
      const g = scope.conv(xT, dyT, [top, bottom], [left, right], [sh, sw]); // [ci, >= kh, >= kw, co]
      let gk = g;
      if (g.shape[1] !== kh || g.shape[2] !== kw) {
        gk = scope.run(Slice, { x: g }, { begin: [0, 0, 0, 0], size: [-1, kh, kw, -1] });
      }
      return scope.run(Transpose, { x: gk }, { perm: [1, 2, 0, 3] }, true); // [kh, kw, ci, co]
    } finally {
      scope.dispose();
    }
  };
}

/**
 * Input channels up to which the filter gradient of a stride-1 convolution is one matrix
 * product over the stacked, shifted inputs (below).
 */
const FEW_CHANNELS = 4;

/**
 * Filter gradient for few input channels (the first layer: 1 or 3): the kh*kw shifted copies of
 * x stacked into taps [kh*kw*ci, b*oh*ow], times dy [b*oh*ow, co]. The convolution form above
 * has only kh*kw*ci output rows to spread over a 28x28 "filter", which the wasm convolution runs
 * slowly; this form is faster for the first layer and slower from 16 input channels on
 * (docs/benchmarks.md).
 */
function tapFilterGrad(
  scope: KernelScope,
  x: TensorInfo,
  dy: TensorInfo,
  info: backend_util.Conv2DInfo,
): TensorInfo {
  const { filterHeight: kh, filterWidth: kw, outHeight: oh, outWidth: ow, outChannels: co } = info;
  const [b, , , ci] = x.shape as [number, number, number, number];
  const { top, bottom, left, right } = info.padInfo;
  const m = b * oh * ow;
  const xT = scope.run(Transpose, { x }, { perm: [3, 0, 1, 2] }); // [ci, b, H, W]
  const xp = scope.run(
    PadV2,
    { x: xT },
    {
      paddings: [
        [0, 0],
        [0, 0],
        [top, bottom],
        [left, right],
      ],
      constantValue: 0,
    },
  ); // [ci, b, H + pt + pb, W + pl + pr]
  const taps: TensorInfo[] = [];
  for (let i = 0; i < kh; i++)
    for (let j = 0; j < kw; j++) {
      const t = scope.run(Slice, { x: xp }, { begin: [0, 0, i, j], size: [ci, b, oh, ow] });
      taps.push(scope.run(Reshape, { x: t }, { shape: [ci, m] }));
    }
  const a = scope.run(Concat, taps as unknown as NamedTensorInfoMap, { axis: 0 }); // [kh*kw*ci, m]
  const a3 = scope.run(Reshape, { x: a }, { shape: [1, kh * kw * ci, m] });
  const b3 = scope.run(Reshape, { x: dy }, { shape: [1, m, co] });
  const g = scope.run(BatchMatMul, { a: a3, b: b3 }, { transposeA: false, transposeB: false }); // [1, kh*kw*ci, co]
  return scope.run(Reshape, { x: g }, { shape: [kh, kw, ci, co] }, true);
}
