/**
 * A comparison of runs as files: results.json (the comparison, ComparisonSchema), results.md,
 * charts (grouped bars with +- std error bars, the palette's colours) and report.html (one
 * self-contained page: inline SVG, no script, no network; opens from file://).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic, writeJsonAtomic } from '../io/atomic.ts';
import { escapeHtml as esc, printable } from '../io/display.ts';
import { RUN_FILES, runFile } from '../io/run-folder.ts';
import type { VegaLiteSpec } from './charts/common.ts';
import { groupedBars } from './charts/grouped-bars.ts';
import { methodMetricBars } from './charts/metric-bars.ts';
import {
  type Comparison,
  type ComparisonGroup,
  ComparisonSchema,
  groupTitle,
  showValue,
} from './group-runs.ts';
import { SPLIT_ORDER } from './palette.ts';
import { writeChart } from './render.ts';
import { EXTRA_CAPTION, EXTRA_TABLE_HEADER, extraMarkdown, extraRows, type MeanStd } from './seed-summary.ts';
import { formatTable } from './table.ts';

const SPLITS = [
  ['overall', 'All'],
  ['many', 'many'],
  ['medium', 'medium'],
  ['few', 'few'],
] as const;

/** Every method of the comparison once, in table order (the first group's order, then the rest). */
function allMethods(c: Comparison): { method: string; label: string }[] {
  const seen = new Map<string, { method: string; label: string }>();
  for (const g of c.groups)
    for (const m of g.methods)
      if (!seen.has(m.method)) seen.set(m.method, { method: m.method, label: m.label });
  return [...seen.values()];
}

const bar = (v: MeanStd) => ({ value: v.mean, lo: v.mean - v.std, hi: v.mean + v.std, std: v.std, n: v.n });

/** Top-1 accuracy per split and method, mean with +- std error bars, one panel per group. */
export function comparisonAccuracyChart(c: Comparison): VegaLiteSpec {
  const values = c.groups.flatMap((g) =>
    g.methods.flatMap((m) =>
      SPLITS.flatMap(([k, split]) => {
        const v = m[k];
        return v === null
          ? []
          : [{ groupName: printable(g.name), method: printable(m.label), group: split, ...bar(v) }];
      }),
    ),
  );
  const present = SPLIT_ORDER.filter((s) => values.some((v) => v.group === s));
  const inner = groupedBars({
    values: [],
    methods: allMethods(c),
    groups: present,
    yTitle: 'top-1 accuracy (%), mean ± std',
    format: '.1f',
    errorBars: true,
  });
  const { $schema, background, data: _data, ...panel } = inner;
  return {
    $schema,
    background,
    title: 'Top-1 accuracy by split: mean over runs, error bars ± one sample standard deviation',
    data: { values },
    facet: {
      field: 'groupName',
      type: 'nominal',
      sort: c.groups.map((g) => printable(g.name)),
      title: null,
      header: { labelFontSize: 12, labelFontWeight: 'bold', labelLimit: 600 },
    },
    columns: c.groups.length > 1 ? 2 : 1,
    spec: panel,
    resolve: { scale: { y: 'shared' } },
  };
}

/** Macro-F1 and ECE per method, mean with +- std error bars, a row per group. */
export function comparisonF1EceChart(c: Comparison): VegaLiteSpec {
  const metrics = ['macro-F1', 'ECE (lower is better)'];
  const values = c.groups.flatMap((g) =>
    g.methods.flatMap((m) =>
      (
        [
          ['macroF1', metrics[0]!],
          ['ece', metrics[1]!],
        ] as const
      ).flatMap(([k, metric]) => {
        const v = m[k];
        return v === null
          ? []
          : [{ groupName: printable(g.name), method: printable(m.label), metric, ...bar(v) }];
      }),
    ),
  );
  return methodMetricBars({
    values,
    methods: allMethods(c),
    metrics,
    format: '.3f',
    errorBars: true,
    title:
      'Macro-F1 and expected calibration error: mean over runs, error bars ± one sample standard deviation',
    ...(c.groups.length > 1
      ? { rows: { field: 'groupName', sort: c.groups.map((g) => printable(g.name)) } }
      : {}),
  });
}

/** The comparison's charts, by file name. */
export function comparisonCharts(c: Comparison): Record<string, VegaLiteSpec> {
  return { 'compare-accuracy': comparisonAccuracyChart(c), 'compare-f1-ece': comparisonF1EceChart(c) };
}

/** mean ± std; a single run's value alone (its spread is unknown, not 0). */
const pm = (v: MeanStd | null, digits: number) =>
  v === null
    ? '-'
    : v.n === 1
      ? v.mean.toFixed(digits)
      : `${v.mean.toFixed(digits)} ± ${v.std.toFixed(digits)}`;

const HEADER = ['method', 'All', 'Many', 'Medium', 'Few', 'macro-F1', 'ECE', 'runs'];

function rows(g: ComparisonGroup): string[][] {
  return g.methods.map((m) => [
    m.label,
    pm(m.overall, 1),
    pm(m.many, 1),
    pm(m.medium, 1),
    pm(m.few, 1),
    pm(m.macroF1, 3),
    pm(m.ece, 3),
    String(m.runs),
  ]);
}

/** The calibration and unknown-prior table of a group (none for runs without these numbers). */
const extra = (g: ComparisonGroup) => extraRows(g.methods, pm);

/** The comparison for a terminal: tables per group, the group's name and seeds above them. */
export function comparisonText(c: Comparison): string {
  return c.groups
    .map((g) => {
      const x = extra(g);
      return `${groupTitle(g)}\n${formatTable(HEADER, rows(g))}${x.length ? `\n\n${formatTable(EXTRA_TABLE_HEADER, x)}` : ''}`;
    })
    .join('\n\n');
}

const cell = (s: string) => s.replace(/\|/g, '\\|');

/** results.md of a comparison: how runs were grouped, a table per group, the charts. */
export function comparisonMarkdown(c: Comparison, charts: string[]): string {
  const lines = [
    '# longtail: comparison of runs',
    '',
    "Top-1 accuracy (%) on each run's test set, mean ± sample standard deviation (n - 1) over the runs of a group " +
      '(a value without ± is one run); macro-F1 and ECE as fractions; `runs`: how many runs of the group have the method.',
    '',
    `Runs are grouped by their configuration except ${Object.keys(c.ignoredKeys)
      .map((k) => `\`${k}\``)
      .join(', ')}` +
      (c.differingKeys.length
        ? `; the groups differ in ${c.differingKeys.map((k) => `\`${k}\``).join(', ')}.`
        : '.'),
    '',
  ];
  for (const g of c.groups) {
    lines.push(
      `## ${cell(printable(g.name))}`,
      '',
      `${g.runs.length} run${g.runs.length === 1 ? '' : 's'}: ${g.runs
        .map((r) => `\`${printable(r.dir)}\`${r.seed === null ? '' : ` (seed ${r.seed})`}`)
        .join(', ')}`,
      '',
      `| ${HEADER.join(' | ')} |`,
      `|${HEADER.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`,
      ...rows(g).map((r) => `| ${r.map((x) => cell(printable(x))).join(' | ')} |`),
      '',
      ...extraMarkdown(extra(g).map((r) => r.map((x) => printable(x)))),
    );
  }
  if (c.warnings.length) lines.push('**Warnings**', '', ...c.warnings.map((w) => `- ${printable(w)}`), '');
  lines.push(...charts.map((ch) => `![${ch}](${ch}.svg)`), '');
  return lines.join('\n');
}

function groupTableHtml(g: ComparisonGroup): string {
  const head = `<tr>${HEADER.map((h) => `<th>${esc(h)}</th>`).join('')}</tr>`;
  const body = rows(g)
    .map((r) => `<tr>${r.map((x) => `<td>${esc(x)}</td>`).join('')}</tr>`)
    .join('\n');
  const x = extra(g);
  const extraTable = x.length
    ? `\n<p>${esc(EXTRA_CAPTION)}</p>\n<table class="results"><tr>${EXTRA_TABLE_HEADER.map((h) => `<th>${esc(h)}</th>`).join('')}</tr>\n${x
        .map((r) => `<tr>${r.map((v) => `<td>${esc(v)}</td>`).join('')}</tr>`)
        .join('\n')}</table>`
    : '';
  return `<table class="results">${head}\n${body}</table>${extraTable}`;
}

/** report.html of a comparison: tables, charts (inline SVG), runs and how they were grouped. */
export function comparisonHtml(c: Comparison, charts: { name: string; svg: string }[]): string {
  const groups = c.groups
    .map(
      (g) => `<section class="group">
<h3>${esc(g.name)}</h3>
<p>${g.runs.length} run${g.runs.length === 1 ? '' : 's'}${
        Object.keys(g.differing).length
          ? `; ${Object.entries(g.differing)
              .map(([k, v]) => `<code>${esc(k)}</code> = <code>${esc(showValue(v))}</code>`)
              .join(', ')}`
          : ''
      }</p>
${groupTableHtml(g)}
</section>`,
    )
    .join('\n');
  const runs = c.groups
    .flatMap((g) =>
      g.runs.map(
        (r) =>
          `<tr><td>${esc(r.dir)}</td><td>${esc(g.name)}</td><td>${r.seed ?? '-'}</td><td>${esc(r.command)}</td><td>${esc(r.createdAt)}</td></tr>`,
      ),
    )
    .join('\n');
  const shared = c.groups[0]!.config;
  const common = Object.fromEntries(Object.entries(shared).filter(([k]) => !c.differingKeys.includes(k)));
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>longtail: comparison of ${c.groups.reduce((a, g) => a + g.runs.length, 0)} runs</title>
<style>
body { font-family: system-ui, sans-serif; max-width: 1480px; margin: 2em auto; color: #222; padding: 0 1em; }
table { border-collapse: collapse; margin: 0.5em 0 1em; } td, th { border: 1px solid #ccc; padding: 3px 9px; text-align: right; }
td:first-child, th:first-child { text-align: left; } th { background: #f3f3f3; }
table.runs td, table.runs th { text-align: left; font-size: 13px; }
.groups { display: flex; flex-wrap: wrap; gap: 0 2em; }
figure { margin: 1.5em 0; } figure svg { max-width: 100%; height: auto; }
pre { background: #f7f7f7; padding: 1em; overflow-x: auto; font-size: 12px; }
code { background: #f3f3f3; padding: 0 3px; }
.warn { color: #a15c00; }
@media print { body { max-width: none; margin: 0; } figure, section.group, table { break-inside: avoid; } }
</style></head><body>
<h1>longtail: comparison of runs</h1>
<p>Top-1 accuracy (%) on each run's test set, <b>mean ± sample standard deviation</b> (n − 1) over the runs of a group
(a value without ± is one run); macro-F1 and ECE as fractions; <i>runs</i>: how many runs of the group have the method.
Runs share a group when their configuration is equal except ${Object.keys(c.ignoredKeys)
    .map((k) => `<code>${esc(k)}</code>`)
    .join(', ')} (see <a href="#grouping">grouping</a>).</p>
${c.warnings.map((w) => `<p class="warn">Warning: ${esc(w)}</p>`).join('\n')}
<h2>${c.groups.length} group${c.groups.length === 1 ? '' : 's'}</h2>
<div class="groups">
${groups}
</div>
${charts.map((ch) => `<figure id="${esc(ch.name)}">${ch.svg}</figure>`).join('\n')}
<h2>Runs</h2>
<table class="runs"><tr><th>folder</th><th>group</th><th>seed</th><th>command</th><th>written</th></tr>
${runs}
</table>
<h2 id="grouping">Grouping</h2>
<p>Left out of the grouping key: ${Object.entries(c.ignoredKeys)
    .map(([k, why]) => `<code>${esc(k)}</code> (${esc(why)})`)
    .join('; ')}.
${c.differingKeys.length ? `The groups differ in ${c.differingKeys.map((k) => `<code>${esc(k)}</code>`).join(', ')}.` : 'All runs share one configuration.'}</p>
<p>Settings every group shares:</p>
<pre>${JSON.stringify(common, null, 2).split('\n').map(esc).join('\n')}</pre>
<p>Written ${esc(c.createdAt)} by <code>longtail report</code>.</p>
</body></html>
`;
}

/**
 * Writes a comparison into `dir` (a folder the caller has opened: run-folder.ts's openRun):
 * results.json, results.md, the charts (SVG, PNG, spec) and report.html. With `pageOnly`, only
 * the charts and report.html: a `demo --seeds` folder keeps its summary.json and summary.md, and
 * a folder of runs must not hold a results.json (it would read as a run). Returns the paths written.
 */
export async function writeComparisonFiles(
  dir: string,
  comparison: Comparison,
  opts: { pageOnly?: boolean } = {},
): Promise<{ report: string; markdown: string | null; results: string | null; charts: string[] }> {
  ComparisonSchema.parse(comparison);
  const results = opts.pageOnly ? null : runFile(dir, 'results');
  if (results) writeJsonAtomic(results, comparison);
  const charts = comparisonCharts(comparison);
  const rendered: { name: string; svg: string }[] = [];
  for (const [name, spec] of Object.entries(charts)) {
    const files = await writeChart(join(runFile(dir, 'charts'), name), spec);
    rendered.push({ name, svg: readFileSync(files.svg, 'utf8') });
  }
  const markdown = opts.pageOnly ? null : runFile(dir, 'resultsMarkdown');
  if (markdown)
    writeFileAtomic(
      markdown,
      comparisonMarkdown(
        comparison,
        Object.keys(charts).map((c) => `${RUN_FILES.charts}/${c}`),
      ),
    );
  const report = runFile(dir, 'report');
  writeFileAtomic(report, comparisonHtml(comparison, rendered));
  return { report, markdown, results, charts: Object.keys(charts) };
}
