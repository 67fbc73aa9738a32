/** A backbone and its linear head: the stage-1 model. */
import { createRng } from '../random/rng.ts';
import { type LinearHead, makeLinearHead } from './linear.ts';
import type { NamedArrays } from './params.ts';
import { createBackbone } from './registry.ts';
import type { Backbone } from './resnet.ts';

export interface Model {
  backboneName: string;
  inputShape: readonly [number, number, number];
  numClasses: number;
  backbone: Backbone;
  head: LinearHead;
}

export function createModel(
  backboneName: string,
  inputShape: readonly [number, number, number],
  numClasses: number,
  seed: number,
): Model {
  const backbone = createBackbone(backboneName, inputShape, seed);
  const head = makeLinearHead(backbone.featureDim, numClasses, createRng(seed, 0x4ead));
  return { backboneName, inputShape, numClasses, backbone, head };
}

export function modelArrays(m: Model): NamedArrays {
  return { ...m.backbone.params.toArrays(), ...m.head.params.toArrays() };
}

/** Loads weights saved by modelArrays; names and shapes must match. */
export function loadModelArrays(m: Model, arrays: NamedArrays, where: string): void {
  const bb: NamedArrays = {};
  const hd: NamedArrays = {};
  for (const [k, v] of Object.entries(arrays)) (k.startsWith('fc.') ? hd : bb)[k] = v;
  m.backbone.params.fromArrays(bb, where);
  m.head.params.fromArrays(hd, where);
}

export function disposeModel(m: Model): void {
  m.backbone.dispose();
  m.head.dispose();
}
