/** A backbone and its linear head: the stage-1 model. */
import { createRng } from '../random/rng.ts';
import type { Backbone, BackboneSpec } from './backbone.ts';
import { type LinearHead, makeLinearHead } from './linear.ts';
import type { NamedArrays } from './params.ts';
import { createBackbone, resolveBackboneSpec } from './registry.ts';

export interface Model {
  backboneName: string;
  /** The backbone as its registry entry builds it again (a worker, a checkpoint): name and parsed options. */
  backboneSpec: BackboneSpec;
  inputShape: readonly [number, number, number];
  numClasses: number;
  backbone: Backbone;
  head: LinearHead;
}

export function createModel(
  backbone: string | BackboneSpec,
  inputShape: readonly [number, number, number],
  numClasses: number,
  seed: number,
): Model {
  const spec = resolveBackboneSpec(backbone);
  const bb = createBackbone(spec, inputShape, seed);
  const head = makeLinearHead(bb.featureDim, numClasses, createRng(seed, 0x4ead));
  return { backboneName: bb.name, backboneSpec: spec, inputShape, numClasses, backbone: bb, head };
}

/** Every parameter and buffer of the model, backbone and head, under their logical names. */
export function modelArrays(m: Model): NamedArrays {
  return { ...m.backbone.params.toArrays(), ...m.head.params.toArrays() };
}

/**
 * Saved weights split into the backbone's and the head's: the one place that decides. A name
 * belongs to the head if the head has it; everything else is the backbone's (and an unknown
 * name is then reported by the backbone's load as unexpected).
 */
export function splitModelArrays(
  m: Model,
  arrays: NamedArrays,
): { backbone: NamedArrays; head: NamedArrays } {
  const backbone: NamedArrays = {};
  const head: NamedArrays = {};
  const { params, buffers } = m.head.params;
  for (const [k, v] of Object.entries(arrays)) (params.has(k) || buffers.has(k) ? head : backbone)[k] = v;
  return { backbone, head };
}

/** Loads weights saved by modelArrays; names and shapes must match. */
export function loadModelArrays(m: Model, arrays: NamedArrays, where: string): void {
  const { backbone, head } = splitModelArrays(m, arrays);
  m.backbone.params.fromArrays(backbone, where);
  m.head.params.fromArrays(head, where);
}

export function disposeModel(m: Model): void {
  m.backbone.dispose();
  m.head.dispose();
}
