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

describe('what the package exports', () => {
  it('a library function for every command, and no internals', async () => {
    const api: Record<string, unknown> = await import('longtail');
    // demo, demo --seeds, train, train --resume, retrain, study samplers, report, predict, export,
    // predict --adapt-prior, data summary's loader.
    for (const name of [
      'runPipeline',
      'runSeeds',
      'runStage1',
      'resumeStage1',
      'retrain',
      'runSamplerStudy',
      'reportRuns',
      'loadModel',
      'exportModel',
      'adaptPrior',
      'loadDataset',
    ])
      assert.equal(typeof api[name], 'function', name);
    // Plumbing that a command or a loader uses and a user never calls (issue 24's review).
    for (const name of [
      'installWasmTrainingKernels',
      'encodeNpy',
      'IGNORED_CONFIG_KEYS',
      'lossOffset',
      'parseMethods',
      'checkMethodName',
      'numpySubset',
      'parseImageList',
      'readIdx',
    ])
      assert.ok(!(name in api), `${name} is exported`);
  });

  it('makeContract writes what checkContract reads back, and checkContract names the bad field', async () => {
    const { checkContract, makeContract } = await import('longtail');
    const c = makeContract({ size: 96, mean: [0.5, 0.4, 0.3], std: [0.2, 0.2, 0.2], layout: 'nhwc' });
    assert.deepEqual(checkContract(JSON.parse(JSON.stringify(c)), 'c.json'), c);
    assert.throws(
      () => checkContract({ ...c, resize: { kernel: 'triangle-antialias', mode: 'fill' } }, 'c.json'),
      { message: 'c.json: preprocessing resize.mode must be "shorter-centre-crop" or "stretch", got "fill"' },
    );
  });
});
