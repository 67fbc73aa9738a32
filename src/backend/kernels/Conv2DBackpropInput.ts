/**
 * Conv2DBackpropInput for the wasm backend, whose own kernel is a naive loop about ten times
 * slower than its forward convolution. The input gradient is the textbook transposed
 * convolution: a stride-1 convolution of the zero-inserted dy with the spatially flipped,
 * in/out-swapped filter, run as the backend's own fast (XNNPACK) Conv2D; strided gradients skip
 * the inserted zeros (polyphaseInput).
 */
import {
  backend_util,
  Conv2DBackpropInput,
  type Conv2DBackpropInputAttrs,
  type Conv2DBackpropInputInputs,
  type KernelConfig,
  type KernelFunc,
  PadV2,
  Reshape,
  Reverse,
  Slice,
  type TensorInfo,
  Transpose,
} from '@tensorflow/tfjs-core';
import { assertChannelsLast, KernelScope, type WasmKernelBackend } from './compose.ts';

/**
 * `own`: the backend's own kernel, kept for padding wider than the filter (and its setup, which
 * that kernel needs at backend start).
 */
export function conv2DBackpropInputConfig(backendName: string, own: KernelConfig | undefined): KernelConfig {
  return {
    kernelName: Conv2DBackpropInput,
    backendName,
    kernelFunc: conv2DBackpropInput(backendName, own?.kernelFunc),
    ...(own?.setupFunc ? { setupFunc: own.setupFunc } : {}),
  };
}

/** dx for Conv2D: see the module comment. dy [b, oh, ow, co], filter [kh, kw, ci, co] -> [b, H, W, ci]. */
function conv2DBackpropInput(backendName: string, fallback: KernelFunc | undefined): KernelFunc {
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
        backend as WasmKernelBackend,
        backendName,
        dy as TensorInfo,
        filter as TensorInfo,
        info,
        inputShape,
      );
      if (out !== null) return out;
    }
    const scope = new KernelScope(backend as WasmKernelBackend, backendName);
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
 * Strided input gradient without the inserted zeros (polyphase): output row y = s*u + r takes
 * the filter taps kh = r + pt - s*d from dy row u + d. All s*s phases come out of ONE stride-1
 * convolution whose output channels are the phases' sub-filters, and a transpose interleaves
 * them: a 3x3 / stride-2 gradient costs 16 instead of 36 multiply-adds per dy pixel and channel
 * pair. Returns null where the padding does not fit (the caller then inserts zeros).
 */
function polyphaseInput(
  backend: WasmKernelBackend,
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
