/**
 * The classifier contract, run over every registry entry (no method named by hand): logits shape,
 * folded() ranking the classes as logits() does, one weight norm per class, the stage-1 classifier
 * requirement as declared, a sweep exactly when the entry tunes, options validated by the schema.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { z } from 'zod';
import { initBackend } from '../backend/backend.ts';
import { argmaxRows } from '../eval/metrics.ts';
import { loadFeatureFile } from '../features/feature-set.ts';
import { foldedLogits } from './linear-ops.ts';
import {
  createClassifier,
  methodEntries,
  methodNames,
  parseMethods,
  registerClassifier,
  unregisterClassifier,
} from './registry.ts';

const FIX = join(import.meta.dirname, '../../test/fixtures');
// Short training for every trained head: the contract, not the accuracy, is under test.
const SHORT = Object.fromEntries(
  methodEntries().flatMap((e) =>
    Object.keys(e.options.shape)
      .filter((k) => k.endsWith('Epochs'))
      .map((k) => [k, 2]),
  ),
);

describe('every registered stage-2 method keeps the classifier contract', () => {
  before(async () => {
    await initBackend('wasm');
  });

  it('logits [n, C], folded() with the same argmax and logits, C weight norms, tuned iff tuning', () => {
    const fs = loadFeatureFile(join(FIX, 'features_golden.npz'));
    const n = fs.test.labels.length;
    const C = fs.numClasses;
    for (const e of methodEntries()) {
      const clf = createClassifier(e.name, { features: fs, seed: 1, head: { batchSize: 32 } }, SHORT);
      assert.equal(clf.method, e.name);
      const a = clf.logits(fs.test.features, n);
      assert.equal(a.length, n * C, e.name);
      const f = clf.folded();
      assert.equal(f.weight.length, C * fs.dim, e.name);
      assert.equal(f.bias.length, C, e.name);
      const b = foldedLogits(f, fs.test.features, n, fs.dim, C);
      assert.deepEqual([...argmaxRows(a, n, C)], [...argmaxRows(b, n, C)], e.name);
      // The deployed layer's scores are the run's own (NCM's distances included), so a calibration
      // fitted on one holds for the other.
      for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i]! - b[i]!) < 1e-4, `${e.name} logit ${i}`);
      const norms = clf.weightNorms();
      assert.equal(norms.length, C, e.name);
      assert.ok(
        norms.every((v) => Number.isFinite(v) && v >= 0),
        e.name,
      );
      assert.equal(clf.tuned !== undefined, e.tuning !== undefined, `${e.name}: tuned iff the entry tunes`);
      if (clf.tuned) {
        assert.equal(clf.tuned.param, e.tuning!.param);
        assert.deepEqual(
          clf.tuned.sweep.map((p) => p.value),
          [...e.tuning!.grid],
        );
        assert.equal(clf.tuned.chosenOn, 'val');
      }
    }
  });

  it('NCM with cosine is linear too: folded logits equal its logits', () => {
    const fs = loadFeatureFile(join(FIX, 'features_golden.npz'));
    const cos = createClassifier('ncm', { features: fs }, { ncmDistance: 'cos' });
    const n = fs.test.labels.length;
    const a = cos.logits(fs.test.features, n);
    const b = foldedLogits(cos.folded(), fs.test.features, n, fs.dim, fs.numClasses);
    for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i]! - b[i]!) < 1e-5);
  });

  it('a method that needs the stage-1 classifier says so without it; the others run', () => {
    const fs = { ...loadFeatureFile(join(FIX, 'features_golden.npz')), classifier: null };
    for (const e of methodEntries()) {
      const make = () => createClassifier(e.name, { features: fs, seed: 1, head: { batchSize: 32 } }, SHORT);
      if (e.needsClassifier) assert.throws(make, new RegExp(`${e.name} needs the stage-1 classifier`));
      else assert.equal(make().method, e.name);
    }
  });

  it('entries have unique option keys, each with a description; options are validated by the schema', () => {
    const keys = methodEntries().flatMap((e) => Object.keys(e.options.shape));
    assert.equal(new Set(keys).size, keys.length);
    for (const e of methodEntries())
      for (const [k, s] of Object.entries(e.options.shape))
        assert.ok((s as z.ZodType).description, `${e.name}.${k} has no description (its --help text)`);
    const fs = loadFeatureFile(join(FIX, 'features_golden.npz'));
    assert.throws(
      () => createClassifier('tau-norm', { features: fs }, { tau: 3 }),
      /tau-norm: tau: must be at most 2 \(got 3\)/,
    );
    // Nested per-method settings (a config file's `methodOptions`) count too.
    const t = createClassifier('tau-norm', { features: fs }, { methodOptions: { 'tau-norm': { tau: 0.5 } } });
    assert.deepEqual([t.tuned!.value, t.tuned!.chosenOn], [0.5, 'given']);
  });

  it('registerClassifier adds a method everywhere names are parsed, in its order; refuses clashes', () => {
    const entry = {
      name: 'test-zero',
      label: 'Zero',
      description: 'all-zero logits',
      order: 15,
      needsClassifier: false,
      trains: false,
      options: z.object({ zeroScale: z.number().default(1).describe('unused') }),
      create: () => {
        throw new Error('not built here');
      },
    };
    registerClassifier(entry);
    try {
      assert.deepEqual(parseMethods('ncm,test-zero,joint'), ['joint', 'test-zero', 'ncm']);
      assert.ok(parseMethods('all').includes('test-zero'));
      assert.equal(methodNames()[1], 'test-zero');
      assert.throws(() => registerClassifier(entry), /a method named 'test-zero' exists already/);
      assert.throws(
        () => registerClassifier({ ...entry, name: 'test-two', options: z.object({ tau: z.number() }) }),
        /option 'tau' of 'test-two' is taken by 'tau-norm'/,
      );
    } finally {
      unregisterClassifier('test-zero');
    }
    assert.throws(() => parseMethods('test-zero'), /unknown method 'test-zero'/);
  });
});
