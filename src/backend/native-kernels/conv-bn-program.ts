/** The native chain of folded convolution + batch norm steps: CONV_BN_PROGRAM_KERNEL (names.ts). */
import { backend_util, type KernelFunc, type TensorInfo } from '@tensorflow/tfjs-core';
import type { NativeAddon } from '../../native-addon.ts';
import { nativeShape, type Shape4 } from './conv.ts';
import type { WasmBackend } from './heap.ts';

/** Numbers per step in the `steps` attribute. */
export const PROGRAM_STEP = 6;

export function nativeConvBnProgram(a: NativeAddon): KernelFunc {
  return ({ inputs, backend, attrs }) => {
    const { steps, epsilon } = attrs as unknown as { steps: number[]; epsilon: number };
    const n = steps.length / PROGRAM_STEP;
    if (!Number.isInteger(n) || n < 1)
      throw new Error(`convolution + batch norm program: steps must hold ${PROGRAM_STEP} numbers per step`);
    const x = inputs.x as TensorInfo;
    const shapes: Shape4[] = [x.shape as Shape4];
    const packed = new Int32Array(16 * n);
    const be = backend as unknown as WasmBackend;
    const off = (t: TensorInfo) => be.getMemoryOffset(t.dataId);
    const offsets = new Float64Array(2 + 5 * n);
    for (let i = 0; i < n; i++) {
      const [input, res, relu, stride, top, left] = steps.slice(PROGRAM_STEP * i, PROGRAM_STEP * (i + 1)) as [
        number,
        number,
        number,
        number,
        number,
        number,
      ];
      const inShape = shapes[input];
      if (inShape === undefined)
        throw new Error(`convolution + batch norm program: step ${i} reads buffer ${input}`);
      const named = (k: string) => {
        const t = inputs[`${k}${i}`] as TensorInfo | undefined;
        if (t === undefined) throw new Error(`convolution + batch norm program: step ${i} has no ${k}${i}`);
        return t;
      };
      const filter = named('w');
      const pad = [
        [0, 0],
        [top, top],
        [left, left],
        [0, 0],
      ] as backend_util.ExplicitPadding;
      const info = backend_util.computeConv2DInfo(inShape, filter.shape as Shape4, stride, 1, pad);
      const shape = nativeShape(info, 'NHWC', [x.dtype, filter.dtype]);
      if (shape === null)
        throw new Error(`convolution + batch norm program: step ${i} is not supported natively`);
      packed.set(shape, 16 * i);
      packed[16 * i + 13] = input;
      packed[16 * i + 14] = res;
      packed[16 * i + 15] = relu ? 1 : 0;
      shapes.push(info.outShape as Shape4);
      ['w', 'gamma', 'beta', 'mean', 'variance'].forEach((k, j) => {
        const t = named(k);
        if (j > 0 && (t.shape.length !== 1 || t.shape[0] !== info.outChannels))
          throw new Error(
            `convolution + batch norm program: ${k}${i} [${t.shape}] must be [${info.outChannels}]`,
          );
        offsets[2 + 5 * i + j] = off(t);
      });
    }
    const y = be.makeOutput(shapes[n]!, 'float32');
    if (x.shape[0] === 0) return y;
    offsets[0] = off(x);
    offsets[1] = off(y);
    // Shapes, buffer ids and sizes are checked again natively (check_program).
    a.convBnProgram(be.wasm.HEAPU8.buffer as ArrayBuffer, offsets, packed, epsilon);
    return y;
  };
}
