/**
 * A split whose decoded images would not fit one typed array (iNaturalist 2018's 437,513 training
 * images at --image-size 64 need 5.38 GB; V8 allows 2^32 bytes) is refused in one line, before
 * any image is looked up, for list files and image folders alike.
 */
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { tempDir } from '../../test/helpers/tmp.ts';
import { DataError } from '../errors.ts';
import { checkSplitFits } from './decode-images.ts';
import { loadImageFolder } from './image-folder.ts';
import { loadListDataset } from './image-list.ts';

describe('a split too large for one typed array', () => {
  it('an iNaturalist-length list (437,513 lines, 8,142 classes) is refused before any image is looked up', async () => {
    const dir = tempDir();
    const n = 437_513;
    const C = 8_142;
    // No image exists: a refusal that looked them up would report them missing instead.
    const lines = Array.from({ length: n }, (_, i) => `img/${i}.jpg ${i % C}`);
    const train = join(dir, 'train.txt');
    const test = join(dir, 'test.txt');
    writeFileSync(train, `${lines.join('\n')}\n`);
    writeFileSync(test, 'img/t.jpg 0\n');
    await assert.rejects(
      loadListDataset({ trainList: train, testList: test, dataRoot: join(dir, 'root'), imageSize: 64 }),
      (e: Error) =>
        e instanceof DataError &&
        e.message ===
          `${train}: 437513 images at --image-size 64 need 5376159744 bytes (5.38 GB) in one array, ` +
            'more than the 4294967296 bytes (4.29 GB) one typed array holds; use --image-size 57 or less, ' +
            'or extract features with your own backbone and train the classifiers on them (longtail retrain --features FILE)',
    );
    // The largest size it names fits, and one more does not.
    assert.doesNotThrow(() => checkSplitFits(n, 57, train));
    assert.throws(() => checkSplitFits(n, 58, train), DataError);
  });

  it('an image folder too large is refused before any image is read', async () => {
    const dir = tempDir();
    // 1,400 images at --image-size 1024 need 4.40 GB; the files are empty (unreadable as images).
    for (const [split, count] of [
      ['train', 700],
      ['test', 1],
    ] as const)
      for (const c of ['a', 'b']) {
        mkdirSync(join(dir, split, c), { recursive: true });
        for (let i = 0; i < count; i++) writeFileSync(join(dir, split, c, `${i}.png`), '');
      }
    await assert.rejects(
      loadImageFolder({ dataDir: dir, imageSize: 1024, valPerClass: 0 }),
      (e: Error) =>
        e instanceof DataError &&
        e.message.startsWith(
          `${join(dir, 'train')}: 1400 images at --image-size 1024 need 4404019200 bytes`,
        ) &&
        e.message.includes('use --image-size 1011 or less'),
    );
  });
});
