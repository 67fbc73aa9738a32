/** results.json: its schema (validated in tests and on read) and the paper's table. */
import { z } from 'zod';
import { hasMethod, methodNames } from '../classifiers/registry.ts';
import { Stage1SummarySchema } from '../io/run-folder.ts';

const nullablePct = z.number().min(0).max(100).nullable();
const fraction = z.number().min(0).max(1);
const splitAccuracy = z.object({
  overall: fraction,
  many: fraction.nullable(),
  medium: fraction.nullable(),
  few: fraction.nullable(),
});

/** A parameter chosen on validation and its sweep (classifiers/types.ts: TunedParam). */
export const TunedParamSchema = z.object({
  param: z.string(),
  value: z.number(),
  chosenOn: z.enum(['given', 'val', 'default']),
  sweep: z.array(z.object({ value: z.number(), val: splitAccuracy.nullable(), test: splitAccuracy })),
});

export const MethodResultSchema = z.object({
  // Any registered method (registry.ts), built in or added with registerClassifier.
  method: z.string().refine(hasMethod, {
    error: (i) => `unknown method ${JSON.stringify(i.input)}; registered: ${methodNames().join(', ')}`,
  }),
  label: z.string(),
  overall: z.number().min(0).max(100),
  many: nullablePct,
  medium: nullablePct,
  few: nullablePct,
  macroF1: z.number().min(0).max(1),
  ece: z.number().min(0).max(1),
  valOverall: nullablePct,
  perClass: z.array(z.number().min(0).max(1).nullable()),
  /** Test precision per class (null: never predicted); absent in runs written before it was kept. */
  perClassPrecision: z.array(z.number().min(0).max(1).nullable()).optional(),
  // Test confusion[true][predicted] counts, kept up to 200 classes (eval/metrics.ts
  // CONFUSION_MAX_CLASSES); [] above (8,142 classes would be 66M numbers).
  confusion: z.array(z.array(z.number().int().min(0))),
  /** The most frequent test errors, by count (eval/metrics.ts); absent in runs written before it was kept. */
  confusedPairs: z
    .array(
      z.object({
        true: z.number().int().min(0),
        predicted: z.number().int().min(0),
        count: z.number().int().positive(),
        /** count / the true class's test images. */
        share: z.number().min(0).max(1),
      }),
    )
    .optional(),
  weightNorms: z.array(z.number().min(0)),
  tuned: TunedParamSchema.nullable(),
  shifted: z
    .array(
      z.object({
        prior: z.string(),
        ratio: z.number().min(1),
        direction: z.enum(['forward', 'backward', 'uniform']),
        n: z.number().int().positive(),
        seed: z.number().int(),
        overall: z.number().min(0).max(100),
        many: nullablePct,
        medium: nullablePct,
        few: nullablePct,
        knownPrior: z.number().min(0).max(100),
        // Prior estimated from the set's unlabeled images (pipeline/stage2.ts); absent before it existed.
        calibrated: nullablePct.optional(),
        em: nullablePct.optional(),
        bbse: nullablePct.optional(),
        emTv: fraction.nullable().optional(),
        bbseTv: fraction.nullable().optional(),
      }),
    )
    .default([]),
  calibration: z
    .object({
      method: z.enum(['none', 'temperature', 'bcts']),
      temperature: z.number().positive(),
      // BCTS (absent before it existed and for the other modes).
      bias: z.array(z.number()).optional(),
      valNllBefore: z.number().min(0).nullable(),
      valNllAfter: z.number().min(0).nullable(),
      valNllTemperature: z.number().min(0).optional(),
      accuracyAfter: fraction.optional(),
      eceBefore: fraction,
      eceAfter: fraction,
      nllBefore: z.number().min(0),
      nllAfter: z.number().min(0),
      sourcePrior: z.enum(['validation', 'uniform']),
      notApplicable: z.string().nullable(),
      note: z.string().nullable(),
    })
    .optional(),
  recall: z
    .object({
      worstClass: fraction.nullable(),
      hmeanRecall: fraction.nullable(),
      gmeanRecall: fraction.nullable(),
      nll: z.number().min(0),
    })
    .optional(),
  mode: z.enum(['features', 'augmented']).nullable(),
  seconds: z.number().min(0),
  details: z.record(z.string(), z.unknown()),
});

// Stage 1's records are a run file's too (stage1.json): their schemas live with its reader.
export { EpochRecordSchema } from '../io/run-folder.ts';

export const RunResultsSchema = z.object({
  /** 2: stage-1 accuracies (history, bestValAcc) in percent, as the methods' (1: fractions). */
  schemaVersion: z.literal(2),
  tool: z.literal('longtail'),
  command: z.string(),
  createdAt: z.string(),
  dataset: z.object({
    name: z.string(),
    classNames: z.array(z.string()),
    trainCounts: z.array(z.number().int().min(0)),
    valSize: z.number().int().min(0),
    testSize: z.number().int().min(0),
    splits: z.object({ many: z.array(z.number()), medium: z.array(z.number()), few: z.array(z.number()) }),
    thresholds: z.object({ many: z.number(), few: z.number() }),
    source: z.string(),
    /** How the splits were made, where a loader records it (e.g. an image folder's drawn validation files). */
    profile: z.record(z.string(), z.unknown()).optional(),
  }),
  config: z.record(z.string(), z.unknown()),
  environment: z.object({
    backend: z.string(),
    tfjs: z.string(),
    node: z.string(),
    cpus: z.number(),
    cpuModel: z.string(),
    platform: z.string(),
  }),
  stage1: Stage1SummarySchema.nullable(),
  methods: z.array(MethodResultSchema).min(1),
  warnings: z.array(z.string()),
  seconds: z.object({ total: z.number(), stage1: z.number(), features: z.number(), stage2: z.number() }),
});

export type RunResults = z.infer<typeof RunResultsSchema>;

const fmt = (v: number | null) => (v === null ? '-' : v.toFixed(1));

/**
 * Whether a parameter chosen on validation sits at the first or last value of its sweep: the best
 * value may lie beyond the grid, so the choice is a bound, not an optimum.
 */
export function atGridEdge(t: RunResults['methods'][number]['tuned']): boolean {
  if (t === null || t.chosenOn !== 'val' || t.sweep.length < 2) return false;
  const values = t.sweep.map((s) => s.value);
  return t.value <= Math.min(...values) || t.value >= Math.max(...values);
}

/** One sentence per method whose validation-chosen parameter is at the edge of its grid. */
export function gridEdgeWarnings(r: Pick<RunResults, 'methods'>): string[] {
  return r.methods
    .filter((m) => atGridEdge(m.tuned))
    .map((m) => {
      const values = m.tuned!.sweep.map((s) => s.value);
      return (
        `${m.label}: ${m.tuned!.param} = ${m.tuned!.value} is at the edge of the grid searched on validation ` +
        `(${Math.min(...values)}..${Math.max(...values)}); the best value may lie beyond it. Give a wider grid or set it.`
      );
    });
}

/** The paper's table: method x All / Many / Medium / Few (percent); `!` marks a tuned value at its grid's edge. */
export function tableRows(results: Pick<RunResults, 'methods'>): (string | null)[][] {
  return results.methods.map((m) => [
    m.label +
      (m.tuned ? ` (${m.tuned.param}=${m.tuned.value}${atGridEdge(m.tuned) ? ', grid edge!' : ''})` : ''),
    fmt(m.overall),
    fmt(m.many),
    fmt(m.medium),
    fmt(m.few),
  ]);
}

export const TABLE_HEADER = ['method', 'All', 'Many', 'Medium', 'Few'];

/** The compact JSON of `--json`: per method overall / many / medium / few, the tuned parameter and mode. */
export function compactResults(r: RunResults) {
  return {
    dataset: r.dataset.name,
    methods: r.methods.map((m) => ({
      method: m.method,
      overall: m.overall,
      many: m.many,
      medium: m.medium,
      few: m.few,
      tuned: m.tuned ? { [m.tuned.param]: m.tuned.value } : null,
      mode: m.mode,
      macroF1: m.macroF1,
      ece: m.ece,
    })),
    runDir: undefined as string | undefined,
  };
}

/** Shifted priors in the order of LADE's tables: forward (most skewed first), uniform, backward. */
export function shiftedColumns(r: Pick<RunResults, 'methods'>): { prior: string; key: number }[] {
  const seen = new Map<string, number>();
  for (const m of r.methods)
    for (const s of m.shifted)
      seen.set(s.prior, s.direction === 'forward' ? -s.ratio : s.direction === 'backward' ? s.ratio : 0);
  if (seen.size === 0) return [];
  seen.set('uniform', 0);
  return [...seen].map(([prior, key]) => ({ prior, key })).sort((a, b) => a.key - b.key);
}

/** One row per method: overall accuracy on each shifted test prior (columns of shiftedColumns). */
export function shiftedRows(r: Pick<RunResults, 'methods'>): { label: string; values: (number | null)[] }[] {
  const cols = shiftedColumns(r);
  return r.methods.map((m) => ({
    label: m.label,
    values: cols.map((c) =>
      c.prior === 'uniform' ? m.overall : (m.shifted.find((s) => s.prior === c.prior)?.overall ?? null),
    ),
  }));
}
