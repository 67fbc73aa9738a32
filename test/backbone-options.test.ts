/**
 * A backbone's own option travels everywhere with no code but its registry entry: resnet8's
 * `width` is the flag --resnet8-width with its help line, is recorded in config.json, is built by
 * the data-parallel worker (a replica of another width would refuse the weights it is sent), is
 * saved in the checkpoint as a BackboneSpec, and is what a resume continues with.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { Command } from 'commander';
import { initBackend } from '../src/backend/backend.ts';
import { addTrainOptions } from '../src/cli/options.ts';
import { TrainConfigSchema } from '../src/config/schema.ts';
import { disposeModel } from '../src/models/model.ts';
import { backboneSpec } from '../src/models/registry.ts';
import { resumeStage1, runStage1 } from '../src/pipeline/stage1.ts';
import { loadCheckpoint } from '../src/train/checkpoint.ts';
import { tempDir } from './helpers/tmp.ts';

const meta = (file: string) => loadCheckpoint(file).meta;

describe('a backbone option (resnet8 width) from flag to worker, checkpoint and resume', () => {
  before(async () => {
    await initBackend('wasm');
  });

  it('is a flag with its help line and default, and a spec option parsed by the entry', () => {
    const cmd = addTrainOptions(new Command());
    const o = cmd.options.find((x) => x.long === '--resnet8-width')!;
    assert.match(o.description, /^resnet8: channels of the first stage .* \(default: 16\)$/);
    assert.equal(o.helpGroupHeading, 'Backbone:');
    assert.deepEqual(backboneSpec(TrainConfigSchema.parse({})), { name: 'resnet8', options: { width: 16 } });
    assert.deepEqual(backboneSpec(TrainConfigSchema.parse({ resnet8Width: 4, resnet20Width: 9 })), {
      name: 'resnet8',
      options: { width: 4 },
    });
    assert.throws(() => TrainConfigSchema.parse({ resnet8Width: 0 }));
  });

  it('reaches config.json, the worker (2 threads), the checkpoint and a resume', async () => {
    const out = tempDir();
    const cfg = TrainConfigSchema.parse({
      maxPerClass: 20,
      imbalance: 10,
      epochs: 1,
      batchSize: 32,
      threads: 2,
      resnet8Width: 4,
    });
    const first = await runStage1(cfg, out);
    // Width 4: features of 4 * 4 = 16, not the default 64.
    assert.equal(first.features.dim, 16);
    disposeModel(first.model);
    const saved = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')) as Record<string, unknown>;
    assert.equal(saved.resnet8Width, 4);
    const m = meta(join(out, 'checkpoint.npz'));
    assert.deepEqual(m.backbone, { name: 'resnet8', options: { width: 4 } });
    // Extended by one epoch from the saved settings alone: the spec comes back from config.json.
    const again = await resumeStage1(out, { epochs: 2 });
    assert.equal(again.features.dim, 16);
    assert.equal(again.summary.history.length, 2);
    disposeModel(again.model);
    assert.equal(meta(join(out, 'checkpoint.npz')).epoch, 2);
    // A resume given another width is refused, naming the setting.
    await assert.rejects(
      resumeStage1(out, { epochs: 3, resnet8Width: 8 } as Parameters<typeof resumeStage1>[1]),
      /resnet8Width 8 \(the run has 4\)/,
    );
  });
});
