import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tfAll from '@tensorflow/tfjs';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../backend/backend.ts';
import { BACKBONE_NAMES, createBackbone } from '../models/registry.ts';
import { createRng } from '../random/rng.ts';
import { GraphBuilder, isExportable } from './graph.ts';

describe('graph-model export of every backbone', () => {
  before(async () => {
    await initBackend('wasm');
  });

  it('gives the same features as the backbone in evaluation mode (batch norm folded into the convolutions)', async () => {
    const rng = createRng(2);
    const shape: [number, number, number] = [32, 32, 3]; // the smallest every backbone takes
    let checked = 0;
    for (const name of BACKBONE_NAMES) {
      const bb = createBackbone(name, shape, 5);
      // Export is optional (a frozen external backbone has none); every one that has it is checked.
      if (!isExportable(bb)) {
        bb.dispose();
        continue;
      }
      checked++;
      // Non-trivial batch-norm statistics and affine parameters, so the folding is exercised.
      for (const [k, v] of [...bb.params.buffers, ...bb.params.params]) {
        if (!/bn/.test(k)) continue;
        const data = Float32Array.from({ length: v.size }, () =>
          k.endsWith('running_var') || k.endsWith('weight') ? 0.5 + rng.next() : rng.normal() * 0.3,
        );
        tf.tidy(() => v.assign(tf.tensor(data, v.shape)));
      }
      const g = new GraphBuilder();
      const out = bb.exportGraph(g, g.placeholder('images', [-1, ...shape]));
      const { modelJson, weights } = g.build(
        { input: 'images', inputShape: [-1, ...shape], output: out, outputShape: [-1, bb.featureDim] },
        {},
      );
      const model = await tfAll.loadGraphModel(
        tfAll.io.fromMemory({
          ...modelJson,
          weightSpecs: modelJson.weightsManifest[0]!.weights,
          weightData: weights.buffer as ArrayBuffer,
        } as never),
      );
      const x = Float32Array.from({ length: 3 * shape[0] * shape[1] * shape[2] }, () => rng.next());
      const theirs = (model.execute(tfAll.tensor4d(x, [3, ...shape]), out) as tfAll.Tensor).dataSync();
      const mine = tf.tidy(() => bb.features(tf.tensor4d(x, [3, ...shape]), false)).dataSync();
      let err = 0;
      let scale = 0;
      for (let i = 0; i < mine.length; i++) {
        err = Math.max(err, Math.abs(mine[i]! - theirs[i]!));
        scale = Math.max(scale, Math.abs(mine[i]!));
      }
      assert.ok(err <= 1e-4 * Math.max(1, scale), `${name}: max difference ${err} (scale ${scale})`);
      bb.dispose();
    }
    assert.ok(checked > 0, 'no exportable backbone in the registry');
  });
});
