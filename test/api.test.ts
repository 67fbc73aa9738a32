import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
// The package by its own name, as a user imports it (package.json "exports").
import {
  DEFAULT_JOINT_CONFIG,
  disposeModel,
  featuresFromModel,
  initBackend,
  loadDataset,
  runStage2,
  trainJoint,
} from 'longtail';

describe('the library API of the README', () => {
  it('runs the README example end to end on a small slice', async () => {
    const info = await initBackend();
    assert.equal(info.name, 'wasm');
    const data = await loadDataset('fashion-mnist-lt', { maxPerClass: 30, imbalance: 3 });
    const { model } = await trainJoint(data, { ...DEFAULT_JOINT_CONFIG, epochs: 1, batchSize: 32 });
    const features = featuresFromModel(model, { ...data, test: data.val! });
    const { results } = runStage2({ features }, ['joint', 'ncm', 'crt', 'tau-norm', 'lws'], {
      settings: { crtEpochs: 1, lwsEpochs: 1 },
    });
    assert.deepEqual(
      results.map((r) => r.label),
      ['Joint', 'NCM', 'cRT', 'tau-norm', 'LWS'],
    );
    for (const r of results) assert.ok(r.overall >= 0 && r.overall <= 100);
    disposeModel(model);
  });
});
