/**
 * SGD with momentum and weight decay, PyTorch's semantics (dampening 0, no Nesterov):
 *   d = g + wd * p;  buf = momentum * buf + d;  p = p - lr * buf
 * Weight decay applies to every parameter, batch-norm scales included, as in the official code.
 * The momentum buffers live in one host array, the parameters' values back to back. Where the
 * native kernels run, a whole step is one call that updates the parameters in place in the wasm
 * heap (the same float rounding as the tfjs ops below, which are the fallback).
 */
import * as tf from '@tensorflow/tfjs-core';
import { sgdFlatInPlace } from '../backend/native-kernels/sgd.ts';
import { paramName } from '../models/params.ts';

export interface SgdOptions {
  momentum?: number;
  weightDecay?: number;
}

export class Sgd {
  readonly momentum: number;
  readonly weightDecay: number;
  /** Momentum buffers by logical parameter name (stable across processes, for checkpoints). */
  private readonly buffers = new Map<string, { shape: number[]; data: Float32Array }>();
  /** The buffers of the last step's variables back to back (the map's values are views into it). */
  private flat: { key: string; data: Float32Array } | null = null;

  constructor(opts: SgdOptions = {}) {
    this.momentum = opts.momentum ?? 0.9;
    this.weightDecay = opts.weightDecay ?? 0;
  }

  /** One update of `vars` with their gradients (keyed by variable name; a missing one skips its variable). */
  step(vars: tf.Variable[], grads: tf.NamedTensorMap, lr: number): void {
    const withGrad = vars.filter((v) => grads[v.name] !== undefined);
    const flat = new Float32Array(withGrad.reduce((n, v) => n + v.size, 0));
    let o = 0;
    for (const v of withGrad) {
      flat.set(grads[v.name]!.dataSync() as Float32Array, o);
      o += v.size;
    }
    this.stepFlat(withGrad, flat, lr);
  }

  /** One update of `vars` from their gradients back to back in `flat` (as computeGrads gives them). */
  stepFlat(vars: tf.Variable[], flat: Float32Array, lr: number): void {
    const total = vars.reduce((n, v) => n + v.size, 0);
    if (flat.length !== total) throw new Error(`sgd: ${flat.length} gradient values for ${total} parameters`);
    const buf = this.layout(vars);
    if (sgdFlatInPlace(vars, flat, buf, lr, this.momentum, this.weightDecay)) return;
    tf.tidy(() => {
      let o = 0;
      for (const v of vars) {
        const g = tf.tensor(flat.subarray(o, o + v.size), v.shape);
        const d = this.weightDecay === 0 ? g : tf.add(g, tf.mul(v, this.weightDecay));
        const b = tf.add(tf.mul(tf.tensor(buf.subarray(o, o + v.size), v.shape), this.momentum), d);
        buf.set(b.dataSync() as Float32Array, o);
        v.assign(tf.sub(v, tf.mul(b, lr)));
        o += v.size;
      }
    });
  }

  /** The flat momentum array for `vars` (zeros for a parameter seen first), made once per set of variables. */
  private layout(vars: tf.Variable[]): Float32Array {
    const names = vars.map(paramName);
    const key = names.join('\n');
    if (this.flat?.key === key) return this.flat.data;
    const data = new Float32Array(vars.reduce((n, v) => n + v.size, 0));
    let o = 0;
    vars.forEach((v, i) => {
      const view = data.subarray(o, o + v.size);
      const old = this.buffers.get(names[i]!);
      if (old !== undefined && old.data.length !== v.size)
        throw new Error(
          `sgd: the momentum of ${names[i]} holds ${old.data.length} values, the parameter ${v.size}`,
        );
      if (old !== undefined) view.set(old.data);
      this.buffers.set(names[i]!, { shape: [...v.shape], data: view });
      o += v.size;
    });
    this.flat = { key, data };
    return data;
  }

  /** Momentum buffers, for a checkpoint (copies). */
  state(): Record<string, { shape: number[]; data: Float32Array }> {
    const out: Record<string, { shape: number[]; data: Float32Array }> = {};
    for (const [name, b] of this.buffers) out[name] = { shape: [...b.shape], data: b.data.slice() };
    return out;
  }

  loadState(state: Record<string, { shape: number[]; data: Float32Array }>): void {
    this.dispose();
    for (const [name, a] of Object.entries(state))
      this.buffers.set(name, { shape: [...a.shape], data: Float32Array.from(a.data) });
  }

  dispose(): void {
    this.buffers.clear();
    this.flat = null;
  }
}
