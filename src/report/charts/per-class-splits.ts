/**
 * Above MAX_NAMED_CLASSES classes, per-class accuracy by split: for each split and method, the
 * spread of its classes' test accuracies as a box (quartiles), a line (lowest to highest class)
 * and a mark at the median. Summaries, not one mark per class: the chart's size does not grow
 * with the class count.
 */
import { SPLIT_ORDER } from '../palette.ts';
import type { RunResults } from '../results.ts';
import { MAX_NAMED_CLASSES, methodColour, SCHEMA, shown, splitOfCount, type VegaLiteSpec } from './common.ts';

/** The q-quantile of sorted values, interpolated linearly between ranks (NumPy's default). */
export function quantile(sorted: readonly number[], q: number): number {
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.min(sorted.length - 1, lo + 1);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

/** Per method and split: min, quartiles and max of the classes' accuracies (%), and how many classes. */
export function perClassSplitSummary(r: RunResults) {
  const splitOf = r.dataset.trainCounts.map((n) => splitOfCount(n, r.dataset.thresholds));
  return r.methods.flatMap((m) =>
    SPLIT_ORDER.filter((s) => s !== 'All').flatMap((split) => {
      const v = m.perClass
        .flatMap((a, c) => (a === null || a === undefined || splitOf[c] !== split ? [] : [100 * a]))
        .sort((a, b) => a - b);
      if (v.length === 0) return [];
      return [
        {
          method: shown(m),
          split,
          classes: v.length,
          min: v[0]!,
          q1: quantile(v, 0.25),
          median: quantile(v, 0.5),
          q3: quantile(v, 0.75),
          max: v.at(-1)!,
        },
      ];
    }),
  );
}

export function perClassBySplitChart(r: RunResults): VegaLiteSpec | null {
  if (r.dataset.trainCounts.length <= MAX_NAMED_CLASSES) return null;
  const values = perClassSplitSummary(r);
  if (values.length === 0) return null;
  const splits = SPLIT_ORDER.filter((s) => values.some((v) => v.split === s));
  const counts = splits.map((s) => `${s} ${values.find((v) => v.split === s)!.classes}`).join(', ');
  const x = {
    field: 'split',
    type: 'nominal',
    sort: splits,
    title: null,
    axis: { labelAngle: 0, labelFontSize: 12, ticks: false },
    scale: { paddingInner: 0.15 },
  };
  const xOffset = { field: 'method', sort: r.methods.map(shown), scale: { paddingInner: 0.2 } };
  const y = { type: 'quantitative', title: 'per-class top-1 accuracy (%)', scale: { domain: [0, 100] } };
  const colour = methodColour(r.methods);
  const perBar = 26;
  return {
    $schema: SCHEMA,
    background: 'white',
    title: {
      text: 'Per-class test accuracy by split',
      subtitle: `box: middle half of the classes; line: lowest to highest; black mark: median (classes: ${counts})`,
    },
    width: Math.max(360, splits.length * (r.methods.length * perBar + 30)),
    height: 280,
    data: { values },
    layer: [
      {
        mark: { type: 'rule', strokeWidth: 1.5 },
        encoding: { x, xOffset, y: { ...y, field: 'min' }, y2: { field: 'max' }, color: colour },
      },
      {
        // The stroke keeps a box of zero height (every class at the same accuracy) visible.
        mark: { type: 'bar', strokeWidth: 1.5, width: { band: 0.8 } },
        encoding: {
          x,
          xOffset,
          y: { ...y, field: 'q1' },
          y2: { field: 'q3' },
          color: colour,
          stroke: colour,
        },
      },
      {
        mark: { type: 'tick', color: '#111111', thickness: 2.5, width: 18 },
        encoding: { x, xOffset, y: { ...y, field: 'median' } },
      },
    ],
  };
}
