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

describe('calibration and label shift from the package', () => {
  it('fitTemperature recovers the temperature the labels were drawn at; EM finds no shift where there is none', async () => {
    const { arrayBlocks, createRng, emPrior, fitTemperature, softmaxRows, tvDistance } = await import(
      'longtail'
    );
    const rng = createRng(3);
    const [n, C, T] = [20000, 3, 2];
    const z = Float32Array.from({ length: n * C }, () => 3 * rng.normal());
    const p = softmaxRows(z, n, C, T);
    // Labels drawn from softmax(z / T): scores calibrated at T.
    const labels = Int32Array.from({ length: n }, (_, i) => {
      const u = rng.next();
      let c = 0;
      for (let acc = p[i * C]!; c < C - 1 && u >= acc; acc += p[i * C + ++c]!);
      return c;
    });
    const fit = fitTemperature(arrayBlocks(z, n, C), labels, C);
    assert.ok(Math.abs(fit.temperature - T) < 0.1, `T ${fit.temperature}`);
    // Calibrated posteriors of a sample with no shift: EM's estimate stays at the sample's class mix.
    const truth = [0, 1, 2].map((c) => labels.filter((y) => y === c).length / n);
    const em = emPrior(p, n, C, truth);
    assert.ok(tvDistance(em.prior, truth) < 0.02, `EM ${em.prior} vs ${truth}`);
  });
});
