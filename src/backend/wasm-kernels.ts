/**
 * Convolution gradient kernels for the tfjs `wasm` backend.
 *
 * The wasm backend has no `Conv2DBackpropFilter` (so a CNN cannot train on it), and its
 * `Conv2DBackpropInput` is a naive loop about ten times slower than its forward convolution.
 * Both gradients are convolutions in disguise, so we express them as the backend's own fast
 * (XNNPACK) `Conv2D` over rearranged tensors:
 *
 * - filter gradient: dW[kh, kw, ci, co] = sum_{b, i, j} x[b, i*s + kh - pt, j*s + kw - pl, ci] dy[b, i, j, co]
 *   is a stride-1 convolution of x^T [ci, H, W, b] with the "filter" dy^T [oh, ow, b, co],
 *   dilated by the forward stride s, giving [ci, kh, kw, co] (then transposed).
 * - input gradient: a stride-1 convolution of the zero-inserted dy with the spatially flipped,
 *   in/out-swapped filter (the textbook transposed convolution).
 *
 * - matrix products with transposed operands: an explicit transpose, then the plain product
 *   (see batchMatMulExplicitTranspose).
 *
 * Kernels run below the engine, so they call other kernels' functions directly and free their
 * intermediates themselves.
 */
import {
  BatchMatMul,
  type BatchMatMulAttrs,
  backend_util,
  Conv2D,
  Conv2DBackpropFilter,
  type Conv2DBackpropFilterAttrs,
  type Conv2DBackpropFilterInputs,
  Conv2DBackpropInput,
  type Conv2DBackpropInputAttrs,
  type Conv2DBackpropInputInputs,
  getKernel,
  type KernelConfig,
  type KernelFunc,
  type NamedAttrMap,
  type NamedTensorInfoMap,
  PadV2,
  Reshape,
  Reverse,
  registerKernel,
  Slice,
  type TensorInfo,
  Transpose,
  unregisterKernel,
} from '@tensorflow/tfjs-core';

type Backend = Parameters<KernelFunc>[0]['backend'] & { disposeData(dataId: object): boolean };

/** Runs kernels of one backend, remembering every intermediate so it can be freed at once. */
class KernelScope {
  private readonly temps: TensorInfo[] = [];
  constructor(
    private readonly backend: Backend,
    private readonly backendName: string,
  ) {}

  run(name: string, inputs: NamedTensorInfoMap, attrs: object, keep = false): TensorInfo {
    const kernel = getKernel(name, this.backendName);
    if (kernel === undefined) throw new Error(`kernel ${name} is not registered for ${this.backendName}`);
    const out = kernel.kernelFunc({ inputs, backend: this.backend, attrs: attrs as NamedAttrMap });
    const info = Array.isArray(out) ? out[0]! : out;
    if (!keep) this.temps.push(info);
    return info;
  }

  dispose(): void {
    for (const t of this.temps) this.backend.disposeData(t.dataId);
    this.temps.length = 0;
  }
}

function assertChannelsLast(dataFormat: string, kernel: string): void {
  if (dataFormat !== 'NHWC') {
    throw new Error(`${kernel} on wasm supports dataFormat NHWC only, got ${dataFormat}`);
  }
}

/** dW for Conv2D: see the module comment. x [b, H, W, ci], dy [b, oh, ow, co] -> [kh, kw, ci, co]. */
export function conv2dBackpropFilter(backendName: string): KernelFunc {
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
    const scope = new KernelScope(backend as Backend, backendName);
    try {
      const xT = scope.run(Transpose, { x }, { perm: [3, 1, 2, 0] }); // [ci, H, W, b]
      const dyT = scope.run(Transpose, { x: dy }, { perm: [1, 2, 0, 3] }); // [oh, ow, b, co]
      const g = scope.run(
        Conv2D,
        { x: xT, filter: dyT },
        {
          strides: 1,
          pad: [
            [0, 0],
            [top, bottom],
            [left, right],
            [0, 0],
          ],
          dataFormat: 'NHWC',
          dilations: [sh, sw],
          dimRoundingMode: undefined,
        },
      ); // [ci, >= kh, >= kw, co]
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

/** dx for Conv2D: see the module comment. dy [b, oh, ow, co], filter [kh, kw, ci, co] -> [b, H, W, ci]. */
export function conv2dBackpropInput(backendName: string, fallback: KernelFunc | undefined): KernelFunc {
  return (args) => {
    const { inputs, backend, attrs } = args;
    const { dy, filter } = inputs as unknown as Required<{
      [K in keyof Conv2DBackpropInputInputs]: TensorInfo;
    }>;
    const { strides, pad, dataFormat, dimRoundingMode, inputShape } =
      attrs as unknown as Conv2DBackpropInputAttrs;
    assertChannelsLast(dataFormat, Conv2DBackpropInput);
    const info = backend_util.computeConv2DInfo(
      inputShape,
      filter.shape as [number, number, number, number],
      strides,
      1,
      pad,
      dimRoundingMode,
    );
    const {
      filterHeight: kh,
      filterWidth: kw,
      strideHeight: sh,
      strideWidth: sw,
      outHeight: oh,
      outWidth: ow,
    } = info;
    const [b, H, W] = inputShape;
    const co = info.outChannels;
    // Zero-inserted dy has (oh - 1) * s + 1 rows; pad it so a valid kh x kw conv gives H rows.
    const padTop = kh - 1 - info.padInfo.top;
    const padLeft = kw - 1 - info.padInfo.left;
    const padBottom = H + kh - 1 - ((oh - 1) * sh + 1) - padTop;
    const padRight = W + kw - 1 - ((ow - 1) * sw + 1) - padLeft;
    if (padTop < 0 || padLeft < 0 || padBottom < 0 || padRight < 0) {
      // Padding wider than the kernel: rare, not worth a special path.
      if (fallback === undefined) throw new Error('Conv2DBackpropInput: unsupported padding on wasm');
      return fallback(args);
    }
    const scope = new KernelScope(backend as Backend, backendName);
    try {
      let z: TensorInfo = dy as TensorInfo;
      let extraH = 0;
      let extraW = 0;
      if (sh > 1 || sw > 1) {
        // [b, oh, 1, ow, 1, co] padded to [b, oh, sh, ow, sw, co]: s - 1 zeros after each element.
        const r = scope.run(Reshape, { x: dy }, { shape: [b, oh, 1, ow, 1, co] });
        const p = scope.run(
          PadV2,
          { x: r },
          {
            paddings: [
              [0, 0],
              [0, 0],
              [0, sh - 1],
              [0, 0],
              [0, sw - 1],
              [0, 0],
            ],
            constantValue: 0,
          },
        );
        z = scope.run(Reshape, { x: p }, { shape: [b, oh * sh, ow * sw, co] });
        // The trailing s - 1 zero rows/cols already stand for part of the bottom/right padding.
        extraH = sh - 1;
        extraW = sw - 1;
        if (extraH > padBottom || extraW > padRight) {
          z = scope.run(
            Slice,
            { x: z },
            {
              begin: [0, 0, 0, 0],
              size: [-1, (oh - 1) * sh + 1 + padBottom, (ow - 1) * sw + 1 + padRight, -1],
            },
          );
          extraH = Math.min(extraH, padBottom);
          extraW = Math.min(extraW, padRight);
        }
      }
      const flipped = scope.run(Reverse, { x: filter }, { dims: [0, 1] });
      const fT = scope.run(Transpose, { x: flipped }, { perm: [0, 1, 3, 2] }); // [kh, kw, co, ci]
      return scope.run(
        Conv2D,
        { x: z, filter: fT },
        {
          strides: 1,
          pad: [
            [0, 0],
            [padTop, padBottom - extraH],
            [padLeft, padRight - extraW],
            [0, 0],
          ],
          dataFormat: 'NHWC',
          dilations: 1,
          dimRoundingMode: undefined,
        },
        true,
      );
    } finally {
      scope.dispose();
    }
  };
}

/**
 * BatchMatMul with transposed operands: the wasm kernel's transposeA / transposeB path runs at
 * 1-2 GFLOP/s against about 25 for the plain product (measured on [128, 512] x [512, 1000]), and
 * every matMul gradient uses it. An explicit Transpose then the plain kernel is 10-25x faster.
 */
export function batchMatMulExplicitTranspose(backendName: string, plain: KernelFunc): KernelFunc {
  return (args) => {
    const { inputs, backend, attrs } = args;
    const { a, b } = inputs as { a: TensorInfo; b: TensorInfo };
    const { transposeA, transposeB } = attrs as unknown as BatchMatMulAttrs;
    if (!transposeA && !transposeB) return plain(args);
    const scope = new KernelScope(backend as Backend, backendName);
    const swapLast = (t: TensorInfo) => {
      const perm = t.shape.map((_, i) => i);
      const r = perm.length;
      perm[r - 1] = r - 2;
      perm[r - 2] = r - 1;
      return scope.run(Transpose, { x: t }, { perm });
    };
    try {
      const a2 = transposeA ? swapLast(a) : a;
      const b2 = transposeB ? swapLast(b) : b;
      return plain({
        inputs: { a: a2, b: b2 },
        backend,
        attrs: { ...attrs, transposeA: false, transposeB: false },
      });
    } finally {
      scope.dispose();
    }
  };
}

let installed = false;

/**
 * Registers the convolution gradient kernels on the `wasm` backend (idempotent). Call after the
 * wasm backend module is imported; done by `initBackend`.
 */
export function installWasmTrainingKernels(backendName = 'wasm'): void {
  if (installed) return;
  installed = true;
  const original = getKernel(Conv2DBackpropInput, backendName);
  const originalFunc = original?.kernelFunc;
  if (original !== undefined) unregisterKernel(Conv2DBackpropInput, backendName);
  const input: KernelConfig = {
    kernelName: Conv2DBackpropInput,
    backendName,
    kernelFunc: conv2dBackpropInput(backendName, originalFunc),
    ...(original?.setupFunc ? { setupFunc: original.setupFunc } : {}),
  };
  registerKernel(input);
  const mm = getKernel(BatchMatMul, backendName);
  if (mm !== undefined) {
    unregisterKernel(BatchMatMul, backendName);
    registerKernel({
      kernelName: BatchMatMul,
      backendName,
      kernelFunc: batchMatMulExplicitTranspose(backendName, mm.kernelFunc),
      ...(mm.setupFunc ? { setupFunc: mm.setupFunc } : {}),
    });
  }
  if (getKernel(Conv2DBackpropFilter, backendName) === undefined) {
    registerKernel({
      kernelName: Conv2DBackpropFilter,
      backendName,
      kernelFunc: conv2dBackpropFilter(backendName),
    });
  }
}
