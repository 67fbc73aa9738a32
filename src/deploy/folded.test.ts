/**
 * The folded classifiers record (classifiers.json beside classifiers.npz): what loadFolded refuses
 * in it, naming the file and field.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { tempDir } from '../../test/helpers/tmp.ts';
import type { MethodName } from '../classifiers/registry.ts';
import type { FoldedLinear, Stage2Classifier } from '../classifiers/types.ts';
import { ConfigError, DataError } from '../errors.ts';
import { loadFolded, saveFolded } from './folded.ts';

/** A stage-2 classifier that is only its folded layer (all loadFolded reads back). */
function folded(method: string, layer: FoldedLinear, C: number, d: number): Stage2Classifier {
  return { method, numClasses: C, dim: d, folded: () => layer } as unknown as Stage2Classifier;
}

describe('classifiers.json', () => {
  const C = 3;
  const d = 2;
  const weight = Float32Array.from([1, 0, 0, 1, -1, -1]);
  const bias = Float32Array.from([0.5, 0, -0.5]);
  const mean = Float32Array.from([0.25, -0.25]);
  const run = () => {
    const dir = tempDir();
    saveFolded(
      dir,
      new Map<MethodName, Stage2Classifier>([
        ['crt', folded('crt', { weight, bias, transform: { kind: 'none' } }, C, d)],
        ['ncm', folded('ncm', { weight, bias, transform: { kind: 'cl2n', mean } }, C, d)],
      ]),
      { stage1Run: null, backboneSha256: null, classNames: ['a', 'b', 'c'], dim: d },
    );
    return dir;
  };

  it('reads back each method with its transform', () => {
    const dir = run();
    const crt = loadFolded(dir, 'crt');
    assert.deepEqual(crt.layer.transform, { kind: 'none' });
    assert.deepEqual(crt.layer.weight, weight);
    const ncm = loadFolded(dir, 'ncm');
    assert.equal(ncm.layer.transform.kind, 'cl2n');
    assert.deepEqual((ncm.layer.transform as { mean: Float32Array }).mean, mean);
  });

  it('refuses an unknown or missing transform, naming the file and the field', () => {
    for (const bad of ['l2norm', 'NONE', 7, null, undefined]) {
      const dir = run();
      const json = join(dir, 'classifiers.json');
      const r = JSON.parse(readFileSync(json, 'utf8'));
      r.methods.crt.transform = bad;
      writeFileSync(json, JSON.stringify(r));
      const shown = bad === undefined ? 'missing' : JSON.stringify(bad);
      assert.throws(
        () => loadFolded(dir, 'crt'),
        (e: Error) =>
          e instanceof DataError &&
          e.message === `${json}: methods.crt.transform is ${shown}; expected one of none, l2n, cl2n`,
        String(bad),
      );
    }
  });

  it('a method named like an object property is not a method of the run', () => {
    const dir = run();
    for (const name of ['__proto__', 'constructor', 'toString'])
      assert.throws(
        () => loadFolded(dir, name),
        (e: Error) =>
          e instanceof ConfigError &&
          e.message === `${dir}: has no '${name}' classifier; this run has: crt, ncm`,
        name,
      );
  });

  /** Edits the run's classifiers.json and expects loadFolded(crt) to refuse with exactly `message`. */
  const refuses = (
    // biome-ignore lint/suspicious/noExplicitAny: a hand-edited JSON record, any shape
    edit: (r: Record<string, any>) => void,
    message: (json: string) => string,
    what: string,
  ) => {
    const dir = run();
    const json = join(dir, 'classifiers.json');
    const r = JSON.parse(readFileSync(json, 'utf8'));
    edit(r);
    writeFileSync(json, JSON.stringify(r));
    assert.throws(
      () => loadFolded(dir, 'crt'),
      (e: Error) => e instanceof DataError && e.message === message(json),
      what,
    );
  };

  it('refuses a method entry that is not an object (it was a TypeError, exit 1)', () => {
    for (const bad of [null, 3, 'crt', [1]])
      refuses(
        (r) => {
          r.methods.crt = bad;
        },
        (json) => `${json}: methods.crt is ${JSON.stringify(bad)}; expected an object`,
        String(bad),
      );
  });

  it('refuses a temperature that is not a finite number above 0 (it gave NaN predictions, exit 0)', () => {
    for (const bad of [0, -1, 'abc', null, '2'])
      refuses(
        (r) => {
          r.methods.crt.temperature = bad;
        },
        (json) =>
          `${json}: methods.crt.temperature is ${JSON.stringify(bad)}; expected a finite number above 0 (or none: 1)`,
        String(bad),
      );
    const dir = run();
    const json = join(dir, 'classifiers.json');
    const r = JSON.parse(readFileSync(json, 'utf8'));
    r.methods.crt.temperature = 2;
    writeFileSync(json, JSON.stringify(r));
    assert.deepEqual(
      loadFolded(dir, 'crt').layer.bias,
      bias.map((v) => v / 2),
    );
  });

  it('folds BCTS biases after the temperature (b / T + b_cal), and refuses a calibrationBias of the wrong length or with a non-number', () => {
    for (const [bad, got] of [
      [[1, 2], '2 entries'],
      [[0, null, 1], '3 entries'],
      [[0, Number.NaN, 1], '3 entries'],
      ['abc', '"abc"'],
    ] as const)
      refuses(
        (r) => {
          r.methods.crt.calibrationBias = bad;
        },
        (json) =>
          `${json}: methods.crt.calibrationBias is ${got}; expected a list of 3 finite numbers (one per class of classNames)`,
        String(bad),
      );
    const dir = run();
    const json = join(dir, 'classifiers.json');
    const r = JSON.parse(readFileSync(json, 'utf8'));
    r.methods.crt.temperature = 2;
    r.methods.crt.calibrationBias = [0.1, -0.3, 0.2];
    writeFileSync(json, JSON.stringify(r));
    const f = loadFolded(dir, 'crt');
    // 0.5 / 2 + 0.1, 0 / 2 - 0.3, -0.5 / 2 + 0.2 (in f32).
    assert.deepEqual(f.layer.bias, Float32Array.from([0.35, -0.3, -0.05]));
    assert.deepEqual(f.calibration.bias, [0.1, -0.3, 0.2]);
  });

  it('refuses a sourcePrior of the wrong length, with a negative, non-number or all-zero entries', () => {
    const cases: [unknown, string][] = [
      [[1], 'is 1 entries; expected a list of 3 numbers (one per class of classNames)'],
      [[0.2, 0.3, 0.2, 0.3], 'is 4 entries; expected a list of 3 numbers (one per class of classNames)'],
      ['abc', 'is "abc"; expected a list of 3 numbers (one per class of classNames)'],
      [[0.5, -0.1, 0.6], '[1] is -0.1; expected a finite number >= 0'],
      [[0.5, null, 0.5], '[1] is null; expected a finite number >= 0'],
      [[0, 0, 0], ' sums to 0; expected at least one entry above 0'],
    ];
    for (const [bad, tail] of cases)
      refuses(
        (r) => {
          r.methods.crt.sourcePrior = bad;
        },
        (json) =>
          `${json}: methods.crt.sourcePrior${tail.startsWith('[') || tail.startsWith(' ') ? '' : ' '}${tail}`,
        JSON.stringify(bad),
      );
  });

  it('refuses classNames, dim or trainCounts that disagree with the arrays in classifiers.npz', () => {
    refuses(
      (r) => {
        r.classNames = ['a', 'b'];
      },
      (json) =>
        `${join(json, '..', 'classifiers.npz')}: crt/weight has shape (3, 2) but ${json} (classNames: 2, dim: 2) needs (2, 2)`,
      'classNames',
    );
    refuses(
      (r) => {
        r.dim = 5;
      },
      (json) =>
        `${join(json, '..', 'classifiers.npz')}: crt/weight has shape (3, 2) but ${json} (classNames: 3, dim: 5) needs (3, 5)`,
      'dim',
    );
    refuses(
      (r) => {
        r.trainCounts = [5, 1];
      },
      (json) =>
        `${json}: trainCounts is 2 entries; expected a list of 3 numbers (one per class of classNames)`,
      'trainCounts',
    );
  });
});
