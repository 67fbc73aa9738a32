import { join } from 'node:path';
import type { Command } from 'commander';
import { dataConfigSchema } from '../config/schema.ts';
import { splitOf } from '../eval/shot-splits.ts';
import { openRun, planRun } from '../io/run-folder.ts';
import { loadRunData } from '../pipeline/run-setup.ts';
import { classCountChart } from '../report/charts/class-counts.ts';
import { writeChart } from '../report/render.ts';
import { formatTable } from '../report/table.ts';
import { note, printJson } from './common.ts';
import { addConfigOption, addDataOptions, addOutOptions, configFromFlags } from './options.ts';

export function registerData(program: Command): void {
  const data = program.command('data').description('inspect data sets');
  const summary = data
    .command('summary')
    .description(
      'class names and training counts, shot split of each class, the imbalance factor, a bar chart in the ' +
        'terminal; with --out, a class-count histogram written as SVG and PNG',
    );
  addDataOptions(summary);
  addConfigOption(summary);
  // It inspects: nothing is written unless --out asks for the histogram.
  addOutOptions(
    summary,
    'write the class-count histogram (SVG and PNG) into this folder',
    'none: nothing is written',
  );
  summary
    .option('--json', 'print one JSON document instead of the table')
    .action(async (opts: Record<string, unknown>) => {
      const cfg = configFromFlags(dataConfigSchema(), opts);
      const out = opts.out as string | undefined;
      const plan = out === undefined ? null : planRun('data-summary', out, { force: opts.force === true });
      const d = await loadRunData(cfg, { warn: (m) => note(`warning: ${m}`) });
      const thresholds = { many: cfg.manyThreshold, few: cfg.fewThreshold };
      const counts = d.trainCounts;
      const nonzero = counts.filter((n) => n > 0);
      const imbalance = Math.max(...nonzero) / Math.min(...nonzero);
      const classes = counts.map((n, c) => ({
        class: c,
        name: d.classNames[c]!,
        train: n,
        split: splitOf(n, thresholds),
      }));
      let chart: Awaited<ReturnType<typeof writeChart>> | null = null;
      if (plan !== null) {
        const folder = openRun(plan);
        try {
          chart = await writeChart(
            join(folder.dir, 'class-counts'),
            classCountChart({ classNames: d.classNames, trainCounts: counts, thresholds }),
          );
        } finally {
          folder.release();
        }
      }
      const summaryJson = {
        dataset: d.name,
        source: d.source,
        profile: d.profile,
        numClasses: counts.length,
        trainSize: d.train.labels.length,
        valSize: d.val?.labels.length ?? 0,
        testSize: d.test.labels.length,
        imageShape: [d.train.height, d.train.width, d.train.channels],
        imbalanceFactor: Math.round(imbalance * 100) / 100,
        thresholds,
        splits: {
          many: classes.filter((c) => c.split === 'many').length,
          medium: classes.filter((c) => c.split === 'medium').length,
          few: classes.filter((c) => c.split === 'few').length,
        },
        classes,
        histogram: chart === null ? null : { svg: chart.svg, png: chart.png },
      };
      if (opts.json) return printJson(summaryJson);
      const max = Math.max(...counts);
      const shown = classes.length > 40 ? [...classes.slice(0, 20), null, ...classes.slice(-20)] : classes;
      console.log(
        `${d.name}: ${summaryJson.trainSize} training, ${summaryJson.valSize} validation, ${summaryJson.testSize} test images; ` +
          `${counts.length} classes of ${summaryJson.imageShape.join('x')}; imbalance factor ${summaryJson.imbalanceFactor}`,
      );
      console.log(
        `splits (many > ${thresholds.many}, medium ${thresholds.few}..${thresholds.many}, few < ${thresholds.few}): ` +
          `${summaryJson.splits.many} many, ${summaryJson.splits.medium} medium, ${summaryJson.splits.few} few\n`,
      );
      console.log(
        formatTable(
          ['class', 'name', 'train', 'split', ''],
          shown.map((c) =>
            c === null
              ? ['...', '', '', '', '']
              : [
                  c.class,
                  c.name,
                  c.train,
                  c.split,
                  '#'.repeat(Math.max(c.train > 0 ? 1 : 0, Math.round((40 * c.train) / max))),
                ],
          ),
          [0, 1, 4],
        ),
      );
      if (chart !== null) console.log(`\nhistogram: ${chart.svg}, ${chart.png}`);
    });
}
