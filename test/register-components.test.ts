/**
 * A data source and a backbone added at run time, each with one setting, from a module of the
 * user's own (fixtures/registered-components.ts; no other file knows them): the setting is a flag
 * with its help line, reaches its loader and its backbone, is recorded in config.json and the
 * checkpoint, reaches a data-parallel worker (2 threads: the worker imports the registering
 * module by URL, and a replica built without the option would refuse the weights it is sent), and
 * a resume continues with it from config.json alone.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Command, CommanderError } from 'commander';
import { z } from 'zod';
import { initBackend } from '../src/backend/backend.ts';
import { registerTrain } from '../src/cli/train.ts';
import { readRunConfig } from '../src/config/schema.ts';
import { registerDataset, unregisterDataset } from '../src/data/registry.ts';
import { disposeModel } from '../src/models/model.ts';
import { registerBackbone, unregisterBackbone } from '../src/models/registry.ts';
import { resumeStage1 } from '../src/pipeline/stage1.ts';
import { validations } from '../src/settings.ts';
import { loadCheckpoint } from '../src/train/checkpoint.ts';
import { tinyData, tinyNet } from './fixtures/registered-components.ts';
import { tempDir } from './helpers/tmp.ts';

/** `longtail train ARGS` in this process, its help and --print-config output captured; rejects with commander's exit. */
async function train(args: string[]): Promise<string> {
  const program = new Command().exitOverride();
  // Built after the registration, as the CLI builds a command when it runs.
  registerTrain(program);
  let out = '';
  // One help line a flag, however long (no wrapping).
  program.commands[0]!.exitOverride().configureOutput({
    writeOut: (s) => {
      out += s;
    },
    getOutHelpWidth: () => 1000,
  });
  // --print-config's YAML goes to stdout (captured for that short call only; a run prints as usual).
  const write = process.stdout.write;
  if (args.includes('--print-config'))
    process.stdout.write = ((chunk: string | Uint8Array) => {
      out += String(chunk);
      return true;
    }) as typeof process.stdout.write;
  try {
    await program.parseAsync(['train', ...args], { from: 'user' });
  } catch (e) {
    if (!(e instanceof CommanderError) || e.exitCode !== 0) throw e;
  } finally {
    process.stdout.write = write;
  }
  return out;
}

describe('a data source and a backbone registered at run time', () => {
  // Importing the fixture (above) registered both.
  before(async () => {
    await initBackend('wasm');
  });
  after(() => {
    unregisterBackbone('tinynet');
    unregisterDataset('tiny-lt');
  });

  it('have their flags and help lines, in their groups, and are valid names', async () => {
    const help = await train(['--help-all']);
    assert.match(help, /--tiny-max-per-class <n>\s+tiny-lt: images in the largest class \(default: 12\)/);
    assert.match(help, /--tinynet-stem <n>\s+tinynet: channels of the first stage \(default: 4\)/);
    assert.match(help, /data set: .*imagefolder, tiny-lt/);
    assert.match(help, /backbone: .*resnet10, tinynet, or onnx:PATH/);
    // The folded --help counts them in their groups.
    const short = await train(['--help']);
    assert.match(short, /^ {2}Data: .*--tiny-max-per-class/m);
    assert.match(short, /^ {2}Backbone: .*--tinynet-stem/m);
    // --print-config resolves them (the flags in camelCase), and only what was set is recorded.
    const yaml = await train(['--dataset', 'tiny-lt', '--tiny-max-per-class', '9', '--print-config']);
    assert.match(yaml, /^dataset: tiny-lt$/m);
    assert.match(yaml, /^tinyMaxPerClass: 9$/m);
    assert.doesNotMatch(yaml, /tinynetStem/);
    // A rule of the registered schema, in longtail's words.
    await assert.rejects(
      train(['--tinynet-stem', '0', '--print-config']),
      /^ConfigError: --tinynet-stem 0: must be at least 1$/,
    );
  });

  it('are refused when a name or a setting is taken', () => {
    assert.throws(
      () => registerBackbone('tinynet', { ...tinyNet, module: 'file:///elsewhere.ts' }),
      /^ConfigError: registerBackbone: a backbone named 'tinynet' exists already$/,
    );
    assert.throws(() => registerDataset('tiny-lt', tinyData), /a data set named 'tiny-lt' exists already/);
    // A setting another source has must be that source's very schema (one setting, one meaning).
    assert.throws(
      () =>
        registerDataset('other-lt', {
          description: 'a source reusing a setting name with another rule',
          options: z.object({ maxPerClass: z.number().int().positive().optional() }),
          load: tinyData.load as never,
        }),
      /^ConfigError: registerDataset: setting 'maxPerClass' of 'other-lt' is another source's/,
    );
    assert.throws(() => unregisterBackbone('resnet8'), /'resnet8' is built in/);
  });

  it('reach the loader, config.json, a 2-thread worker, the checkpoint and a resume', async () => {
    const out = tempDir();
    const before = validations;
    await train([
      ...['--dataset', 'tiny-lt', '--tiny-max-per-class', '14'],
      ...['--backbone', 'tinynet', '--tinynet-stem', '6'],
      ...['-e', '1', '-b', '16', '-j', '2', '--out', out],
    ]);
    // One validation of the configuration for the whole run: the CLI's (the pipeline and
    // trainJoint take it as parsed).
    assert.equal(validations - before, 1);
    const saved = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')) as Record<string, unknown>;
    assert.equal(saved.tinyMaxPerClass, 14);
    assert.equal(saved.tinynetStem, 6);
    assert.equal(saved.threads, 2);
    // The checkpoint records the backbone as its spec, with the option.
    assert.deepEqual(loadCheckpoint(join(out, 'checkpoint.npz')).meta.backbone, {
      name: 'tinynet',
      options: { stem: 6 },
    });
    // The one reader of config.json knows the registered settings.
    const rc = readRunConfig(join(out, 'config.json'));
    assert.equal(rc.command, 'train');
    // Extended by one epoch from config.json alone, again on 2 threads.
    const again = await resumeStage1(out, { epochs: 2 });
    try {
      assert.equal(Math.max(...again.data.trainCounts), 14); // the source's setting reached its loader
      assert.equal(again.features.dim, 4 * 6); // and the backbone's reached the model
      assert.equal(again.summary.history.length, 2);
    } finally {
      disposeModel(again.model);
    }
    assert.equal(loadCheckpoint(join(out, 'checkpoint.npz')).meta.epoch, 2);
    await assert.rejects(
      resumeStage1(out, { epochs: 3, tinynetStem: 8 } as Parameters<typeof resumeStage1>[1]),
      /tinynetStem 8 \(the run has 6\)/,
    );
  });
});
