import { basename } from 'node:path';
import type { Command } from 'commander';
import { Stage2ConfigSchema } from '../config/schema.ts';
import { ConfigError } from '../errors.ts';
import { loadFeatureFile } from '../features/feature-set.ts';
import { disposeModel } from '../models/model.ts';
import { loadStage1Run, runStage2AndReport } from '../pipeline/run.ts';
import { textTable } from '../report/markdown.ts';
import { compactResults, type RunResults } from '../report/results.ts';
import { backendOption, printJson, resolveOutDir, startBackend } from './common.ts';
import { addStage2Options, addThresholdOptions, configFromFlags, num } from './options.ts';
import { cliCallbacks } from './reporting.ts';

export function registerRetrain(program: Command): void {
  const cmd = program
    .command('retrain')
    .summary('stage 2: cRT, tau-norm, LWS, NCM on a run or a feature file')
    .description(
      'stage 2: re-balance only the classifier (joint, NCM, cRT, tau-norm, LWS) on a stage-1 run (--run) or on a ' +
        'feature file (--features: .npz or a folder of .npy, see README "Feature files"), and print the paper\'s table',
    )
    .option('--run <dir>', 'a stage-1 run folder written by `longtail train` or `longtail demo`')
    .option('--features <path>', 'a feature file (.npz) or folder of .npy files from your own backbone');
  addStage2Options(cmd);
  addThresholdOptions(cmd);
  cmd
    .option(
      '--lr <rate>',
      'with --features: the stage-1 learning rate cRT / LWS start from (default 0.1)',
      num('--lr'),
    )
    .option(
      '--weight-decay <wd>',
      'with --features: weight decay for cRT / LWS (default 5e-4)',
      num('--weight-decay'),
    )
    .option('--seed <n>', 'with --features: seed for cRT / LWS (default 0)', num('--seed', true))
    .option(
      '--threads <n>',
      'threads to split the cRT / LWS classes over; results do not depend on it (default: all cores)',
      num('--threads', true),
    )
    .option('--config <file>', 'YAML or JSON file with any of these settings (flags win)')
    .option('--out <dir>', 'where results go (default runs/retrain-<timestamp>)')
    .option('--json', 'print one JSON document: per method overall / many / medium / few (%), tau, mode')
    .addOption(backendOption())
    .action(async (opts: Record<string, unknown>) => {
      const run = opts.run as string | undefined;
      const feats = opts.features as string | undefined;
      if ((run === undefined) === (feats === undefined))
        throw new ConfigError('retrain needs exactly one of --run RUN or --features FILE_OR_DIR');
      const { lr, weightDecay, seed, manyThreshold, fewThreshold, ...rest } = opts;
      const s2 = configFromFlags(Stage2ConfigSchema.strict(), rest);
      await startBackend(opts.backend as string | undefined);
      const outDir = resolveOutDir('retrain', opts.out as string | undefined);
      const cb = cliCallbacks();
      const start = performance.now();
      const thresholds = {
        many: (manyThreshold as number | undefined) ?? 100,
        few: (fewThreshold as number | undefined) ?? 20,
      };
      let result: RunResults;
      if (run !== undefined) {
        const r = await loadStage1Run(run, cb);
        try {
          result = await runStage2AndReport(
            { features: r.features, model: r.model, data: r.data, train: r.cfg },
            s2,
            outDir,
            {
              command: 'retrain',
              config: { run, ...r.cfg },
              datasetName: r.data.name,
              source: r.data.source,
              thresholds: {
                many: (manyThreshold as number | undefined) ?? r.cfg.manyThreshold ?? 100,
                few: (fewThreshold as number | undefined) ?? r.cfg.fewThreshold ?? 20,
              },
              stage1: r.stage1,
              seconds: { stage1: r.stage1?.seconds ?? 0, features: 0, start },
              stage1Run: run,
            },
            cb,
          );
        } finally {
          disposeModel(r.model);
        }
      } else {
        cb.onPhase?.(`reading ${feats}`);
        const fs = loadFeatureFile(feats!);
        result = await runStage2AndReport(
          {
            features: fs,
            train: {
              ...(lr !== undefined ? { lr: lr as number } : {}),
              ...(weightDecay !== undefined ? { weightDecay: weightDecay as number } : {}),
              ...(seed !== undefined ? { seed: seed as number } : {}),
            },
          },
          s2,
          outDir,
          {
            command: 'retrain',
            config: { features: feats },
            datasetName: basename(feats!),
            source: feats!,
            thresholds,
            stage1: null,
            seconds: { stage1: 0, features: 0, start },
            stage1Run: null,
          },
          cb,
        );
      }
      cb.done();
      if (opts.json) printJson({ ...compactResults(result), runDir: outDir });
      else {
        console.log(textTable(result));
        console.log(`\nresults: ${outDir}/results.json, ${outDir}/report.html`);
      }
    });
}
