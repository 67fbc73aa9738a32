/**
 * Identity without a copy: the output shares the input's memory (reference-counted), as on the
 * cpu and webgl backends. The wasm kernel copies, and tfjs runs Identity on every tensor a
 * gradient saves: a copy of every activation of every training step.
 * Safe because no kernel writes into its inputs.
 */
import { Identity, type KernelConfig, type KernelFunc, type TensorInfo } from '@tensorflow/tfjs-core';
import type { WasmKernelBackend } from './compose.ts';

export function identityConfig(backendName: string): KernelConfig {
  return { kernelName: Identity, backendName, kernelFunc: identityShared };
}

const identityShared: KernelFunc = ({ inputs, backend }) => {
  const { x } = inputs as { x: TensorInfo };
  (backend as WasmKernelBackend).incRef(x.dataId);
  return { dataId: x.dataId, shape: [...x.shape], dtype: x.dtype };
};
