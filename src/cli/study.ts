import type { Command } from 'commander';
import { studyConfigSchema } from '../config/schema.ts';
import { ConfigError } from '../errors.ts';
import { runSamplerStudy, STUDY_SAMPLERS } from '../pipeline/study.ts';
import { type MeanStd, summariseSeeds } from '../report/seed-summary.ts';
import { formatTable } from '../report/table.ts';
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

export function registerStudy(program: Command): void {
  const study = program.command('study').description("reproduce the paper's studies");
  const cmd = study
    .command('samplers')
    .summary("the paper's sampling study and its five findings")
    .description(
      "The paper's sampling study: stage 1 with instance-balanced, square-root, class-balanced and " +
        'progressively-balanced sampling, every stage-2 method on each representation, one table and chart, and a ' +
        "check of the paper's five findings (4 full pipelines: about 4x the demo; --epochs to shorten).",
    );
  addDataOptions(cmd);
  addTrainOptions(cmd);
  addStage2Options(cmd);
  cmd
    .option(
      '--samplers <list>',
      `the stage-1 samplers to compare, comma-separated (default: ${STUDY_SAMPLERS.join(', ')}); findings are judged only where the grid supports them`,
    )
    .option(
      '--losses <list>',
      'stage-1 losses of the grid, comma-separated (ce, balanced-softmax, logit-adjusted; default: --loss alone); findings are judged on the first',
    )
    .option(
      '--seeds <list>',
      'seeds every cell of the grid runs with, e.g. 0,1,2 (tables: mean ± std; findings on the means)',
    );
  addConfigOption(cmd);
  addOutOptions(cmd, 'study folder', 'runs/study-samplers-<time>');
  cmd
    .option('--json', 'print one JSON document instead of the table')
    .addOption(backendOption())
    .action(async (opts: Record<string, unknown>) => {
      if (opts.sampler !== undefined || opts.samplerQ !== undefined)
        throw new ConfigError(
          'study samplers runs each sampler of --samplers; --sampler / --sampler-q do not apply',
        );
      const { samplers, losses, seeds, ...rest } = opts;
      const list = (v: unknown) => (typeof v === 'string' ? v.split(',').map((s) => s.trim()) : undefined);
      const seedList = list(seeds)?.map((s) => {
        const n = Number(s);
        if (s === '' || !Number.isInteger(n) || n < 0)
          throw new ConfigError(`--seeds expects integers >= 0 separated by commas, got '${String(seeds)}'`);
        return n;
      });
      if (seedList && opts.seed !== undefined) throw new ConfigError('--seeds and --seed exclude each other');
      const cfg = configFromFlags(studyConfigSchema(), {
        ...rest,
        ...(samplers !== undefined ? { samplers: list(samplers) } : {}),
        ...(losses !== undefined ? { losses: list(losses) } : {}),
        ...(seedList ? { seeds: seedList } : {}),
      });
      await startBackend(opts.backend as string | undefined);
      const cb = cliCallbacks();
      const r = await cb.during(() =>
        runSamplerStudy(cfg, opts.out as string | undefined, { ...cb, force: opts.force === true }),
      );
      const outDir = r.runDir;
      // Per cell of the grid and method: the mean over seeds (± the sample std with several seeds).
      const cell = (v: MeanStd | null) =>
        v === null ? '-' : v.n > 1 ? `${v.mean.toFixed(1)} ± ${v.std.toFixed(1)}` : v.mean.toFixed(1);
      const rows = r.cells.flatMap((c) =>
        summariseSeeds([...c.seeds], c.runs, []).methods.map((m) => [
          c.key,
          m.label,
          cell(m.overall),
          cell(m.many),
          cell(m.medium),
          cell(m.few),
        ]),
      );
      if (opts.json) return printJson({ runDir: outDir, findings: r.findings, rows });
      console.log(formatTable(['stage 1', 'method', 'All', 'Many', 'Medium', 'Few'], rows, [0, 1]));
      console.log('');
      for (const f of r.findings)
        console.log(
          `${f.id}. ${f.reproduced === null ? 'NOT JUDGED    ' : f.reproduced ? 'REPRODUCED    ' : 'NOT REPRODUCED'} ${f.claim}\n   ${f.evidence}`,
        );
      note(`\nstudy: ${outDir}/study.md`);
    });
}
