/**
 * Named model state: trainable parameters and non-trainable buffers (batch-norm running
 * statistics), as tfjs variables. Save and load go through plain `{name: Float32Array}` maps so
 * checkpoints need no tfjs-specific format.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Rng } from '../random/rng.ts';

export interface NamedArrays {
  [name: string]: { shape: number[]; data: Float32Array };
}

const logicalNames = new WeakMap<tf.Variable, string>();

/**
 * The model-level name of a variable ('layer1.0.conv1.weight'). tfjs variable names must be
 * unique per process, so the variables themselves get generated names; checkpoints and
 * optimiser state use these logical ones.
 */
export function paramName(v: tf.Variable): string {
  return logicalNames.get(v) ?? v.name;
}

export class ParamSet {
  readonly params = new Map<string, tf.Variable>();
  readonly buffers = new Map<string, tf.Variable>();

  addParam(name: string, value: tf.Tensor): tf.Variable {
    if (this.params.has(name) || this.buffers.has(name)) throw new Error(`duplicate parameter ${name}`);
    const v = tf.variable(value, true);
    value.dispose();
    logicalNames.set(v, name);
    this.params.set(name, v);
    return v;
  }

  addBuffer(name: string, value: tf.Tensor): tf.Variable {
    if (this.params.has(name) || this.buffers.has(name)) throw new Error(`duplicate buffer ${name}`);
    const v = tf.variable(value, false);
    value.dispose();
    logicalNames.set(v, name);
    this.buffers.set(name, v);
    return v;
  }

  trainable(): tf.Variable[] {
    return [...this.params.values()].filter((v) => v.trainable);
  }

  /** Number of trainable scalars. */
  countParams(): number {
    let n = 0;
    for (const v of this.params.values()) n += v.size;
    return n;
  }

  /** Freezes (or unfreezes) every parameter: stage 2 trains none of the backbone. */
  setTrainable(trainable: boolean): void {
    for (const v of this.params.values()) v.trainable = trainable;
  }

  /** Copies every parameter and buffer to host memory. */
  toArrays(): NamedArrays {
    const out: NamedArrays = {};
    for (const [name, v] of [...this.params, ...this.buffers]) {
      out[name] = { shape: [...v.shape], data: v.dataSync() as Float32Array };
    }
    return out;
  }

  /** Loads values saved by `toArrays`; every name and shape must match (`where` names the source). */
  fromArrays(arrays: NamedArrays, where: string): void {
    const mine = [...this.params, ...this.buffers];
    const missing = mine.filter(([n]) => !(n in arrays)).map(([n]) => n);
    const extra = Object.keys(arrays).filter((n) => !this.params.has(n) && !this.buffers.has(n));
    if (missing.length > 0 || extra.length > 0) {
      throw new ParamMismatchError(
        `${where}: parameters do not match this model` +
          (missing.length ? `; missing: ${missing.slice(0, 5).join(', ')}` : '') +
          (extra.length ? `; unexpected: ${extra.slice(0, 5).join(', ')}` : ''),
      );
    }
    for (const [name, v] of mine) {
      const a = arrays[name]!;
      if (a.shape.join('x') !== v.shape.join('x')) {
        throw new ParamMismatchError(
          `${where}: parameter ${name} has shape [${a.shape}], this model needs [${v.shape}]`,
        );
      }
      tf.tidy(() => v.assign(tf.tensor(a.data, a.shape)));
    }
  }

  dispose(): void {
    for (const v of this.params.values()) v.dispose();
    for (const v of this.buffers.values()) v.dispose();
    this.params.clear();
    this.buffers.clear();
  }
}

export class ParamMismatchError extends Error {
  override name = 'ParamMismatchError';
}

/** Normal(0, std) samples from a seeded generator, as a tensor. */
export function normalTensor(shape: number[], std: number, rng: Rng): tf.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.normal() * std;
  return tf.tensor(a, shape);
}

/** Uniform(-bound, bound) samples from a seeded generator, as a tensor. */
export function uniformTensor(shape: number[], bound: number, rng: Rng): tf.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = (2 * rng.next() - 1) * bound;
  return tf.tensor(a, shape);
}
