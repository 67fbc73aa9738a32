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

type MethodRow = RunResults['methods'][number];
// Hand-built rows (tests, the library) may lack `shifted`: treated as no shifted sets.
const b50 = (m: MethodRow) =>
  (m.shifted as MethodRow['shifted'] | undefined)?.find((s) => s.prior === 'backward 50');

/**
 * Calibration and unknown-prior numbers beside top-1 (pipeline/stage2.ts), per method: recall
 * summaries and NLL (fractions / nats), test ECE before and after calibration, and on the
 * backward-50 shifted test set the top-1 (%) of the raw and the calibrated head, the EM- and BBSE-estimated and
 * the known prior, and the estimators' TV errors. null where a run lacks them (older runs).
 */
export const EXTRA_METRICS = {
  worstClass: (m: MethodRow) => m.recall?.worstClass ?? null,
  hmeanRecall: (m: MethodRow) => m.recall?.hmeanRecall ?? null,
  gmeanRecall: (m: MethodRow) => m.recall?.gmeanRecall ?? null,
  nll: (m: MethodRow) => m.recall?.nll ?? null,
  eceBefore: (m: MethodRow) => m.calibration?.eceBefore ?? null,
  eceAfter: (m: MethodRow) => m.calibration?.eceAfter ?? null,
  b50None: (m: MethodRow) => b50(m)?.overall ?? null,
  b50Calibrated: (m: MethodRow) => b50(m)?.calibrated ?? null,
  b50Em: (m: MethodRow) => b50(m)?.em ?? null,
  b50Bbse: (m: MethodRow) => b50(m)?.bbse ?? null,
  b50Known: (m: MethodRow) => b50(m)?.knownPrior ?? null,
  b50EmTv: (m: MethodRow) => b50(m)?.emTv ?? null,
  b50BbseTv: (m: MethodRow) => b50(m)?.bbseTv ?? null,
} as const;
export type ExtraMetric = keyof typeof EXTRA_METRICS;
export const EXTRA_KEYS = Object.keys(EXTRA_METRICS) as ExtraMetric[];

/** Column titles of the extra table, and digits shown, per EXTRA_KEYS entry. */
export const EXTRA_HEADER: Readonly<Record<ExtraMetric, [string, number]>> = {
  worstClass: ['worst class', 3],
  hmeanRecall: ['H-mean recall', 3],
  gmeanRecall: ['G-mean recall', 3],
  nll: ['NLL', 3],
  eceBefore: ['ECE before', 3],
  eceAfter: ['ECE after', 3],
  b50None: ['B50 none', 1],
  b50Calibrated: ['B50 calibrated', 1],
  b50Em: ['B50 EM', 1],
  b50Bbse: ['B50 BBSE', 1],
  b50Known: ['B50 known', 1],
  b50EmTv: ['EM TV', 3],
  b50BbseTv: ['BBSE TV', 3],
};

/** The sentence under the extra table's title. */
export const EXTRA_CAPTION =
  'Beside top-1: worst-class, harmonic- and geometric-mean recall and NLL (of the calibrated scores), test ECE before and after calibration (fractions); ' +
  "on the backward-50 shifted test set, top-1 (%) of the raw head, of the calibrated head with no prior adjustment (the deployed head), with the prior estimated by EM and by BBSE from its unlabeled images, and with the known prior, and the estimates' total-variation errors.";

export interface SeedSummary {
  seeds: number[];
  runs: string[];
  methods: ({ method: string; label: string } & Record<Metric, MeanStd | null> &
    Record<ExtraMetric, MeanStd | null>)[];
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
      for (const k of EXTRA_KEYS) row[k] = meanStd(per.map((m) => (m ? EXTRA_METRICS[k](m) : null)));
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

/** The extra table's rows (method label first), or none when no method of any run has these numbers. */
export function extraRows(
  methods: readonly ({ label: string } & Partial<Record<ExtraMetric, MeanStd | null>>)[],
  show: (v: MeanStd | null, digits: number) => string = fmt,
): string[][] {
  if (!methods.some((m) => EXTRA_KEYS.some((k) => m[k] != null))) return [];
  return methods.map((m) => [m.label, ...EXTRA_KEYS.map((k) => show(m[k] ?? null, EXTRA_HEADER[k][1]))]);
}

export const EXTRA_TABLE_HEADER = ['method', ...EXTRA_KEYS.map((k) => EXTRA_HEADER[k][0])];

export function seedsTextTable(s: SeedSummary): string {
  const extra = extraRows(s.methods);
  return [
    formatTable(HEADER, rows(s)),
    ...(extra.length ? [formatTable(EXTRA_TABLE_HEADER, extra)] : []),
  ].join('\n\n');
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
    ...extraMarkdown(extraRows(s.methods)),
  ].join('\n');
}

/** The extra table as markdown lines (caption, table), or none. */
export function extraMarkdown(extra: string[][]): string[] {
  if (extra.length === 0) return [];
  return [
    EXTRA_CAPTION,
    '',
    `| ${EXTRA_TABLE_HEADER.join(' | ')} |`,
    `|${EXTRA_TABLE_HEADER.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`,
    ...extra.map((r) => `| ${r.map((x) => x.replace(/\|/g, '\\|')).join(' | ')} |`),
    '',
  ];
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
