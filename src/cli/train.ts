import type { Command } from 'commander';
import { TrainConfigSchema } from '../config/schema.ts';
import { ConfigError } from '../errors.ts';
import { saveFeatureFile } from '../features/feature-set.ts';
import { runFile } from '../io/run-folder.ts';
import { disposeModel } from '../models/model.ts';
import { accuracyOfFeatures } from '../pipeline/quick-eval.ts';
import { RESUME_MAY_CHANGE, resumeStage1, runStage1 } from '../pipeline/stage1.ts';
import { toPercent } from '../train/epoch.ts';
import { backendOption, note, printJson, startBackend } from './common.ts';
import {
  addConfigOption,
  addDataOptions,
  addOutOptions,
  addTrainOptions,
  configFromFlags,
  givenSettings,
} from './options.ts';
import { cliCallbacks } from './reporting.ts';

export function registerTrain(program: Command): void {
  const cmd = program
    .command('train')
    .description(
      'stage 1: train a backbone and linear classifier jointly (cross-entropy, SGD, cosine LR), keep the best ' +
        'validation epoch, checkpoint every epoch, and export features for stage 2 (features.npz)',
    );
  addDataOptions(cmd);
  addTrainOptions(cmd);
  addConfigOption(cmd);
  addOutOptions(cmd, 'run folder', 'runs/train-<time>');
  cmd
    .option(
      '--resume <run>',
      `continue an interrupted run in this folder with its saved settings; only ${RESUME_MAY_CHANGE.map((k) => `--${k}`).join(' (to extend it) and ')} may be given again with another value`,
    )
    .option('--export-features <path>', 'also write the features here: .npz, or a folder of .npy files')
    .option('--json', 'print one JSON document (stage-1 summary) instead of text')
    .addOption(backendOption())
    .action(async (opts: Record<string, unknown>) => {
      const resume = opts.resume as string | undefined;
      if (resume !== undefined && (opts.out !== undefined || opts.force))
        throw new ConfigError('--resume continues the run in its own folder: drop --out / --force');
      // Validate everything (flags, config file) before the backend starts or a file is written.
      const cfg =
        resume === undefined
          ? configFromFlags(TrainConfigSchema.strict(), opts)
          : givenSettings(TrainConfigSchema.strict(), opts);
      await startBackend(opts.backend as string | undefined);
      const cb = cliCallbacks();
      const s1 =
        resume === undefined
          ? await runStage1(TrainConfigSchema.parse(cfg), opts.out as string | undefined, {
              ...cb,
              force: opts.force === true,
            })
          : await resumeStage1(resume, cfg, cb);
      cb.done();
      try {
        if (typeof opts.exportFeatures === 'string') saveFeatureFile(opts.exportFeatures, s1.features);
        const test = accuracyOfFeatures(s1.features);
        const summary = {
          runDir: s1.runDir,
          bestEpoch: s1.summary.bestEpoch,
          bestValAcc: s1.summary.bestValAcc,
          jointTestAcc: toPercent(test),
          seconds: s1.seconds,
          features: runFile(s1.runDir, 'features'),
        };
        if (opts.json) printJson(summary);
        else {
          note(
            `best epoch ${s1.summary.bestEpoch}${s1.summary.bestValAcc === null ? '' : ` (validation ${s1.summary.bestValAcc.toFixed(1)}%)`}`,
          );
          console.log(
            Number.isNaN(test)
              ? `features saved (no stage-1 classifier)   run: ${s1.runDir}`
              : `joint classifier test top-1: ${(100 * test).toFixed(2)}%   run: ${s1.runDir}`,
          );
          console.log(`next: longtail retrain --run ${s1.runDir} --method all`);
        }
      } finally {
        disposeModel(s1.model);
      }
    });
}
