/**
 * The typed readers of run files (io/run-folder.ts): each file is read and validated once by its
 * schema; a damaged one is refused naming the file, the field and the rule; an absent one is null.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { tempDir } from '../../test/helpers/tmp.ts';
import { DataError } from '../errors.ts';
import { readExternalBackbone, readStage1Summary, runFile } from './run-folder.ts';

const record = { epoch: 1, lr: 0.1, loss: 2.3, trainAcc: 10, valAcc: null, imagesPerSec: 100, seconds: 1 };

describe('typed run-file readers', () => {
  it('read stage1.json once, typed; refuse a damaged one; null when absent', () => {
    const dir = tempDir();
    assert.equal(readStage1Summary(dir), null);
    const summary = {
      history: [record],
      bestEpoch: 1,
      bestValAcc: null,
      seconds: 1,
      accuracyUnit: 'percent',
    };
    writeFileSync(runFile(dir, 'stage1'), JSON.stringify(summary));
    assert.deepEqual(readStage1Summary(dir), summary);
    writeFileSync(runFile(dir, 'stage1'), JSON.stringify({ ...summary, history: [{ ...record, epoch: 0 }] }));
    assert.throws(
      () => readStage1Summary(dir),
      (e: Error) =>
        e instanceof DataError &&
        e.message ===
          `${runFile(dir, 'stage1')}: not a stage-1 summary: history.0.epoch must be more than 0 (the run folder is damaged)`,
    );
    writeFileSync(runFile(dir, 'stage1'), '{"history": [');
    assert.throws(
      () => readStage1Summary(dir),
      /stage1\.json: not valid JSON \(.*; the run folder is damaged\)$/,
    );
  });

  it('read backbone.json typed, naming a missing field', () => {
    const dir = tempDir();
    assert.equal(readExternalBackbone(dir), null);
    const ext = {
      spec: { name: 'onnx', options: { path: '/m.onnx' } },
      file: '/m.onnx',
      sha256: 'ab',
      inputShape: [32, 32, 3],
      numClasses: 10,
    };
    writeFileSync(runFile(dir, 'backbone'), JSON.stringify(ext));
    assert.deepEqual(readExternalBackbone(dir), ext);
    const { sha256: _, ...noHash } = ext;
    writeFileSync(runFile(dir, 'backbone'), JSON.stringify(noHash));
    assert.throws(
      () => readExternalBackbone(dir),
      /backbone\.json: not a longtail backbone record: sha256 is required/,
    );
  });
});
