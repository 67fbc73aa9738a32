import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { type TrainConfig, TrainConfigSchema } from '../config/schema.ts';
import { ConfigError } from '../errors.ts';
import { saveFeatureFile } from '../features/feature-set.ts';
import { disposeModel } from '../models/model.ts';
import { accuracyOfFeatures } from '../pipeline/quick-eval.ts';
import { runStage1 } from '../pipeline/run.ts';
import { backendOption, note, printJson, resolveOutDir, startBackend } from './common.ts';
import { addDataOptions, addTrainOptions, configFromFlags } from './options.ts';
import { cliCallbacks } from './reporting.ts';

export function registerTrain(program: Command): void {
  const cmd = program
    .command('train')
    .summary('stage 1: joint training, checkpoints, features')
    .description(
      'stage 1: train a backbone and linear classifier jointly (cross-entropy, SGD, cosine LR), keep the best ' +
        'validation epoch, checkpoint every epoch, and export features for stage 2 (features.npz)',
    );
  addDataOptions(cmd);
  addTrainOptions(cmd);
  cmd
    .option('--config <file>', 'YAML or JSON file with any of these settings (flags win)')
    .option('--out <dir>', 'run folder (default runs/train-<timestamp>)')
    .option('--resume <run>', 'continue an interrupted run in this folder (its settings are used)')
    .option('--export-features <path>', 'also write the features here: .npz, or a folder of .npy files')
    .option('--json', 'print one JSON document (stage-1 summary) instead of text')
    .addOption(backendOption())
    .action(async (opts: Record<string, unknown>) => {
      let cfg: TrainConfig;
      let outDir: string;
      if (typeof opts.resume === 'string') {
        const cfgPath = join(opts.resume, 'config.json');
        if (!existsSync(cfgPath))
          throw new ConfigError(`--resume ${opts.resume}: not a run folder (no config.json)`);
        const { command: _c, ...saved } = JSON.parse(readFileSync(cfgPath, 'utf8'));
        cfg = TrainConfigSchema.parse(saved);
        outDir = opts.resume;
      } else {
        cfg = configFromFlags(TrainConfigSchema.strict(), opts);
        outDir = resolveOutDir('train', opts.out as string | undefined);
      }
      await startBackend(opts.backend as string | undefined);
      const cb = cliCallbacks();
      const s1 = await runStage1(cfg, outDir, { ...cb, ...(opts.resume ? { resume: true } : {}) });
      cb.done();
      try {
        if (typeof opts.exportFeatures === 'string') saveFeatureFile(opts.exportFeatures, s1.features);
        const test = accuracyOfFeatures(s1.features);
        const summary = {
          runDir: outDir,
          bestEpoch: s1.bestEpoch,
          bestValAcc: s1.bestValAcc,
          jointTestAcc: test,
          seconds: s1.seconds,
          features: join(outDir, 'features.npz'),
        };
        if (opts.json) printJson(summary);
        else {
          note(
            `best epoch ${s1.bestEpoch}${s1.bestValAcc === null ? '' : ` (validation ${(100 * s1.bestValAcc).toFixed(1)}%)`}`,
          );
          console.log(`joint classifier test top-1: ${(100 * test).toFixed(2)}%   run: ${outDir}`);
          console.log(`next: longtail retrain --run ${outDir} --method all`);
        }
      } finally {
        disposeModel(s1.model);
      }
    });
}
