import { join } from 'node:path';
import type { Command } from 'commander';
import { pipelineConfigSchema } from '../config/schema.ts';
import { ConfigError } from '../errors.ts';
import { runFile } from '../io/run-folder.ts';
import { runPipeline } from '../pipeline/run.ts';
import { runSeeds } from '../pipeline/run-seeds.ts';
import { compactResults } from '../report/results.ts';
import { seedsTextTable } from '../report/seed-summary.ts';
import { textTable } from '../report/table.ts';
import { backendOption, note, printJson, startBackend } from './common.ts';
import {
  addConfigOption,
  addDataOptions,
  addOutOptions,
  addStage2Options,
  addTrainOptions,
  configFromFlags,
} from './options.ts';
import { cliCallbacks } from './reporting.ts';

export function registerDemo(program: Command): void {
  const cmd = program
    .command('demo')
    .description(
      'The whole decoupled pipeline (what `npm start` runs): stage 1 (ResNet-8, instance-balanced, 30 epochs on the ' +
        "bundled Fashion-MNIST-LT), then every stage-2 method (the paper's Joint, NCM, cRT, tau-norm, LWS and the later baselines); prints the paper's table and writes " +
        'results.json, results.md, charts and report.html to the run folder.',
    );
  addDataOptions(cmd);
  addTrainOptions(cmd);
  addStage2Options(cmd);
  addConfigOption(cmd);
  addOutOptions(cmd, 'run folder', 'runs/demo-<time>');
  cmd
    .option(
      '--seeds <list>',
      'run the whole pipeline once per seed (comma-separated, e.g. 0,1,2) into OUT/seed-<n>/, and report mean ± std',
    )
    .option('--json', 'print one JSON document instead of the table')
    .addOption(backendOption())
    .action(async (opts: Record<string, unknown>) => {
      const { seeds: seedList, ...rest } = opts;
      const cfg = configFromFlags(pipelineConfigSchema(), rest);
      if (typeof seedList === 'string') {
        if (opts.seed !== undefined) throw new ConfigError('--seeds and --seed exclude each other');
        const seeds = seedList.split(',').map((s) => {
          const n = Number(s.trim());
          if (s.trim() === '' || !Number.isInteger(n) || n < 0)
            throw new ConfigError(`--seeds expects integers >= 0 separated by commas, got '${seedList}'`);
          return n;
        });
        await startBackend(opts.backend as string | undefined);
        const cb = cliCallbacks();
        const r = await cb.during(() =>
          runSeeds(cfg, seeds, opts.out as string | undefined, { ...cb, force: opts.force === true }),
        );
        if (opts.json) return printJson({ runDir: r.runDir, ...r.summary });
        console.log(
          `\n${r.runs[0]!.dataset.name}, ${cfg.backbone}, ${cfg.sampler} stage 1 (${cfg.epochs} epochs), top-1 % over seeds ${seeds.join(', ')} (mean ± std)\n`,
        );
        console.log(seedsTextTable(r.summary));
        console.log(
          `\nsummary: ${join(r.runDir, 'summary.md')}, ${runFile(r.runDir, 'report')}; each seed's run and report in ${r.runDir}/seed-<n>/`,
        );
        return;
      }
      const info = await startBackend(opts.backend as string | undefined);
      note(`longtail demo: backend ${info.name}`);
      const cb = cliCallbacks();
      const r = await cb.during(() =>
        runPipeline(cfg, opts.out as string | undefined, {
          ...cb,
          command: 'demo',
          force: opts.force === true,
        }),
      );
      const outDir = cb.runDir()!;
      if (opts.json) return printJson({ ...compactResults(r), runDir: outDir });
      console.log(
        `\n${r.dataset.name}, ${cfg.backbone}, ${cfg.sampler} stage 1 (${cfg.epochs} epochs), top-1 % on ${r.dataset.testSize} test images\n`,
      );
      console.log(textTable(r));
      console.log(
        `\nfinished in ${(r.seconds.total / 60).toFixed(1)} min; report: ${runFile(outDir, 'report')}`,
      );
    });
}
