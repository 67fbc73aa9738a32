/**
 * The command schemas are composed from the settings each component owns, when asked: no hook,
 * no copy. The stage-1 part of a parsed configuration is a JointConfig; a method registered after
 * the constants were built is in the next composed schema; renamed settings of older runs read.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { z } from 'zod';
import { tempDir } from '../../test/helpers/tmp.ts';
import { joint } from '../classifiers/joint.ts';
import { registerClassifier, unregisterClassifier } from '../classifiers/registry.ts';
import { defineMethod } from '../classifiers/types.ts';
import { SGD_DEFAULTS } from '../optim/settings.ts';
import { resumedConfig } from '../pipeline/stage1.ts';
import { markParsed, parseOnce } from '../settings.ts';
import { DEFAULT_JOINT_CONFIG, type JointConfig, JointConfigSchema } from '../train/joint-config.ts';
import {
  PipelineConfigSchema,
  pipelineConfigSchema,
  RetrainConfigSchema,
  readConfigFile,
  readRunConfig,
  type TrainConfig,
  TrainConfigSchema,
  trainConfigSchema,
} from './schema.ts';

describe('command schemas composed from the components', () => {
  it("a train configuration's stage-1 part is a JointConfig, typed with every entry's settings", () => {
    const cfg: TrainConfig = TrainConfigSchema.parse({ resnet8Width: 8, classAwarePerClass: 3, epochs: 2 });
    // Typed keys of a backbone's and a sampler's options: no cast.
    const width: number | undefined = cfg.resnet8Width;
    const perClass: number | undefined = cfg.classAwarePerClass;
    assert.equal(width, 8);
    assert.equal(perClass, 3);
    const j: JointConfig = cfg;
    assert.equal(j.epochs, 2);
    // Every stage-1 setting is a setting of the train schema, and the train defaults' stage-1 part
    // is the stage-1 defaults.
    const trainDefaults = TrainConfigSchema.parse({}) as Record<string, unknown>;
    for (const k of Object.keys(JointConfigSchema.shape)) {
      assert.ok(k in TrainConfigSchema.shape, k);
      assert.deepEqual(trainDefaults[k], (DEFAULT_JOINT_CONFIG as Record<string, unknown>)[k], k);
    }
    assert.deepEqual(
      Object.keys(DEFAULT_JOINT_CONFIG).sort(),
      Object.keys(JointConfigSchema.parse({})).sort(),
    );
    // The optimiser's defaults are one schema's, for stage 1 and the stage-2 heads.
    for (const k of ['batchSize', 'lr', 'weightDecay', 'momentum'] as const)
      assert.equal(DEFAULT_JOINT_CONFIG[k], SGD_DEFAULTS[k], k);
  });

  it('applies the rule across stage-1 settings in every command schema', () => {
    for (const schema of [trainConfigSchema(), pipelineConfigSchema(), JointConfigSchema]) {
      const r = schema.safeParse({ epochs: 3, warmupEpochs: 3 });
      assert.equal(r.success, false);
      assert.deepEqual(r.error!.issues[0]!.path, ['warmupEpochs']);
      assert.equal(r.error!.issues[0]!.message, 'must be less than epochs (3)');
    }
  });

  it("has a method registered later in the next composed schema (the constants keep the built-ins')", () => {
    const method = defineMethod({
      name: 'scaled-joint',
      label: 'Scaled joint',
      description: 'a test method',
      order: 99,
      needsClassifier: true,
      trains: false,
      options: z.object({ sjScale: z.number().positive().default(2).describe('scaled joint: scale') }),
      create: (ctx) => joint(ctx.features),
    });
    assert.throws(() => pipelineConfigSchema().parse({ sjScale: 3 }), /sjScale/);
    registerClassifier(method);
    try {
      // A registered method's keys are not in the built-in type: read as a record.
      const parse = (v: object) => pipelineConfigSchema().parse(v) as Record<string, unknown>;
      assert.equal(parse({ sjScale: 3 }).sjScale, 3);
      // Optional in the configuration (config.json records what was set); the help shows the default.
      assert.equal(parse({}).sjScale, undefined);
      const shape = pipelineConfigSchema().shape as Record<string, z.ZodType>;
      assert.equal((shape.sjScale!.meta() as { shownDefault: string }).shownDefault, '2');
      assert.throws(() => pipelineConfigSchema().parse({ sjScale: -1 }), /sjScale/);
      assert.equal('sjScale' in PipelineConfigSchema.shape, false);
    } finally {
      unregisterClassifier('scaled-joint');
    }
  });

  it('checks a resumed run across its saved and given settings, without parsing either again', () => {
    const saved = TrainConfigSchema.parse({ epochs: 10, warmupEpochs: 4 });
    assert.equal(resumedConfig(saved, { epochs: 12 }, 'RUN').epochs, 12);
    assert.throws(
      () => resumedConfig(saved, { epochs: 4 }, 'RUN'),
      /^ConfigError: --resume RUN: --epochs 4: must be more than the run's warmupEpochs \(4\)$/,
    );
    assert.throws(() => resumedConfig(saved, { lr: 0.5 }, 'RUN'), /lr 0\.5 \(the run has 0\.1\)/);
  });

  it('marks what it validated, so it is not validated again', () => {
    const parsed = markParsed(TrainConfigSchema.parse({}));
    const bad = { ...parsed, epochs: 0 };
    assert.equal(parseOnce(trainConfigSchema(), parsed, 'x'), parsed);
    assert.throws(
      () => parseOnce(trainConfigSchema(), bad, 'the test'),
      /^ConfigError: epochs: must be more than 0 \(got 0 from the test\)$/,
    );
  });

  it("reads samplesPerClass, stage 2's old name of the class-aware setting, from runs and files", () => {
    const dir = tempDir();
    const run = join(dir, 'config.json');
    writeFileSync(run, JSON.stringify({ command: 'demo', samplesPerClass: 2, epochs: 3 }));
    const rc = readRunConfig(run);
    assert.equal(rc.command, 'demo');
    assert.equal((rc.config as TrainConfig).classAwarePerClass, 2);
    assert.equal('samplesPerClass' in rc.config, false);
    // A value under the new name wins.
    const file = join(dir, 'c.yaml');
    writeFileSync(file, 'samplesPerClass: 2\nclassAwarePerClass: 5\n');
    assert.deepEqual(readConfigFile(file), { classAwarePerClass: 5 });
    assert.equal(RetrainConfigSchema.parse(readConfigFile(file)).classAwarePerClass, 5);
  });
});
