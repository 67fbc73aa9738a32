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
});
