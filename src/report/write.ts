/** Writes a run's report into its folder: results.json, results.md, charts (SVG, PNG, spec), report.html. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic, writeJsonAtomic } from '../io/atomic.ts';
import { RUN_FILES, runFile } from '../io/run-folder.ts';
import { allCharts } from './charts.ts';
import { reportHtml } from './html.ts';
import { resultsMarkdown } from './markdown.ts';
import { writeChart } from './render.ts';
import { type RunResults, RunResultsSchema } from './results.ts';

export async function writeReport(
  outDir: string,
  run: RunResults,
  opts: { onPhase?: (name: string) => void } = {},
): Promise<void> {
  RunResultsSchema.parse(run);
  opts.onPhase?.(`writing the report to ${outDir}`);
  writeJsonAtomic(runFile(outDir, 'results'), run);
  const charts = allCharts(run);
  const rendered: { name: string; svg: string }[] = [];
  for (const [name, spec] of Object.entries(charts)) {
    const files = await writeChart(join(runFile(outDir, 'charts'), name), spec);
    if (files.svg !== null) rendered.push({ name, svg: readFileSync(files.svg, 'utf8') });
  }
  writeFileAtomic(
    runFile(outDir, 'resultsMarkdown'),
    resultsMarkdown(
      run,
      Object.keys(charts).map((c) => `${RUN_FILES.charts}/${c}`),
    ),
  );
  writeFileAtomic(runFile(outDir, 'report'), reportHtml(run, rendered));
}
