/** Writes a run's report into its folder: results.json, per-class.csv, results.md, charts (SVG, PNG, spec), report.html. */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeFileAtomic, writeJsonAtomic } from '../io/atomic.ts';
import { RUN_FILES, runFile } from '../io/run-folder.ts';
import { allCharts } from './charts/all-charts.ts';
import { reportHtml } from './html.ts';
import type { LiveData } from './live/data.ts';
import { perClassCsv } from './per-class.ts';
import { writeChart } from './render.ts';
import { type RunResults, RunResultsSchema } from './results.ts';
import { resultsMarkdown } from './results-md.ts';

/** Every class, every method: accuracy, precision, recall, F1 (per-class.ts). */
export const PER_CLASS_CSV = 'per-class.csv';

/** The live section's script: generated beside this file (src/ by `npm ci`, dist/ by `npm run build`). */
const PAGE_SCRIPT = fileURLToPath(new URL('./live/page-script.js', import.meta.url));

function pageScript(): string {
  if (!existsSync(PAGE_SCRIPT))
    throw new Error(
      `${PAGE_SCRIPT}: the live report's script is missing; run \`npm run prepare\` (it runs scripts/bundle-live.mjs)`,
    );
  const s = readFileSync(PAGE_SCRIPT, 'utf8');
  // Inline in <script>: it must not close the element.
  if (/<\/script/i.test(s)) throw new Error(`${PAGE_SCRIPT}: contains "</script" and cannot be inlined`);
  return s;
}

export async function writeReport(
  outDir: string,
  run: RunResults,
  opts: {
    onPhase?: (name: string) => void;
    /** The live section's data (src/pipeline/live-report-data.ts); without it the page is static. */
    live?: LiveData | null;
  } = {},
): Promise<void> {
  RunResultsSchema.parse(run);
  const script = opts.live ? pageScript() : undefined;
  opts.onPhase?.(`writing the report to ${outDir}`);
  writeJsonAtomic(runFile(outDir, 'results'), run);
  writeFileAtomic(join(outDir, PER_CLASS_CSV), perClassCsv(run));
  const charts = allCharts(run);
  const rendered: { name: string; svg: string }[] = [];
  for (const [name, spec] of Object.entries(charts)) {
    const files = await writeChart(join(runFile(outDir, 'charts'), name), spec);
    rendered.push({ name, svg: readFileSync(files.svg, 'utf8') });
  }
  writeFileAtomic(
    runFile(outDir, 'resultsMarkdown'),
    resultsMarkdown(
      run,
      Object.keys(charts).map((c) => `${RUN_FILES.charts}/${c}`),
    ),
  );
  writeFileAtomic(
    runFile(outDir, 'report'),
    reportHtml(run, rendered, { live: opts.live ?? null, ...(script ? { script } : {}) }),
  );
}
