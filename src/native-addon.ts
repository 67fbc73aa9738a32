/**
 * The native addon (`native/`, a Node-API module built by `npm ci` with the machine's C++
 * compiler): loaded once, here, for all its users (the training kernels in backend/native-kernels/,
 * the stage-2 head kernels in backend/native-head.ts, huge-page advice in io/huge-pages.ts and
 * `doctor`), with the functions it exports typed. It sits below every folder so that backend/ and
 * io/ share one copy and one reason when it cannot run.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/** What the addon exports (native/src/addon.cc; the head kernels are typed in backend/native-head.ts). */
export interface NativeAddon {
  /** Whether the kernels can run: x86-64 with AVX2 + FMA, and a build that has them. */
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
  /**
   * convBn's steps one image at a time: offsets [x, y, then w, gamma, beta, mean, var per step],
   * steps 16 numbers each (convBn's shape, input buffer, residual buffer or -1, relu 0/1).
   */
  convBnProgram(heap: ArrayBuffer, offsets: Float64Array, steps: Int32Array, eps: number): void;
  /** Whether the bf16 products run here (a CPU with AVX512_BF16, native/src/bf16.cc). */
  bf16(): boolean;
  /** c [M, N] = bf16(a) [M, K] x bf16(b) [K, N], fp32 accumulation (vdpbf16ps). */
  matmulBf16(a: Float32Array, b: Float32Array, c: Float32Array, M: number, K: number, N: number): void;
  /**
   * conv2d's three kinds (shape and argument order as conv2d's: 0 x, w -> y; 1 dy, w -> dx; 2 x,
   * dy -> dw) with the inputs rounded to bf16 and fp32 sums.
   */
  conv2dBf16(a: Float32Array, b: Float32Array, out: Float32Array, shape: Int32Array, kind?: 0 | 1 | 2): void;
  /**
   * A training step's batch norm (offsets as in native/src/addon.cc): kind 0 forward with invstd,
   * the affine it applied and the running statistics moved by `momentum`; kind 1 the gradient of
   * batch norm + ReLU without a residual, its mask recomputed from x.
   */
  batchNormTrain(
    kind: 0 | 1,
    heap: ArrayBuffer,
    offsets: Float64Array,
    M: number,
    C: number,
    relu: boolean,
    eps: number,
    momentum: number,
  ): void;
  /** Global average pooling [B, P, C] -> [B, C] at byte offsets x, y (tf.mean's arithmetic). */
  channelMean(heap: ArrayBuffer, x: number, y: number, B: number, P: number, C: number): void;
  /** Batch norm's AVX2 passes on or off (bit-identical to its plain loops either way; for tests). */
  bnVector(on: boolean): void;
  /** One SGD-momentum step over n values: offsets [p, g, buf, pOut, bufOut]. */
  sgd(
    heap: ArrayBuffer,
    offsets: Float64Array,
    n: number,
    lr: number,
    momentum: number,
    weightDecay: number,
  ): void;
  /**
   * One SGD-momentum step over many parameters in place in the heap: params holds [byte offset,
   * size] per parameter; g and buf their values back to back in that order (buf updated too).
   */
  sgdFlat(
    heap: ArrayBuffer,
    params: Float64Array,
    g: Float32Array,
    buf: Float32Array,
    lr: number,
    momentum: number,
    weightDecay: number,
  ): void;
  /**
   * Asks Linux for transparent huge pages under the view (madvise); returns the bytes advised.
   * Needs no AVX2, so it is there wherever the addon loads.
   */
  adviseHugePages(view: ArrayBufferView): number;
}

/** Whether a part of the addon runs here, and why not. */
export interface NativeStatus {
  available: boolean;
  /** Why not, when not available. */
  reason: string;
}

export const ADDON_PATH = fileURLToPath(
  new URL('../native/build/Release/longtail_native.node', import.meta.url),
);

/** The module as loaded (whatever the CPU), null when it is off, missing or does not load. */
let loaded: NativeAddon | null | undefined;
let loadStatus: NativeStatus = { available: false, reason: 'not loaded yet' };

/**
 * The addon as loaded, whatever the CPU (null, with a reason in nativeStatus(), when
 * `LONGTAIL_NATIVE=0`, not built or not loadable). Only for what needs no AVX2 (huge pages);
 * kernels take loadNativeAddon().
 */
export function loadAddonModule(): NativeAddon | null {
  if (loaded !== undefined) return loaded;
  loaded = null;
  const flag = process.env.LONGTAIL_NATIVE;
  if (flag === '0' || flag === 'false') {
    loadStatus = { available: false, reason: 'disabled by LONGTAIL_NATIVE=0' };
    return null;
  }
  if (!existsSync(ADDON_PATH)) {
    loadStatus = {
      available: false,
      reason: `not built (${ADDON_PATH} is missing: npm ci builds it with the C++ compiler; see \`npm run build:native\`)`,
    };
    return null;
  }
  try {
    const module = createRequire(import.meta.url)(ADDON_PATH) as NativeAddon;
    if (module.supported()) {
      const avx = process.env.LONGTAIL_AVX512;
      if (avx === '0' || avx === 'false') module.avx512(false);
      loadStatus = { available: true, reason: '' };
    } else {
      loadStatus = { available: false, reason: 'this CPU lacks AVX2 + FMA (or is not x86-64)' };
    }
    loaded = module;
  } catch (e) {
    loadStatus = { available: false, reason: `could not load ${ADDON_PATH}: ${(e as Error).message}` };
  }
  return loaded;
}

/** The addon where its kernels can run here (loaded once); null, with a reason in nativeStatus(), elsewhere. */
export function loadNativeAddon(): NativeAddon | null {
  const module = loadAddonModule();
  return module !== null && loadStatus.available ? module : null;
}

/** Whether the native kernels run here, and why not. */
export function nativeStatus(): NativeStatus {
  loadAddonModule();
  return { ...loadStatus };
}

/**
 * Whether the convolutions and matrix products run the AVX-512 tiles (native/src/conv512.cc),
 * and why not when they do not: no native kernels, `LONGTAIL_AVX512=0`, or a CPU without
 * AVX-512F. For `doctor`.
 */
export function avx512Status(): NativeStatus {
  const a = loadNativeAddon();
  if (a === null) return { available: false, reason: `no native kernels (${loadStatus.reason})` };
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
  if (a === null) return { available: false, reason: `no native kernels (${loadStatus.reason})` };
  if (a.bf16()) return { available: true, reason: '' };
  return {
    available: false,
    reason: 'this CPU lacks AVX512_BF16 (or the compiler could not build the bf16 kernels)',
  };
}
