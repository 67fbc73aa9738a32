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

/**
 * Aggregates runs of the same configuration over seeds, per method: every method any run has (in
 * the order they first appear), each over the runs that have it (`n` of each metric says how many).
 */
export function summariseSeeds(seeds: number[], runs: RunResults[], dirs: string[]): SeedSummary {
  if (runs.length === 0) throw new Error('summariseSeeds needs at least one run');
  const methods = new Map<string, RunResults['methods'][number]>();
  for (const r of runs) for (const m of r.methods) if (!methods.has(m.method)) methods.set(m.method, m);
  return {
    seeds,
    runs: dirs,
    methods: [...methods.values()].map((m0) => {
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

const avg = (values: readonly (number | null | undefined)[]): number | null => {
  const v = values.filter((x): x is number => typeof x === 'number');
  return v.length === 0 ? null : v.reduce((a, b) => a + b, 0) / v.length;
};

/**
 * One run standing for several runs of the same configuration over seeds: every number a
 * method reports (accuracies, weight norms, the tuning sweep) is the mean over the runs; the
 * rest is the first run's. The study judges the paper's findings on it.
 */
export function meanOfRuns(runs: readonly RunResults[]): RunResults {
  const first = runs[0];
  if (!first) throw new Error('meanOfRuns needs at least one run');
  if (runs.length === 1) return first;
  return {
    ...first,
    methods: first.methods.map((m) => {
      const all = runs.map((r) => r.methods.find((x) => x.method === m.method) ?? m);
      const sweep = m.tuned?.sweep.map((p, j) => {
        const mean = (k: 'test' | 'val') => {
          if (p[k] === null) return null;
          const keys = Object.keys(p[k]!) as (keyof NonNullable<typeof p.test>)[];
          return Object.fromEntries(
            keys.map((key) => [key, avg(all.map((a) => a.tuned?.sweep[j]?.[k]?.[key]))]),
          );
        };
        return { ...p, test: mean('test') as typeof p.test, val: mean('val') as typeof p.val };
      });
      return {
        ...m,
        overall: avg(all.map((a) => a.overall))!,
        many: avg(all.map((a) => a.many)),
        medium: avg(all.map((a) => a.medium)),
        few: avg(all.map((a) => a.few)),
        macroF1: avg(all.map((a) => a.macroF1))!,
        ece: avg(all.map((a) => a.ece))!,
        weightNorms: m.weightNorms.map((_, c) => avg(all.map((a) => a.weightNorms[c]))!),
        tuned: m.tuned && sweep ? { ...m.tuned, sweep } : m.tuned,
      };
    }),
  };
}
