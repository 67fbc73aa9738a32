/** Batch-norm running statistics of a replica, read and written as plain arrays. */
import * as tf from '@tensorflow/tfjs-core';
import type { Model } from '../../models/model.ts';
import type { NamedArrays } from '../../models/params.ts';

export function getBnStats(m: Model): NamedArrays {
  const out: NamedArrays = {};
  for (const [name, v] of m.backbone.params.buffers)
    out[name] = { shape: [...v.shape], data: v.dataSync() as Float32Array };
  return out;
}

export function setBnStats(m: Model, stats: NamedArrays): void {
  for (const [name, a] of Object.entries(stats)) {
    const v = m.backbone.params.buffers.get(name);
    if (!v) throw new Error(`unknown batch-norm buffer ${name}`);
    tf.tidy(() => v.assign(tf.tensor(a.data, a.shape)));
  }
}

/** Element-wise mean of several replicas' statistics. */
export function averageStats(all: NamedArrays[]): NamedArrays {
  const out: NamedArrays = {};
  for (const name of Object.keys(all[0]!)) {
    const first = all[0]![name]!;
    const data = new Float32Array(first.data.length);
    for (const s of all) for (let i = 0; i < data.length; i++) data[i]! += s[name]!.data[i]! / all.length;
    out[name] = { shape: first.shape, data };
  }
  return out;
}
