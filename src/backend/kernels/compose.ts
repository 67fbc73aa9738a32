/**
 * What the composed kernels (this folder) share. They run below the engine, so they call other
 * kernels' functions directly and free their intermediates themselves: a KernelScope does both.
 */
import {
  Conv2D,
  getKernel,
  type KernelFunc,
  type NamedAttrMap,
  type NamedTensorInfoMap,
  type TensorInfo,
} from '@tensorflow/tfjs-core';

/** The slice of the wasm backend the composed kernels use. */
export type WasmKernelBackend = Parameters<KernelFunc>[0]['backend'] & {
  disposeData(dataId: object): boolean;
  incRef(dataId: object): void;
  readSync(dataId: object): ArrayLike<number>;
  makeOutput(shape: number[], dtype: 'float32', memoryOffset?: number, values?: Float32Array): TensorInfo;
};

/** Runs kernels of one backend, remembering every intermediate so it can be freed at once. */
export class KernelScope {
  private readonly temps: TensorInfo[] = [];
  constructor(
    private readonly backend: WasmKernelBackend,
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

export function assertChannelsLast(dataFormat: string, kernel: string): void {
  if (dataFormat !== 'NHWC') {
    throw new Error(`${kernel} on wasm supports dataFormat NHWC only, got ${dataFormat}`);
  }
}
