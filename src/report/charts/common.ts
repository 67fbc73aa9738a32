/** What every chart shares: the spec type, sizes, the method and split colour channels, class order. */
import type { ChartSpec } from '../../classifiers/types.ts';
import { printable } from '../../io/display.ts';
import { methodColourScale, SPLIT_ORDER, splitColourScale } from '../palette.ts';
import type { RunResults } from '../results.ts';

export type VegaLiteSpec = ChartSpec;
export type MethodResult = RunResults['methods'][number];

export const SCHEMA = 'https://vega.github.io/schema/vega-lite/v5.json';
export const base = { $schema: SCHEMA, background: 'white', width: 520, height: 280 };

/** Up to this many classes, charts draw one mark (and a name) per class; beyond, a rank axis. */
export const MAX_NAMED_CLASSES = 50;
/** Above this many classes the per-class chart draws each method's classes as one faint line, not bars. */
export const MAX_BARRED_CLASSES = 200;
/** Confusion matrices are drawn up to this many classes (results.json may hold none beyond). */
export const MAX_CONFUSION_CLASSES = 50;

export const SPLIT_OF_KEY = { overall: 'All', many: 'many', medium: 'medium', few: 'few' } as const;
export const SPLIT_KEYS = ['overall', 'many', 'medium', 'few'] as const;

/** The label a chart shows for a method (printable: a registered label is anyone's text). */
export const shown = (m: { label: string }) => printable(m.label);

/** A colour (or stroke) channel pinning every method to its palette colour. */
export function methodColour(
  methods: readonly { method: string; label: string }[],
  title: string | null = 'method',
) {
  const scale = methodColourScale(methods.map((m) => ({ method: m.method, label: shown(m) })));
  return { field: 'method', type: 'nominal', scale, sort: scale.domain, title };
}

/** A colour channel pinning All / many / medium / few to their palette colours (those present). */
export function splitColour(present: readonly string[] = SPLIT_ORDER, title: string | null = 'split') {
  const scale = splitColourScale(present);
  return { field: 'split', type: 'nominal', scale, sort: scale.domain, title };
}

/**
 * Integer ticks from lo to hi, at most about `max` of them, at a step of 1, 2, 5, 10, 20, ...
 * (vega's tickMinStep alone still puts a tick at 1.5 on a domain [1, 2]).
 */
export function integerTicks(lo: number, hi: number, max = 10): number[] {
  let step = 1;
  for (let p = 1; (hi - lo) / step > max; p *= 10)
    step = [1, 2, 5].map((m) => m * p).find((s) => (hi - lo) / s <= max) ?? 10 * p;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi; v += step) out.push(v);
  return out;
}

/** An integer axis (epochs, class ranks) over [lo, hi]: whole-number ticks only, labels horizontal. */
export const integerAxis = (title: string, lo: number, hi: number, max = 10) => ({
  title,
  format: 'd',
  values: integerTicks(lo, hi, max),
  labelAngle: 0,
  labelOverlap: true,
});

/** Training count order: classes head to tail (ties by index), with their 1-based rank. */
export function headToTail(trainCounts: readonly number[]): { c: number; n: number; rank: number }[] {
  return trainCounts
    .map((n, c) => ({ n, c }))
    .sort((a, b) => b.n - a.n || a.c - b.c)
    .map((x, i) => ({ ...x, rank: i + 1 }));
}

export const splitOfCount = (n: number, t: { many: number; few: number }) =>
  n > t.many ? 'many' : n < t.few ? 'few' : 'medium';
