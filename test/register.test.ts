/**
 * A method defined here with registerClassifier() (the library API) appears in the results table,
 * results.json, the report (its own chart included) and the folded export, with no other change.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  defineMethod,
  initBackend,
  joint,
  linearClassifier,
  RetrainConfigSchema,
  registerClassifier,
  retrain,
  type Stage2Classifier,
  unregisterClassifier,
} from 'longtail';
import { z } from 'zod';
import { loadFolded } from '../src/deploy/folded.ts';
import { readNpz } from '../src/io/npy.ts';
import { textTable } from '../src/report/table.ts';
import { tempDir } from './helpers/tmp.ts';

const FIX = join(import.meta.dirname, 'fixtures');

/** Joint with every logit scaled by `halfScale` and the bias halved: a linear method of its own. */
const halfMethod = defineMethod({
  name: 'half-bias',
  label: 'Half bias',
  description: 'joint with its bias halved (a test method)',
  order: 95,
  needsClassifier: true,
  trains: false,
  options: z.object({ halfScale: z.number().positive().default(2).describe('half-bias: weight scale') }),
  create(ctx, o): Stage2Classifier {
    const j = joint(ctx.features);
    const f = j.folded();
    return linearClassifier(
      'half-bias',
      {
        weight: f.weight.map((v) => o.halfScale * v),
        bias: f.bias.map((v) => v / 2),
        transform: { kind: 'none' },
      },
      j.numClasses,
      j.dim,
      { halfScale: o.halfScale },
    );
  },
  charts: (r) => ({
    norms: {
      title: `${r.label}: weight norms`,
      data: { values: r.weightNorms.map((norm, c) => ({ c, norm })) },
      mark: 'bar',
      encoding: { x: { field: 'c', type: 'ordinal' }, y: { field: 'norm', type: 'quantitative' } },
    },
  }),
});

describe('a method added with registerClassifier', () => {
  before(async () => {
    await initBackend('wasm');
    registerClassifier(halfMethod);
  });
  after(() => unregisterClassifier('half-bias'));

  it('is in the table, results.json, the report and the folded classifiers, with its options', async () => {
    const out = tempDir();
    const r = await retrain(
      RetrainConfigSchema.parse({
        features: join(FIX, 'features_golden.npz'),
        methods: 'joint,half-bias',
        methodOptions: { 'half-bias': { halfScale: 3 } },
      }),
      { out },
    );
    assert.deepEqual(
      r.methods.map((m) => m.method),
      ['joint', 'half-bias'],
    );
    assert.match(textTable(r), /Half bias\s+\d+\.\d/);
    const json = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8'));
    const m = json.methods.find((x: { method: string }) => x.method === 'half-bias');
    assert.equal(m.label, 'Half bias');
    assert.equal(m.details.halfScale, 3);
    assert.match(readFileSync(join(out, 'results.md'), 'utf8'), /\| Half bias \| \d+\.\d/);
    const html = readFileSync(join(out, 'report.html'), 'utf8');
    assert.match(html, /Half bias/);
    assert.match(html, /id="half-bias-norms"/);
    assert.ok(existsSync(join(out, 'charts', 'half-bias-norms.svg')));
    // Folded: classifiers.json names it and classifiers.npz holds its layer.
    const record = JSON.parse(readFileSync(join(out, 'classifiers.json'), 'utf8'));
    const entry = record.methods['half-bias'];
    assert.equal(entry.transform, 'none');
    // Calibrated on validation (the default): a positive temperature and the prior it was fitted under.
    assert.ok(Number.isFinite(entry.temperature) && entry.temperature > 0);
    assert.equal(entry.sourcePrior.length, 5);
    assert.ok(Math.abs(entry.sourcePrior.reduce((a: number, b: number) => a + b, 0) - 1) < 1e-9);
    assert.ok(readNpz(join(out, 'classifiers.npz')).has('half-bias/weight'));
    const f = loadFolded(out, 'half-bias');
    const jf = loadFolded(out, 'joint');
    // The layers come with their temperatures folded in (W / T): undo them before comparing.
    for (let i = 0; i < f.layer.weight.length; i++)
      assert.ok(
        Math.abs(
          f.layer.weight[i]! * f.calibration.temperature -
            3 * jf.layer.weight[i]! * jf.calibration.temperature,
        ) < 1e-4,
      );
  });

  it('refuses its own options when invalid, naming the method, before writing anything', async () => {
    const out = join(tempDir(), 'never');
    await assert.rejects(
      retrain(
        RetrainConfigSchema.parse({
          features: join(FIX, 'features_golden.npz'),
          methods: 'half-bias',
          methodOptions: { 'half-bias': { halfScale: -1 } },
        }),
        { out },
      ),
      /half-bias: halfScale: must be more than 0 \(got -1\)/,
    );
    assert.equal(existsSync(out), false);
  });
});
