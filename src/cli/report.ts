import type { Command } from 'commander';
import { RUN_FILES } from '../io/run-folder.ts';
import { reportRuns } from '../pipeline/report-runs.ts';
import { comparisonText } from '../report/comparison-files.ts';
import { IGNORED_CONFIG_KEYS } from '../report/group-runs.ts';
import { note, printJson } from './common.ts';
import { addOutOptions } from './options.ts';

export function registerReport(program: Command): void {
  const cmd = program
    .command('report')
    .argument('<run...>', 'run folders, their results.json, or folders of runs (demo --seeds, study)')
    .description(
      "Compare runs on one page: every run folder given (a demo run, a retrain's RUN/stage2 or --out, or a folder " +
        `whose sub-folders are runs, such as demo --seeds or study writes) is read from its ${RUN_FILES.results}; ` +
        'runs that share a configuration form a group, reported as mean ± sample standard deviation per method ' +
        '(All / many / medium / few, macro-F1, ECE); groups are named by the settings they differ in. ' +
        `Writes ${RUN_FILES.report} (self-contained), ${RUN_FILES.resultsMarkdown}, ${RUN_FILES.results} (the comparison) and ${RUN_FILES.charts}/.`,
    )
    .addHelpText(
      'after',
      '\nGrouping: runs are one group when their configuration (results.json "config", plus the\n' +
        `data set's name) is equal except ${Object.keys(IGNORED_CONFIG_KEYS).join(', ')}.\n\nExamples:\n` +
        '  longtail demo --seeds 0,1,2 --out runs/seeds && longtail report runs/seeds\n' +
        '  longtail report runs/resnet8 runs/resnet20 --out runs/backbones\n' +
        '  longtail report runs/a/stage2 runs/b/stage2 runs/c/stage2 --json',
    );
  addOutOptions(cmd, 'folder for the comparison', 'runs/report-<time>');
  cmd
    .option('--json', 'print the comparison (the results.json written) instead of the tables')
    .action(async (inputs: string[], opts: Record<string, unknown>) => {
      const r = await reportRuns(inputs, opts.out as string | undefined, {
        force: opts.force === true,
        onRunFolder: (d) => note(`comparison folder: ${d}`),
      });
      for (const w of r.comparison.warnings) note(`warning: ${w}`);
      if (opts.json) return printJson({ runDir: r.runDir, ...r.comparison });
      console.log(
        `${r.runs.length} run${r.runs.length === 1 ? '' : 's'} in ${r.comparison.groups.length} group${r.comparison.groups.length === 1 ? '' : 's'}; top-1 % (mean ± std)\n`,
      );
      console.log(comparisonText(r.comparison));
      console.log(`\nreport: ${r.report}`);
    });
}
