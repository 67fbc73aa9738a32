/** The native fused SGD-momentum update: SGD_KERNEL (names.ts), and its flat form over a whole model. */

import type { KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import * as tf from '@tensorflow/tfjs-core';
import { loadNativeAddon, type NativeAddon } from '../../native-addon.ts';
import type { WasmBackend } from './heap.ts';
import { SGD_KERNEL } from './names.ts';

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

/**
 * One SGD-momentum step over every variable at once (the addon's sgdFlat): each variable's
 * values are updated in place in the wasm heap, `g` and `buf` hold the variables' values back to
 * back in `vars` order (buf is updated too). The same per-element arithmetic as SGD_KERNEL, in
 * one native call instead of one kernel, two fresh outputs and a gradient copied into the heap
 * per parameter. False, with nothing changed, where it cannot run (SGD_KERNEL not registered for
 * the current backend, a variable not float32). A variable whose data another tensor shares
 * (refCount > 1) first gets its own copy, so no other tensor sees the update.
 */
export function sgdFlatInPlace(
  vars: readonly tf.Variable[],
  g: Float32Array,
  buf: Float32Array,
  lr: number,
  momentum: number,
  weightDecay: number,
): boolean {
  if (tf.getKernel(SGD_KERNEL, tf.getBackend()) === undefined) return false;
  const addon = loadNativeAddon();
  if (addon === null || vars.some((v) => v.dtype !== 'float32')) return false;
  const be = tf.backend() as unknown as WasmBackend & { refCount(dataId: object): number };
  for (const v of vars)
    if (be.refCount(v.dataId) !== 1) tf.tidy(() => v.assign(tf.tensor(v.dataSync(), v.shape, 'float32')));
  const spec = new Float64Array(2 * vars.length);
  vars.forEach((v, k) => {
    spec[2 * k] = be.getMemoryOffset(v.dataId);
    spec[2 * k + 1] = v.size;
  });
  addon.sgdFlat(be.wasm.HEAPU8.buffer as ArrayBuffer, spec, g, buf, lr, momentum, weightDecay);
  return true;
}
