/**
 * Native kernels for the tfjs `wasm` backend (`native/`, a Node-API addon built by `npm ci` with
 * the machine's C++ compiler; AVX2 + FMA on x86-64, 512-bit tiles where the CPU has AVX-512F):
 * convolutions and both their gradients, training batch norm (+ residual + ReLU) and its
 * gradient, evaluation-mode batch norm (+ residual + ReLU), matrix products.
 *
 * They replace the wasm backend's Conv2D and BatchMatMul and our composed gradient kernels
 * (kernels/) for float32 NHWC convolutions without dilation, reading and writing the wasm heap
 * in place, and hand anything else to those; training-kernels.ts registers them as the `native`
 * set. Where the addon is missing (no compiler at install, another CPU) or `LONGTAIL_NATIVE=0`,
 * the `wasm` set runs instead: same kind of results (sums in another order), slower.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import {
  backend_util,
  type Conv2DAttrs,
  type Conv2DBackpropFilterAttrs,
  type Conv2DBackpropInputAttrs,
  type KernelFunc,
  type TensorInfo,
} from '@tensorflow/tfjs-core';

export interface NativeAddon {
  supported(): boolean;
  /**
   * Switches the AVX-512 tiles of the convolutions and matrix products on or off (on only where
   * the CPU has AVX-512F; the sums and their order are the same, so are the results); returns
   * whether they run. On by default where they can; `LONGTAIL_AVX512=0` switches them off.
   */
  avx512(on?: boolean): boolean;
  /** kind 0 forward (x, w -> y), 1 input gradient (dy, w -> dx), 2 filter gradient (x, dy -> dw). */
  conv2d(kind: 0 | 1 | 2, heap: ArrayBuffer, a: number, b: number, out: number, shape: Int32Array): void;
  /** c [batch, M, N] = a [batchA, M, K] x b [batchB, K, N] (a batch of 1 broadcast). */
  matmul(heap: ArrayBuffer, a: number, b: number, c: number, dims: Int32Array): void;
  /**
   * Batch norm over [M, C]: kind 0 forward, 1 gradient, 2 evaluation-mode affine, each with an
   * optional residual branch (offsets as in native/src/addon.cc).
   */
  batchNorm(
    kind: 0 | 1 | 2,
    heap: ArrayBuffer,
    offsets: Float64Array,
    M: number,
    C: number,
    relu: boolean,
    eps: number,
  ): void;
  /**
   * Evaluation-mode convolution with its batch norm folded into the filter, (+ res) (then ReLU):
   * offsets [x, w, gamma, beta, mean, var, y, (res)], shape as conv2d's.
   */
  convBn(heap: ArrayBuffer, offsets: Float64Array, shape: Int32Array, relu: boolean, eps: number): void;
  /** Whether the bf16 products run here (a CPU with AVX512_BF16, native/src/bf16.cc). */
  bf16(): boolean;
  /** c [M, N] = bf16(a) [M, K] x bf16(b) [K, N], fp32 accumulation (vdpbf16ps). */
  matmulBf16(a: Float32Array, b: Float32Array, c: Float32Array, M: number, K: number, N: number): void;
  /**
   * conv2d's three kinds (shape and argument order as conv2d's: 0 x, w -> y; 1 dy, w -> dx; 2 x,
   * dy -> dw) with the inputs rounded to bf16 and fp32 sums.
   */
  conv2dBf16(a: Float32Array, b: Float32Array, out: Float32Array, shape: Int32Array, kind?: 0 | 1 | 2): void;
  /** One SGD-momentum step over n values: offsets [p, g, buf, pOut, bufOut]. */
  sgd(
    heap: ArrayBuffer,
    offsets: Float64Array,
    n: number,
    lr: number,
    momentum: number,
    weightDecay: number,
  ): void;
}

/**
 * Training-mode batch norm (+ a residual branch) (+ ReLU): x, gamma, beta (, res) -> y, batch
 * mean, biased batch variance; y = relu(bn(x) + res), the tail of a residual block in one pass.
 */
export const BATCH_NORM_KERNEL = 'LongtailBatchNorm';
/** Its gradient: dy, x, y, mean, invstd, gamma -> dx, dgamma, dbeta (, dres when `residual`). */
export const BATCH_NORM_GRAD_KERNEL = 'LongtailBatchNormGrad';
/** Evaluation-mode batch norm: x, scale, shift (, res) -> x * scale + shift (+ res) (then ReLU). */
export const CHANNEL_AFFINE_KERNEL = 'LongtailChannelAffine';

/**
 * Evaluation-mode convolution + batch norm (+ residual) (+ ReLU) in one call, the batch norm folded
 * into the filter (w * gamma / sqrt(var + eps) per output channel, shift beta - mean * scale):
 * x, filter, gamma, beta, mean, variance (, res) -> y. Attributes: strides, pad (as tf.conv2d's),
 * relu, epsilon. No gradient: layers.ts uses it only when no gradient is being recorded.
 */
export const CONV_BN_KERNEL = 'LongtailConvBn';

/**
 * One SGD step with momentum and weight decay (PyTorch's rule, as src/optim/sgd.ts):
 * p, g, buf -> p - lr * buf', buf' = momentum * buf + g + weightDecay * p, in one pass with the
 * tfjs ops' float rounding (bit-identical to them). Attributes: lr, momentum, weightDecay.
 */
export const SGD_KERNEL = 'LongtailSgd';

/** What `doctor`, the bench and results report about the kernels. */
export interface NativeStatus {
  available: boolean;
  /** Why not, when not available. */
  reason: string;
}

export const ADDON_PATH = fileURLToPath(
  new URL('../../native/build/Release/longtail_native.node', import.meta.url),
);

let addon: NativeAddon | null | undefined;
let status: NativeStatus = { available: false, reason: 'not loaded yet' };

/** Loads the addon once; null (with a reason in nativeStatus()) when it cannot run here. */
export function loadNativeAddon(): NativeAddon | null {
  if (addon !== undefined) return addon;
  addon = null;
  const flag = process.env.LONGTAIL_NATIVE;
  if (flag === '0' || flag === 'false') {
    status = { available: false, reason: 'disabled by LONGTAIL_NATIVE=0' };
    return null;
  }
  if (!existsSync(ADDON_PATH)) {
    status = {
      available: false,
      reason: `not built (${ADDON_PATH} is missing: npm ci builds it with the C++ compiler; see \`npm run build:native\`)`,
    };
    return null;
  }
  try {
    const loaded = createRequire(import.meta.url)(ADDON_PATH) as NativeAddon;
    if (!loaded.supported()) {
      status = { available: false, reason: 'this CPU lacks AVX2 + FMA (or is not x86-64)' };
      return null;
    }
    addon = loaded;
    const avx = process.env.LONGTAIL_AVX512;
    if (avx === '0' || avx === 'false') loaded.avx512(false);
    status = { available: true, reason: '' };
  } catch (e) {
    status = { available: false, reason: `could not load ${ADDON_PATH}: ${(e as Error).message}` };
  }
  return addon;
}

export function nativeStatus(): NativeStatus {
  loadNativeAddon();
  return status;
}

/**
 * Whether the convolutions and matrix products run the AVX-512 tiles (native/src/conv512.cc),
 * and why not when they do not: no native kernels, `LONGTAIL_AVX512=0`, or a CPU without
 * AVX-512F. For `doctor`.
 */
export function avx512Status(): NativeStatus {
  const a = loadNativeAddon();
  if (a === null) return { available: false, reason: `no native kernels (${status.reason})` };
  if (a.avx512()) return { available: true, reason: '' };
  const flag = process.env.LONGTAIL_AVX512;
  if (flag === '0' || flag === 'false')
    return { available: false, reason: `switched off by LONGTAIL_AVX512=${flag}` };
  return { available: false, reason: 'this CPU lacks AVX-512F (or the compiler could not build the tiles)' };
}

/**
 * Whether the bf16 products (native/src/bf16.cc: vdpbf16ps, bf16 inputs, fp32 sums) can run, and
 * why not: no native kernels, or a CPU without AVX512_BF16 (AVX-512F and BW too). For `doctor`.
 */
export function bf16Status(): NativeStatus {
  const a = loadNativeAddon();
  if (a === null) return { available: false, reason: `no native kernels (${status.reason})` };
  if (a.bf16()) return { available: true, reason: '' };
  return {
    available: false,
    reason: 'this CPU lacks AVX512_BF16 (or the compiler could not build the bf16 kernels)',
  };
}

/** The slice of the wasm backend the kernels need. */
interface WasmBackend {
  wasm: { HEAPU8: Uint8Array };
  getMemoryOffset(dataId: object): number;
  makeOutput(shape: number[], dtype: 'float32'): TensorInfo;
}

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

/** [b, H, W, ci, kh, kw, co, sh, sw, pt, pl, oh, ow], or null where the native kernels do not apply. */
function nativeShape(info: backend_util.Conv2DInfo, dataFormat: string, dtypes: string[]): Int32Array | null {
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
interface ConvCall {
  first: TensorInfo;
  second: TensorInfo;
  info: backend_util.Conv2DInfo;
  dataFormat: string;
  outShape: number[];
}

/**
 * Whether the bf16 kernel of a convolution pass beats the fp32 one (bench/bf16-conv.ts, batch
 * 128, CIFAR ResNet shapes, bf16 / fp32 per CPU-second at load 15-30): 3x3 forward with at least
 * 16 input channels 1.5-1.9x at strides 1 and 2; 3x3 stride-1 input gradient 1.6-2.0x; 3x3
 * stride-1 filter gradient at 64 channels 1.0-1.4x. Slower, so fp32: the stem (3 channels), the
 * 1x1 shortcuts, the stride-2 input gradient (0.7-1.1x, split by phase), the filter gradient
 * below 64 channels (0.5-1.07x: converting x costs about what the products save).
 */
export function bf16Wins(kind: 0 | 1 | 2, shape: Int32Array): boolean {
  const [, , , ci, kh, kw, , sh, sw] = shape as unknown as Shape13;
  if (kh !== 3 || kw !== 3 || ci < 16) return false;
  if (kind === 0) return true;
  if (sh !== 1 || sw !== 1) return false;
  return kind === 1 || ci >= 64;
}

/**
 * A native convolution kernel (kind 0 forward, 1 input gradient, 2 filter gradient): `parse`
 * reads the call's inputs and attributes; what the addon does not cover goes to `fallback`.
 * With `bf16`, the passes bf16Wins names run the bf16 kernels (inputs rounded to bf16, fp32 sums).
 */
function nativeConvKernel(
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

type Shape4 = [number, number, number, number];

export function nativeConv2D(a: NativeAddon, fallback: KernelFunc, bf16 = false): KernelFunc {
  return nativeConvKernel(
    a,
    0,
    fallback,
    ({ inputs, attrs }) => {
      const { x, filter } = inputs as { x: TensorInfo; filter: TensorInfo };
      const { strides, pad, dataFormat, dilations, dimRoundingMode } = attrs as unknown as Conv2DAttrs;
      const info = backend_util.computeConv2DInfo(
        x.shape as Shape4,
        filter.shape as Shape4,
        strides,
        dilations,
        pad,
        dimRoundingMode,
      );
      return { first: x, second: filter, info, dataFormat, outShape: info.outShape };
    },
    bf16,
  );
}

export function nativeConv2DBackpropInput(a: NativeAddon, fallback: KernelFunc, bf16 = false): KernelFunc {
  return nativeConvKernel(
    a,
    1,
    fallback,
    ({ inputs, attrs }) => {
      const { dy, filter } = inputs as { dy: TensorInfo; filter: TensorInfo };
      const { strides, pad, dataFormat, dimRoundingMode, inputShape } =
        attrs as unknown as Conv2DBackpropInputAttrs;
      const info = backend_util.computeConv2DInfo(
        inputShape,
        filter.shape as Shape4,
        strides,
        1,
        pad,
        dimRoundingMode,
      );
      return { first: dy, second: filter, info, dataFormat, outShape: [...inputShape] };
    },
    bf16,
  );
}

export function nativeConv2DBackpropFilter(a: NativeAddon, fallback: KernelFunc, bf16 = false): KernelFunc {
  return nativeConvKernel(
    a,
    2,
    fallback,
    ({ inputs, attrs }) => {
      const { x, dy } = inputs as { x: TensorInfo; dy: TensorInfo };
      const { strides, pad, dataFormat, dimRoundingMode, filterShape } =
        attrs as unknown as Conv2DBackpropFilterAttrs;
      const info = backend_util.computeConv2DInfo(
        x.shape as Shape4,
        filterShape,
        strides,
        1,
        pad,
        dimRoundingMode,
      );
      return { first: x, second: dy, info, dataFormat, outShape: [...filterShape] };
    },
    bf16,
  );
}

/** Rows and channels of a channels-last tensor. */
function rowsChannels(t: TensorInfo): [number, number] {
  const C = t.shape[t.shape.length - 1]!;
  return [t.shape.reduce((p, d) => p * d, 1) / C, C];
}

export function nativeBatchNorm(a: NativeAddon): KernelFunc {
  return ({ inputs, backend, attrs }) => {
    const { x, gamma, beta, res } = inputs as Record<string, TensorInfo | undefined>;
    const { relu, epsilon } = attrs as unknown as { relu: boolean; epsilon: number };
    const be = backend as unknown as WasmBackend;
    const [M, C] = rowsChannels(x!);
    sameShape(res, x!, 'residual');
    const y = be.makeOutput([...x!.shape], 'float32');
    const mean = be.makeOutput([C], 'float32');
    const variance = be.makeOutput([C], 'float32');
    const off = (t: TensorInfo) => be.getMemoryOffset(t.dataId);
    const offsets = Float64Array.of(
      off(x!),
      off(gamma!),
      off(beta!),
      off(y),
      off(mean),
      off(variance),
      ...(res ? [off(res)] : []),
    );
    a.batchNorm(0, be.wasm.HEAPU8.buffer as ArrayBuffer, offsets, M, C, relu, epsilon);
    return [y, mean, variance];
  };
}

/** Throws unless `t` (when given) has the shape of `x`: the addon reads [M, C] from both. */
function sameShape(t: TensorInfo | undefined, x: TensorInfo, what: string, whose = "the input's"): void {
  if (t !== undefined && (t.shape.length !== x.shape.length || t.shape.some((d, i) => d !== x.shape[i])))
    throw new Error(`batch norm: the ${what} [${t.shape}] must have ${whose} shape [${x.shape}]`);
}

export function nativeBatchNormGrad(a: NativeAddon): KernelFunc {
  return ({ inputs, backend, attrs }) => {
    const { dy, x, y, mean, invstd, gamma } = inputs as Record<string, TensorInfo>;
    const { relu, residual } = attrs as unknown as { relu: boolean; residual?: boolean };
    const be = backend as unknown as WasmBackend;
    const [M, C] = rowsChannels(x!);
    const dx = be.makeOutput([...x!.shape], 'float32');
    const dgamma = be.makeOutput([C], 'float32');
    const dbeta = be.makeOutput([C], 'float32');
    const dres = residual ? be.makeOutput([...x!.shape], 'float32') : null;
    const off = (t: TensorInfo) => be.getMemoryOffset(t.dataId);
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
    a.batchNorm(1, be.wasm.HEAPU8.buffer as ArrayBuffer, offsets, M, C, relu, 0);
    return dres ? [dx, dgamma, dbeta, dres] : [dx, dgamma, dbeta];
  };
}

export function nativeChannelAffine(a: NativeAddon): KernelFunc {
  return ({ inputs, backend, attrs }) => {
    const { x, scale, shift, res } = inputs as Record<string, TensorInfo | undefined>;
    const { relu } = attrs as unknown as { relu: boolean };
    const be = backend as unknown as WasmBackend;
    const [M, C] = rowsChannels(x!);
    sameShape(res, x!, 'residual');
    const y = be.makeOutput([...x!.shape], 'float32');
    const off = (t: TensorInfo) => be.getMemoryOffset(t.dataId);
    const offsets = Float64Array.of(off(x!), off(scale!), off(shift!), off(y), ...(res ? [off(res)] : []));
    a.batchNorm(2, be.wasm.HEAPU8.buffer as ArrayBuffer, offsets, M, C, relu, 0);
    return y;
  };
}

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

export function nativeConvBn(a: NativeAddon): KernelFunc {
  return ({ inputs, backend, attrs }) => {
    const { x, filter, gamma, beta, mean, variance, res } = inputs as Record<string, TensorInfo | undefined>;
    const { strides, pad, relu, epsilon } = attrs as unknown as {
      strides: number | [number, number];
      pad: Conv2DAttrs['pad'];
      relu: boolean;
      epsilon: number;
    };
    const info = backend_util.computeConv2DInfo(x!.shape as Shape4, filter!.shape as Shape4, strides, 1, pad);
    const shape = nativeShape(info, 'NHWC', [x!.dtype, filter!.dtype]);
    if (shape === null)
      throw new Error(`convolution + batch norm: padding ${JSON.stringify(pad)} is not supported`);
    for (const [name, t] of [
      ['scale', gamma],
      ['shift', beta],
      ['mean', mean],
      ['variance', variance],
    ] as const) {
      if (t!.shape.length !== 1 || t!.shape[0] !== info.outChannels)
        throw new Error(`convolution + batch norm: the ${name} [${t!.shape}] must be [${info.outChannels}]`);
    }
    const be = backend as unknown as WasmBackend;
    const y = be.makeOutput(info.outShape, 'float32');
    sameShape(res, y, 'residual', "the convolution output's");
    if (info.batchSize === 0) return y;
    const off = (t: TensorInfo) => be.getMemoryOffset(t.dataId);
    const offsets = Float64Array.of(
      off(x!),
      off(filter!),
      off(gamma!),
      off(beta!),
      off(mean!),
      off(variance!),
      off(y),
      ...(res ? [off(res)] : []),
    );
    a.convBn(be.wasm.HEAPU8.buffer as ArrayBuffer, offsets, shape, relu, epsilon);
    return y;
  };
}

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
