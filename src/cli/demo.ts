import type { Command } from 'commander';
import { PipelineConfigSchema } from '../config/schema.ts';
import { runPipeline } from '../pipeline/run.ts';
import { textTable } from '../report/markdown.ts';
import { compactResults } from '../report/results.ts';
import { backendOption, note, printJson, resolveOutDir, startBackend } from './common.ts';
import { addDataOptions, addStage2Options, addTrainOptions, configFromFlags } from './options.ts';
import { cliCallbacks } from './reporting.ts';

export function registerDemo(program: Command): void {
  const cmd = program
    .command('demo')
    .summary('the whole pipeline on the bundled data (what npm start runs)')
    .description(
      'The whole decoupled pipeline (what `npm start` runs): stage 1 (ResNet-8, instance-balanced, 30 epochs on the ' +
        "bundled Fashion-MNIST-LT), then Joint, NCM, cRT, tau-norm and LWS; prints the paper's table and writes " +
        'results.json, results.md, charts and report.html to the run folder.',
    );
  addDataOptions(cmd);
  addTrainOptions(cmd);
  addStage2Options(cmd);
  cmd
    .option('--config <file>', 'YAML or JSON file with any of these settings (flags win)')
    .option('--out <dir>', 'run folder (default runs/demo-<timestamp>)')
    .option('--json', 'print one JSON document instead of the table')
    .addOption(backendOption())
    .action(async (opts: Record<string, unknown>) => {
      const cfg = configFromFlags(PipelineConfigSchema, opts);
      const info = await startBackend(opts.backend as string | undefined);
      const outDir = resolveOutDir('demo', opts.out as string | undefined);
      note(`longtail demo: backend ${info.name}, run folder ${outDir}`);
      const cb = cliCallbacks();
      const r = await runPipeline(cfg, outDir, { ...cb, command: 'demo' });
      cb.done();
      if (opts.json) return printJson({ ...compactResults(r), runDir: outDir });
      console.log(
        `\n${r.dataset.name}, ${cfg.backbone}, ${cfg.sampler} stage 1 (${cfg.epochs} epochs), top-1 % on ${r.dataset.testSize} test images\n`,
      );
      console.log(textTable(r));
      console.log(`\nfinished in ${(r.seconds.total / 60).toFixed(1)} min; report: ${outDir}/report.html`);
    });
}
