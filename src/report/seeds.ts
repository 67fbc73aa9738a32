/**
 * Means over seeds: one method's numbers across runs that differ only in the seed, as
 * mean +- sample standard deviation (n - 1 in the denominator, as papers report over seeds).
 */
import type { RunResults } from './results.ts';
import { formatTable } from './table.ts';

export interface MeanStd {
  mean: number;
  /** Sample standard deviation; 0 for a single run. */
  std: number;
  n: number;
}

/** Mean and sample standard deviation of the non-null values; null when all are null. */
export function meanStd(values: readonly (number | null)[]): MeanStd | null {
  const v = values.filter((x): x is number => x !== null);
  if (v.length === 0) return null;
  const mean = v.reduce((a, b) => a + b, 0) / v.length;
  const std = v.length > 1 ? Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / (v.length - 1)) : 0;
  return { mean, std, n: v.length };
}

const METRICS = ['overall', 'many', 'medium', 'few', 'macroF1', 'ece'] as const;
type Metric = (typeof METRICS)[number];

export interface SeedSummary {
  seeds: number[];
  runs: string[];
  methods: ({ method: string; label: string } & Record<Metric, MeanStd | null>)[];
}

/** Aggregates runs of the same configuration over seeds, per method (in the runs' order). */
export function summariseSeeds(seeds: number[], runs: RunResults[], dirs: string[]): SeedSummary {
  const first = runs[0];
  if (!first) throw new Error('summariseSeeds needs at least one run');
  return {
    seeds,
    runs: dirs,
    methods: first.methods.map((m0) => {
      const per = runs.map((r) => r.methods.find((m) => m.method === m0.method));
      const row = { method: m0.method, label: m0.label } as SeedSummary['methods'][number];
      for (const k of METRICS) row[k] = meanStd(per.map((m) => (m ? m[k] : null)));
      return row;
    }),
  };
}

const fmt = (v: MeanStd | null, digits = 1) =>
  v === null ? '-' : `${v.mean.toFixed(digits)} ± ${v.std.toFixed(digits)}`;

const HEADER = ['method', 'All', 'Many', 'Medium', 'Few', 'macro-F1', 'ECE'];

function rows(s: SeedSummary): string[][] {
  return s.methods.map((m) => [
    m.label,
    fmt(m.overall),
    fmt(m.many),
    fmt(m.medium),
    fmt(m.few),
    fmt(m.macroF1, 3),
    fmt(m.ece, 3),
  ]);
}

export function seedsTextTable(s: SeedSummary): string {
  return formatTable(HEADER, rows(s));
}

export function seedsMarkdown(s: SeedSummary, title: string): string {
  return [
    `# ${title}`,
    '',
    `Top-1 accuracy (%) on the test set, mean ± sample standard deviation over seeds ${s.seeds.join(', ')} ` +
      `(${s.seeds.length} runs: ${s.runs.map((r) => `\`${r}\``).join(', ')}); macro-F1 and ECE as fractions.`,
    '',
    `| ${HEADER.join(' | ')} |`,
    `|${HEADER.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`,
    ...rows(s).map((r) => `| ${r.join(' | ')} |`),
    '',
  ].join('\n');
}
