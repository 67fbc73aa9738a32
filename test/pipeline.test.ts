import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { initBackend } from '../src/backend/backend.ts';
import { methodEntries, methodNames } from '../src/classifiers/registry.ts';
import { PipelineConfigSchema } from '../src/config/schema.ts';
import { runPipeline } from '../src/pipeline/run.ts';
import { checkReportInBrowser, findChromium } from '../src/report/browser-check.ts';
import { type RunResults, RunResultsSchema } from '../src/report/results.ts';
import { runCli } from './helpers/cli.ts';
import { tempDir } from './helpers/tmp.ts';

const FIX = join(import.meta.dirname, 'fixtures');
const LIVE_CHARTS = ['live-class-accuracy', 'live-confusion', 'live-reliability'];
const CHARTS = [
  'weight-norms',
  'split-accuracy',
  'shifted-priors',
  'prior-correction',
  'class-counts',
  'training-curves',
  'f1-ece',
  'per-class-accuracy',
  'confusion',
];
// Every method tuned on validation adds its sweep chart.
const SWEEPS = methodEntries()
  .filter((e) => e.tuning)
  .map((e) => `${e.name}-sweep`);

describe('the demo pipeline end to end on a tiny configuration', () => {
  const out = tempDir();
  let r: RunResults;
  before(async () => {
    await initBackend('wasm');
    const cfg = PipelineConfigSchema.parse({
      maxPerClass: 40,
      imbalance: 10,
      epochs: 1,
      batchSize: 32,
      crtEpochs: 1,
      lwsEpochs: 1,
      bsEpochs: 1,
      wbEpochs: 1,
    });
    r = await runPipeline(cfg, out);
  });

  it('writes every artifact, and results.json is valid against its schema', () => {
    for (const f of [
      'results.json',
      'results.md',
      'report.html',
      'config.json',
      'checkpoint.npz',
      'best.npz',
      'features.npz',
      'epochs.jsonl',
    ]) {
      assert.ok(existsSync(join(out, f)), f);
    }
    for (const c of [...CHARTS, ...SWEEPS]) {
      for (const ext of ['svg', 'png', 'vl.json'])
        assert.ok(existsSync(join(out, 'charts', `${c}.${ext}`)), `${c}.${ext}`);
    }
    const json = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8'));
    RunResultsSchema.parse(json);
    assert.deepEqual(
      json.methods.map((m: { method: string }) => m.method),
      methodNames(),
    );
    // NumPy: [int(40 * (0.1 ** (i / 9.0))) for i in range(10)]
    assert.deepEqual(json.dataset.trainCounts, [40, 30, 23, 18, 14, 11, 8, 6, 5, 4]);
    assert.equal(json.dataset.testSize, 10000);
    // n_max 40: no class has more than 100 images, so many-shot is absent, not 0.
    for (const m of json.methods) assert.equal(m.many, null);
    const md = readFileSync(join(out, 'results.md'), 'utf8');
    assert.match(md, /\| Joint \| \d+\.\d \| - \|/);
    const html = readFileSync(join(out, 'report.html'), 'utf8');
    assert.match(html, /<svg/);
    // Self-contained: its one script is inline (the live section), nothing is fetched.
    assert.doesNotMatch(html, /<script[^>]*\ssrc=|<link|https?:\/\/(?!www\.w3\.org)/);
  });

  it('draws charts whose specs hold the data they claim', () => {
    const spec = (name: string) => JSON.parse(readFileSync(join(out, 'charts', `${name}.vl.json`), 'utf8'));
    const wn = spec('weight-norms').data.values as {
      method: string;
      norm: number;
      trainCount: number;
      rank: number;
    }[];
    assert.equal(wn.length, 10 * methodNames().length); // one point per class per method
    const joint = r.methods.find((m) => m.method === 'joint')!;
    const jointPts = wn.filter((p) => p.method === 'Joint').sort((a, b) => a.rank - b.rank);
    assert.deepEqual(
      jointPts.map((p) => p.trainCount),
      [40, 30, 23, 18, 14, 11, 8, 6, 5, 4],
    );
    assert.ok(Math.abs(jointPts[0]!.norm - joint.weightNorms[0]!) < 1e-9);
    for (const s of SWEEPS) {
      const sweep = spec(s);
      const tuned = r.methods.find((m) => `${m.method}-sweep` === s)!.tuned!;
      assert.equal(
        new Set(sweep.data.values.map((p: { value: number }) => p.value)).size,
        tuned.sweep.length,
      );
      assert.deepEqual(sweep.layer[1].data.values, [{ value: tuned.value }]);
    }
    const bars = spec('split-accuracy').data.values as { method: string; split: string; accuracy: number }[];
    assert.equal(bars.length, methodNames().length * 3); // All, medium, few per method (many is absent)
    assert.equal(
      bars.find((b) => b.method === 'cRT' && b.split === 'All')!.accuracy,
      r.methods.find((m) => m.method === 'crt')!.overall,
    );
    assert.equal(spec('class-counts').data.values.length, 10);
    assert.equal(
      spec('training-curves').data.values.filter((v: { metric: string }) => v.metric === 'train loss').length,
      1,
    );
  });

  it('report.html loads in headless Chromium with no console error, no network and every chart visible', {
    skip: findChromium() ? false : 'Chromium is not installed (.ci/run installs it with apt-get)',
  }, async () => {
    const c = await checkReportInBrowser(join(out, 'report.html'));
    assert.deepEqual(c.consoleErrors, []);
    assert.deepEqual(c.failedRequests, []);
    // The live section's three canvases, then the static charts.
    assert.deepEqual(
      c.charts.map((x) => x.id),
      [...LIVE_CHARTS, ...CHARTS, ...SWEEPS],
    );
    for (const x of c.charts) assert.ok(x.width > 200 && x.height > 150, `${x.id} is ${x.width}x${x.height}`);
  });

  it('retrain --run re-runs stage 2 on the saved run and prints JSON', () => {
    const dir = tempDir();
    const res = runCli([
      'retrain',
      '--run',
      out,
      '--method',
      'tau-norm,ncm',
      '--mode',
      'features',
      '--out',
      dir,
      '--json',
    ]);
    assert.equal(res.code, 0, res.stderr);
    const j = JSON.parse(res.stdout);
    assert.deepEqual(
      j.methods.map((m: { method: string }) => m.method),
      ['ncm', 'tau-norm'],
    );
    const ncmHere = r.methods.find((m) => m.method === 'ncm')!;
    // NCM is deterministic: the same features give the same accuracy.
    assert.equal(j.methods[0].overall, ncmHere.overall);
    assert.equal(j.methods[0].many, null);
    assert.ok(existsSync(join(dir, 'report.html')));
  });
});

describe('retrain on a feature file from the command line', () => {
  it('prints the table, and --json gives per method accuracy, tau and mode', () => {
    const dir = tempDir();
    const res = runCli([
      'retrain',
      '--features',
      join(FIX, 'features_golden.npz'),
      '--out',
      dir,
      '--json',
      '--crt-epochs',
      '2',
      '--lws-epochs',
      '2',
    ]);
    assert.equal(res.code, 0, res.stderr);
    const j = JSON.parse(res.stdout);
    const byName = Object.fromEntries(j.methods.map((m: { method: string }) => [m.method, m]));
    assert.deepEqual(byName['tau-norm'].tuned, { tau: 0.9 });
    assert.equal(byName.crt.mode, 'features');
    assert.equal(byName.ncm.overall, 95.5); // NumPy: 0.955
    assert.equal(byName.joint.overall, 74); // NumPy: 0.74
    const text = runCli([
      'retrain',
      '--features',
      join(FIX, 'features_golden.npz'),
      '--method',
      'joint,ncm',
      '--out',
      tempDir(),
    ]);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /method\s+All\s+Many\s+Medium\s+Few/);
    assert.match(text.stdout, /NCM\s+95\.5/);
  });

  it('gives clear errors with exit code 2 for bad input', () => {
    const a = runCli([
      'retrain',
      '--features',
      join(FIX, 'npy', 'tiny_features.npz'),
      '--method',
      'tau-norm',
      '--out',
      tempDir(),
    ]);
    assert.equal(a.code, 2);
    assert.match(a.stderr, /tau-norm needs the stage-1 classifier/);
    const t = runCli(['retrain', '--features', join(FIX, 'npy', 'tiny_features.npz'), '--threads', '0']);
    assert.equal(t.code, 2);
    assert.match(t.stderr, /^longtail: --threads 0: must be at least 1\n$/);
    const all = runCli([
      'retrain',
      '--features',
      join(FIX, 'npy', 'tiny_features.npz'),
      '--out',
      tempDir(),
      '--json',
      '--crt-epochs',
      '1',
      '--bs-epochs',
      '1',
      '--stage2-batch-size',
      '2',
    ]);
    assert.equal(all.code, 0, all.stderr);
    assert.deepEqual(
      JSON.parse(all.stdout).methods.map((m: { method: string }) => m.method),
      methodEntries()
        .filter((e) => !e.needsClassifier)
        .map((e) => e.name),
    );
    const skipped = methodEntries()
      .filter((e) => e.needsClassifier)
      .map((e) => e.name);
    assert.match(all.stderr, new RegExp(`no stage-1 classifier .* skipping ${skipped.join(', ')}`));
    const b = runCli(['retrain', '--method', 'crt']);
    assert.equal(b.code, 2);
    assert.match(b.stderr, /exactly one of --run RUN or --features/);
    const c = runCli(['retrain', '--features', join(FIX, 'features_golden.npz'), '--method', 'svm']);
    assert.equal(c.code, 2);
    assert.match(c.stderr, /unknown method 'svm'/);
    const d = runCli(['train', '--epochs', 'ten']);
    assert.equal(d.code, 2);
    assert.match(d.stderr, /--epochs expects an integer, got 'ten'/);
    const e = runCli(['train', '--backbone', 'vgg', '--out', tempDir()]);
    assert.equal(e.code, 2);
    assert.match(
      e.stderr,
      /--backbone vgg: unknown backbone; valid: resnet8, resnet20, resnet32, resnet10, or onnx:PATH/,
    );
    for (const x of [a, b, c, d, e]) assert.doesNotMatch(x.stderr, /\n\s+at /); // no stack traces
  });
});
