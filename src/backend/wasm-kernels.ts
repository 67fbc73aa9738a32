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
 * intermediates themselves. Where the native addon runs (native-kernels.ts), its kernels take
 * the place of these and fall back to them for what they do not cover (dilation, NCHW).
 */
import {
  BatchMatMul,
  type BatchMatMulAttrs,
  backend_util,
  Concat,
  Conv2D,
  Conv2DBackpropFilter,
  type Conv2DBackpropFilterAttrs,
  type Conv2DBackpropFilterInputs,
  Conv2DBackpropInput,
  type Conv2DBackpropInputAttrs,
  type Conv2DBackpropInputInputs,
  getKernel,
  Identity,
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
import {
  BATCH_NORM_GRAD_KERNEL,
  BATCH_NORM_KERNEL,
  loadNativeAddon,
  nativeBatchMatMul,
  nativeBatchNorm,
  nativeBatchNormGrad,
  nativeConv2D,
  nativeConv2DBackpropFilter,
  nativeConv2DBackpropInput,
  nativeStatus,
} from './native-kernels.ts';

type Backend = Parameters<KernelFunc>[0]['backend'] & {
  disposeData(dataId: object): boolean;
  incRef(dataId: object): void;
  readSync(dataId: object): ArrayLike<number>;
  makeOutput(shape: number[], dtype: 'float32', memoryOffset?: number, values?: Float32Array): TensorInfo;
};

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

  /** A stride-1 NHWC convolution with explicit [top, bottom] / [left, right] padding. */
  conv(
    x: TensorInfo,
    filter: TensorInfo,
    rows: [number, number],
    cols: [number, number],
    dilations: number | [number, number] = 1,
    keep = false,
  ): TensorInfo {
    const attrs = {
      strides: 1,
      pad: [[0, 0], rows, cols, [0, 0]],
      dataFormat: 'NHWC',
      dilations,
      dimRoundingMode: undefined,
    };
    return this.run(Conv2D, { x, filter }, attrs, keep);
  }

  /** A tensor made directly on the backend, to be freed with the others. */
  adopt(t: TensorInfo): TensorInfo {
    this.temps.push(t);
    return t;
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
 * has only kh*kw*ci output rows to spread over a 28x28 "filter" and ran at about 2 GFLOP/s here;
 * this was 7x faster on [128, 28, 28, 1] -> 16 channels, and slower from 16 channels on.
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
    if (sh === sw && sh > 1) {
      const out = polyphaseInput(
        backend as Backend,
        backendName,
        dy as TensorInfo,
        filter as TensorInfo,
        info,
        inputShape,
      );
      if (out !== null) return out;
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
      return scope.conv(z, fT, [padTop, padBottom - extraH], [padLeft, padRight - extraW], 1, true);
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

/**
 * Strided input gradient without the inserted zeros (polyphase): output row y = s*u + r takes
 * the filter taps kh = r + pt - s*d from dy row u + d. All s*s phases come out of ONE stride-1
 * convolution whose output channels are the phases' sub-filters, and a transpose interleaves
 * them: a 3x3 / stride-2 gradient costs 16 instead of 36 multiply-adds per dy pixel and channel
 * pair. Returns null where the padding does not fit (the caller then inserts zeros).
 */
function polyphaseInput(
  backend: Backend,
  backendName: string,
  dy: TensorInfo,
  filter: TensorInfo,
  info: ReturnType<typeof backend_util.computeConv2DInfo>,
  inputShape: [number, number, number, number],
): TensorInfo | null {
  const s = info.strideHeight;
  const {
    filterHeight: k,
    filterWidth: kw,
    outHeight: oh,
    outWidth: ow,
    inChannels: ci,
    outChannels: co,
  } = info;
  const pt = info.padInfo.top;
  const pl = info.padInfo.left;
  const [, H, W] = inputShape;
  // Offsets d = (r + p - kh) / s over every phase r and tap kh.
  const span = (kk: number, p: number) => {
    let lo = Infinity;
    let hi = -Infinity;
    for (let r = 0; r < s; r++) {
      for (let t = 0; t < kk; t++) {
        if ((((r + p - t) % s) + s) % s !== 0) continue;
        const d = (r + p - t) / s;
        lo = Math.min(lo, d);
        hi = Math.max(hi, d);
      }
    }
    return { lo, hi };
  };
  const dh = span(k, pt);
  const dw = span(kw, pl);
  if (!Number.isFinite(dh.lo) || !Number.isFinite(dw.lo)) return null;
  const U = Math.ceil(H / s);
  const V = Math.ceil(W / s);
  const KH = dh.hi - dh.lo + 1;
  const KW = dw.hi - dw.lo + 1;
  const padTop = -dh.lo;
  const padLeft = -dw.lo;
  const padBottom = U - 1 + dh.hi - (oh - 1);
  const padRight = V - 1 + dw.hi - (ow - 1);
  if (padTop < 0 || padLeft < 0 || padBottom < 0 || padRight < 0) return null;
  // F[th, tw, o, (r * s + q) * ci + c] = w[kh, kw, c, o], kh = r + pt - s * (th + dh.lo).
  const w = backend.readSync(filter.dataId); // [k, kw, ci, co]
  const C4 = s * s * ci;
  const F = new Float32Array(KH * KW * co * C4);
  for (let th = 0; th < KH; th++) {
    for (let r = 0; r < s; r++) {
      const kh = r + pt - s * (th + dh.lo);
      if (kh < 0 || kh >= k) continue;
      for (let tw = 0; tw < KW; tw++) {
        for (let q = 0; q < s; q++) {
          const kx = q + pl - s * (tw + dw.lo);
          if (kx < 0 || kx >= kw) continue;
          for (let c = 0; c < ci; c++) {
            const src = ((kh * kw + kx) * ci + c) * co;
            const dst = (th * KW + tw) * co * C4 + (r * s + q) * ci + c;
            for (let o = 0; o < co; o++) F[dst + o * C4] = w[src + o]!;
          }
        }
      }
    }
  }
  const scope = new KernelScope(backend, backendName);
  try {
    const f = scope.adopt(backend.makeOutput([KH, KW, co, C4], 'float32', undefined, F));
    const phases = scope.conv(dy, f, [padTop, padBottom], [padLeft, padRight]); // [b, U, V, s*s*ci]
    // Interleave: [b, U, V, r, q, ci] -> [b, U, r, V, q, ci] -> [b, U*s, V*s, ci]. (wasm's
    // DepthToSpace does the same but measured several times slower than this transpose.)
    const b = inputShape[0];
    const split = scope.run(Reshape, { x: phases }, { shape: [b, U, V, s, s, ci] });
    const moved = scope.run(Transpose, { x: split }, { perm: [0, 1, 3, 2, 4, 5] });
    const full = scope.run(
      Reshape,
      { x: moved },
      { shape: [b, U * s, V * s, ci] },
      U * s === H && V * s === W,
    );
    if (U * s === H && V * s === W) return full; // [b, H, W, ci]
    return scope.run(Slice, { x: full }, { begin: [0, 0, 0, 0], size: [-1, H, W, -1] }, true);
  } finally {
    scope.dispose();
  }
}

/**
 * Identity without a copy: the output shares the input's memory (reference-counted), as on the
 * cpu and webgl backends. The wasm kernel copies, and tfjs runs Identity on every tensor a
 * gradient saves (every activation of a training step): 80 copies, about 7% of a ResNet-8 step.
 * Safe because no kernel writes into its inputs.
 */
const identityShared: KernelFunc = ({ inputs, backend }) => {
  const { x } = inputs as { x: TensorInfo };
  (backend as Backend).incRef(x.dataId);
  return { dataId: x.dataId, shape: [...x.shape], dtype: x.dtype };
};

let installed = false;
/** The two sets of training kernels and which one is registered now. */
let kernelSets: Record<TrainingKernels, KernelConfig[]> | null = null;
let active: TrainingKernels = 'wasm';

/**
 * `native`: the AVX2 addon (native-kernels.ts: convolutions, batch norm, matrix products);
 * `wasm`: XNNPACK and the compositions above.
 */
export type TrainingKernels = 'native' | 'wasm';

/**
 * Registers the training kernels on the `wasm` backend (idempotent): Identity without a copy,
 * the convolution gradients and BatchMatMul above, and the native kernels when the addon runs
 * here. Call after the wasm backend module is imported and before the backend starts (setup
 * functions run at start); done by `initBackend`.
 */
export function installWasmTrainingKernels(backendName = 'wasm'): void {
  if (installed) return;
  installed = true;
  if (getKernel(Identity, backendName) !== undefined) unregisterKernel(Identity, backendName);
  registerKernel({ kernelName: Identity, backendName, kernelFunc: identityShared });
  const mm = getKernel(BatchMatMul, backendName);
  if (mm === undefined) throw new Error(`the ${backendName} backend has no BatchMatMul kernel`);
  const conv = getKernel(Conv2D, backendName);
  const input = getKernel(Conv2DBackpropInput, backendName);
  if (conv === undefined) throw new Error(`the ${backendName} backend has no Conv2D kernel`);
  const setup = (k: KernelConfig | undefined) => (k?.setupFunc ? { setupFunc: k.setupFunc } : {});
  const wasmSet: KernelConfig[] = [
    { ...mm, kernelFunc: batchMatMulExplicitTranspose(backendName, mm.kernelFunc) },
    conv,
    {
      kernelName: Conv2DBackpropInput,
      backendName,
      kernelFunc: conv2dBackpropInput(backendName, input?.kernelFunc),
      ...setup(input),
    },
    { kernelName: Conv2DBackpropFilter, backendName, kernelFunc: conv2dBackpropFilter(backendName) },
  ];
  const addon = loadNativeAddon();
  const nativeSet: KernelConfig[] =
    addon === null
      ? wasmSet
      : [
          {
            ...mm,
            kernelFunc: batchMatMulExplicitTranspose(backendName, nativeBatchMatMul(addon, mm.kernelFunc)),
          },
          { ...conv, kernelFunc: nativeConv2D(addon, conv.kernelFunc) },
          { ...wasmSet[2]!, kernelFunc: nativeConv2DBackpropInput(addon, wasmSet[2]!.kernelFunc) },
          { ...wasmSet[3]!, kernelFunc: nativeConv2DBackpropFilter(addon, wasmSet[3]!.kernelFunc) },
          // Not in the wasm set: models use tfjs ops for batch norm when these are not registered.
          { kernelName: BATCH_NORM_KERNEL, backendName, kernelFunc: nativeBatchNorm(addon) },
          { kernelName: BATCH_NORM_GRAD_KERNEL, backendName, kernelFunc: nativeBatchNormGrad(addon) },
        ];
  kernelSets = { native: nativeSet, wasm: wasmSet };
  register(addon === null ? 'wasm' : 'native');
}

function register(kind: TrainingKernels): void {
  for (const k of [...kernelSets!.native, ...kernelSets!.wasm]) {
    if (getKernel(k.kernelName, k.backendName) !== undefined) unregisterKernel(k.kernelName, k.backendName);
  }
  for (const k of kernelSets![kind]) registerKernel(k);
  active = kind;
}

/** Which training kernels the wasm backend runs now. */
export function trainingKernels(): TrainingKernels {
  return active;
}

/**
 * Switches the wasm backend's training kernels (tests and the bench compare the two).
 * Asking for `native` where the addon does not run is an error naming why.
 */
export function setTrainingKernels(kind: TrainingKernels): void {
  if (kernelSets === null)
    throw new Error('the wasm training kernels are not installed (call initBackend first)');
  if (kind === 'native' && loadNativeAddon() === null) {
    throw new Error(`native kernels are not available: ${nativeStatus().reason}`);
  }
  register(kind);
}
