/**
 * SGD with momentum and weight decay, PyTorch's semantics (dampening 0, no Nesterov):
 *   d = g + wd * p;  buf = momentum * buf + d;  p = p - lr * buf
 * Weight decay applies to every parameter, batch-norm scales included, as in the official code.
 * Where the native kernels run, each parameter's update is one call (one pass over memory, the
 * same float rounding as the tfjs ops below, which are the fallback).
 */
import * as tf from '@tensorflow/tfjs-core';
import { SGD_KERNEL } from '../backend/native-kernels/names.ts';
import { paramName } from '../models/params.ts';

export interface SgdOptions {
  momentum?: number;
  weightDecay?: number;
}

export class Sgd {
  readonly momentum: number;
  readonly weightDecay: number;
  /** Momentum buffers by logical parameter name (stable across processes, for checkpoints). */
  private readonly buffers = new Map<string, tf.Variable>();

  constructor(opts: SgdOptions = {}) {
    this.momentum = opts.momentum ?? 0.9;
    this.weightDecay = opts.weightDecay ?? 0;
  }

  /** One update of `vars` with their gradients (keyed by variable name). */
  step(vars: tf.Variable[], grads: tf.NamedTensorMap, lr: number): void {
    const fused = tf.getKernel(SGD_KERNEL, tf.getBackend()) !== undefined;
    const attrs = { lr, momentum: this.momentum, weightDecay: this.weightDecay };
    tf.tidy(() => {
      for (const v of vars) {
        const g = grads[v.name];
        if (g === undefined) continue;
        const key = paramName(v);
        let buf = this.buffers.get(key);
        if (buf === undefined) {
          buf = tf.variable(tf.zerosLike(v), false);
          this.buffers.set(key, buf);
        }
        if (fused && v.dtype === 'float32' && g.dtype === 'float32') {
          const [p, b] = tf.engine().runKernel(SGD_KERNEL, { p: v, g, buf }, attrs) as tf.Tensor[];
          buf.assign(b!);
          v.assign(p!);
          continue;
        }
        const d = this.weightDecay === 0 ? g : tf.add(g, tf.mul(v, this.weightDecay));
        const b = tf.add(tf.mul(buf, this.momentum), d);
        buf.assign(b);
        v.assign(tf.sub(v, tf.mul(b, lr)));
      }
    });
  }

  /** Momentum buffers, for a checkpoint. */
  state(): Record<string, { shape: number[]; data: Float32Array }> {
    const out: Record<string, { shape: number[]; data: Float32Array }> = {};
    for (const [name, v] of this.buffers)
      out[name] = { shape: [...v.shape], data: v.dataSync() as Float32Array };
    return out;
  }

  loadState(state: Record<string, { shape: number[]; data: Float32Array }>): void {
    this.dispose();
    for (const [name, a] of Object.entries(state)) {
      this.buffers.set(name, tf.variable(tf.tensor(a.data, a.shape), false));
    }
  }

  dispose(): void {
    for (const v of this.buffers.values()) v.dispose();
    this.buffers.clear();
  }
}
