/**
 * Checkpoints: one `.npz` (readable by NumPy) holding `param/<name>` weights, `momentum/<name>`
 * optimiser buffers and `meta` (JSON as bytes): backbone, shapes, completed epochs, history,
 * best epoch, configuration. Written atomically (temp file, then rename). A checkpoint holding
 * NaN or infinity is refused on load: continuing from it would only spread the NaN.
 */

import { DataError } from '../errors.ts';
import { type ArraysToWrite, type NpyArray, readNpz, writeNpz } from '../io/npy.ts';
import type { BackboneSpec } from '../models/backbone.ts';
import type { NamedArrays } from '../models/params.ts';

export const CHECKPOINT_FORMAT = 'longtail-checkpoint';

export interface CheckpointMeta {
  format: typeof CHECKPOINT_FORMAT;
  version: 1;
  /** Name and options; a bare name in checkpoints written before backbones had options. */
  backbone: string | BackboneSpec;
  inputShape: [number, number, number];
  numClasses: number;
  /** Epochs completed. */
  epoch: number;
  [key: string]: unknown;
}

export interface Checkpoint {
  meta: CheckpointMeta;
  weights: NamedArrays;
  momentum: NamedArrays;
}

export function saveCheckpoint(path: string, ckpt: Checkpoint): void {
  const arrays: ArraysToWrite = {};
  for (const [k, v] of Object.entries(ckpt.weights)) arrays[`param/${k}`] = v;
  for (const [k, v] of Object.entries(ckpt.momentum)) arrays[`momentum/${k}`] = v;
  const bytes = new TextEncoder().encode(JSON.stringify(ckpt.meta));
  arrays.meta = { data: bytes, shape: [bytes.length] };
  writeNpz(path, arrays);
}

function toF32(a: NpyArray, where: string): { shape: number[]; data: Float32Array } {
  if (!(a.data instanceof Float32Array)) throw new DataError(`${where}: expected float32, got ${a.dtype}`);
  return { shape: a.shape, data: a.data };
}

/** The first NaN or infinite value among named arrays (in name order), or null when all are finite. */
export function firstNonFinite(arrays: NamedArrays): { name: string; index: number; value: number } | null {
  for (const [name, a] of Object.entries(arrays)) {
    const d = a.data;
    for (let i = 0; i < d.length; i++) if (!Number.isFinite(d[i]!)) return { name, index: i, value: d[i]! };
  }
  return null;
}

export function loadCheckpoint(path: string): Checkpoint {
  const m = readNpz(path);
  const metaArr = m.get('meta');
  if (metaArr === undefined) throw new DataError(`${path}: not a longtail checkpoint (no meta entry)`);
  let meta: CheckpointMeta;
  try {
    meta = JSON.parse(new TextDecoder().decode(metaArr.data as Uint8Array));
  } catch {
    throw new DataError(`${path}: checkpoint metadata is corrupt`);
  }
  if (meta.format !== CHECKPOINT_FORMAT)
    throw new DataError(`${path}: not a longtail checkpoint (format ${String(meta.format)})`);
  const weights: NamedArrays = {};
  const momentum: NamedArrays = {};
  for (const [k, v] of m) {
    if (k.startsWith('param/')) weights[k.slice(6)] = toF32(v, `${path}:${k}`);
    else if (k.startsWith('momentum/')) momentum[k.slice(9)] = toF32(v, `${path}:${k}`);
  }
  for (const [prefix, arrays] of [
    ['param', weights],
    ['momentum', momentum],
  ] as const) {
    const bad = firstNonFinite(arrays);
    if (bad) {
      throw new DataError(
        `${path}: ${prefix}/${bad.name} holds ${bad.value} (index ${bad.index}); a checkpoint must hold finite values (it was saved from a diverged run)`,
      );
    }
  }
  return { meta, weights, momentum };
}
