import type { Command } from 'commander';
import { retrainConfigSchema } from '../config/schema.ts';
import { RUN_FILES, runFile } from '../io/run-folder.ts';
import { retrain } from '../pipeline/run.ts';
import { compactResults } from '../report/results.ts';
import { textTable } from '../report/table.ts';
import { backendOption, printJson, startBackend } from './common.ts';
import {
  addConfigOption,
  addOutOptions,
  addSettings,
  addStage2Options,
  addThresholdOptions,
  configFromFlags,
  GROUPS,
} from './options.ts';
import { BACKBONE_FILE_HELP } from './predict.ts';
import { cliCallbacks } from './reporting.ts';

export function registerRetrain(program: Command): void {
  const cmd = program
    .command('retrain')
    .description(
      'stage 2: re-balance only the classifier (every method of --method) on a finished stage-1 run (--run) or on a ' +
        "feature file (--features: .npz or a folder of .npy, format in docs/formats.md), and print the paper's table. " +
        `With --run DIR the results and classifiers go to DIR/${RUN_FILES.stage2}, where predict and export on DIR find them.`,
    )
    .option('--run <dir>', 'a stage-1 run folder written by `longtail train` or `longtail demo`')
    .option('--features <path>', 'a feature file (.npz) or folder of .npy files from your own backbone')
    .option('--backbone-file <path>', BACKBONE_FILE_HELP);
  addStage2Options(cmd);
  addThresholdOptions(cmd);
  const { lr, weightDecay, seed, classAwarePerClass } = retrainConfigSchema().shape;
  addSettings(cmd, { lr, weightDecay, seed, classAwarePerClass }, GROUPS.stage2);
  addConfigOption(cmd);
  addOutOptions(
    cmd,
    'where results go',
    `RUN/${RUN_FILES.stage2} with --run, runs/retrain-<time> with --features`,
  );
  cmd
    .option('--json', 'print one JSON document: per method overall / many / medium / few (%), tau, mode')
    .addOption(backendOption())
    .action(async (opts: Record<string, unknown>) => {
      const cfg = configFromFlags(retrainConfigSchema(), opts);
      await startBackend(opts.backend as string | undefined);
      const cb = cliCallbacks();
      const result = await cb.during(() =>
        retrain(cfg, {
          ...cb,
          ...(typeof opts.out === 'string' ? { out: opts.out } : {}),
          force: opts.force === true,
          ...(typeof opts.backboneFile === 'string' ? { backboneFile: opts.backboneFile } : {}),
        }),
      );
      const outDir = cb.runDir()!;
      if (opts.json) printJson({ ...compactResults(result), runDir: outDir });
      else {
        console.log(textTable(result));
        console.log(`\nresults: ${runFile(outDir, 'results')}, ${runFile(outDir, 'report')}`);
      }
    });
}
