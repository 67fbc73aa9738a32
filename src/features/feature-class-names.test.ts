/** A feature file's optional `class_names` (UTF-8 JSON in a |u1 array, as export_backbone.py writes it). */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { tempDir } from '../../test/helpers/tmp.ts';
import { writeNpz } from '../io/npy.ts';
import { loadFeatureFile, saveFeatureFile } from './feature-set.ts';

const dir = tempDir();
const utf8 = (v: unknown) => new TextEncoder().encode(typeof v === 'string' ? v : JSON.stringify(v));

function file(name: string, classNames?: Uint8Array): string {
  const p = join(dir, name);
  writeNpz(p, {
    train_features: { data: new Float32Array([1, 0, 0, 1, 1, 1]), shape: [3, 2] },
    train_labels: { data: new Int32Array([0, 1, 2]), shape: [3] },
    test_features: { data: new Float32Array([1, 0, 0, 1, 1, 1]), shape: [3, 2] },
    test_labels: { data: new Int32Array([2, 1, 0]), shape: [3] },
    ...(classNames ? { class_names: { data: classNames, shape: [classNames.length] } } : {}),
  });
  return p;
}

describe('feature-file class names', () => {
  it('are read in label order, any characters; a given list wins; round-trip through our writer', () => {
    const names = ['cat', 'émeu', 'a "b"\\c', '雪'].slice(0, 3);
    const p = file('named.npz', utf8(names));
    assert.deepEqual(loadFeatureFile(p).classNames, names);
    assert.deepEqual(loadFeatureFile(p, ['x', 'y', 'z']).classNames, ['x', 'y', 'z']);
    assert.deepEqual(loadFeatureFile(file('plain.npz')).classNames, ['0', '1', '2']);
    const again = join(dir, 'again.npz');
    saveFeatureFile(again, loadFeatureFile(p));
    assert.deepEqual(loadFeatureFile(again).classNames, names);
  });

  it('are refused when they are not a JSON list of unique strings, one a class', () => {
    for (const [name, bytes, msg] of [
      ['count.npz', utf8(['a', 'b']), /class_names names 2 classes, the file has 3/],
      ['dup.npz', utf8(['a', 'b', 'a']), /names class "a" twice/],
      ['json.npz', utf8('[a, b'), /class_names is not UTF-8 JSON/],
      ['kind.npz', utf8([1, 2, 3]), /must hold a JSON list of strings/],
      ['bytes.npz', new Uint8Array([0x5b, 0x22, 0xff, 0x22, 0x5d]), /is not UTF-8 JSON/],
    ] as const) {
      assert.throws(
        () => loadFeatureFile(file(name, bytes)),
        (e: Error) => {
          assert.match(e.message, new RegExp(`${name}: class_names`));
          assert.match(e.message, msg);
          return true;
        },
      );
    }
  });
});
