/**
 * BatchMatMul with transposed operands: the wasm kernel's transposeA / transposeB path is an
 * order of magnitude slower than its plain product, and every matMul gradient uses it. An explicit
 * Transpose then the plain kernel is much faster (docs/benchmarks.md).
 */
import {
  type BatchMatMulAttrs,
  type KernelConfig,
  type KernelFunc,
  type TensorInfo,
  Transpose,
} from '@tensorflow/tfjs-core';
import { KernelScope, type WasmKernelBackend } from './compose.ts';

/** `plain`: the product without transposes (the backend's own, or the native one). */
export function batchMatMulConfig(backendName: string, plain: KernelConfig): KernelConfig {
  return { ...plain, kernelFunc: batchMatMulExplicitTranspose(backendName, plain.kernelFunc) };
}

function batchMatMulExplicitTranspose(backendName: string, plain: KernelFunc): KernelFunc {
  return (args) => {
    const { inputs, backend, attrs } = args;
    const { a, b } = inputs as { a: TensorInfo; b: TensorInfo };
    const { transposeA, transposeB } = attrs as unknown as BatchMatMulAttrs;
    if (!transposeA && !transposeB) return plain(args);
    const scope = new KernelScope(backend as WasmKernelBackend, backendName);
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
