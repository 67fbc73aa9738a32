/** Confusion matrices as heat maps (up to MAX_CONFUSION_CLASSES classes). */
import { printable } from '../../io/display.ts';
import type { RunResults } from '../results.ts';
import { headToTail, MAX_CONFUSION_CLASSES, SCHEMA, shown, type VegaLiteSpec } from './common.ts';

/**
 * The confusion matrix of each method as a heat map: rows the true class, columns the predicted
 * one, both head to tail, shaded by the share of the true class's images (so a tail class with
 * few test images reads as clearly as a head class); the share is written in each cell up to 12
 * classes. Null when the run has more than MAX_CONFUSION_CLASSES classes or no method recorded a
 * matrix (results.json keeps `confusion: []` for large class counts).
 */
export function confusionChart(r: RunResults): VegaLiteSpec | null {
  const k = r.dataset.trainCounts.length;
  if (k === 0 || k > MAX_CONFUSION_CLASSES) return null;
  const methods = r.methods.filter(
    (m) => m.confusion.length === k && m.confusion.every((row) => row.length === k),
  );
  if (methods.length === 0) return null;
  const order = headToTail(r.dataset.trainCounts);
  const names = k <= 20;
  const label = (c: number, rank: number) =>
    names ? printable(r.dataset.classNames[c] ?? String(c)) : String(rank);
  const values = methods.flatMap((m) =>
    order.flatMap((t) => {
      const row = m.confusion[t.c]!;
      const total = row.reduce((a, b) => a + b, 0);
      return order.map((p) => ({
        method: shown(m),
        true: label(t.c, t.rank),
        trueRank: t.rank,
        predicted: label(p.c, p.rank),
        predRank: p.rank,
        count: row[p.c]!,
        share: total === 0 ? 0 : row[p.c]! / total,
      }));
    }),
  );
  const cell = k <= 12 ? 24 : k <= 20 ? 16 : Math.max(5, Math.floor(360 / k));
  const axisOf = (title: string, angle: number) => ({
    title,
    labelAngle: angle,
    labelLimit: 90,
    // Names at -45 degrees do not overlap at these cell sizes; ranks are thinned.
    labelOverlap: !names,
    ...(names ? {} : { labelFontSize: 10 }),
  });
  const layers: Record<string, unknown>[] = [
    {
      mark: { type: 'rect' },
      encoding: {
        color: {
          field: 'share',
          type: 'quantitative',
          title: 'share of row',
          // White at 0, so an empty cell reads as empty.
          scale: { domain: [0, 1], range: ['#ffffff', '#08519c'], interpolate: 'rgb' },
          legend: { format: '.0%' },
        },
      },
    },
  ];
  if (k <= 12)
    layers.push({
      transform: [{ filter: 'datum.count > 0' }],
      mark: { type: 'text', fontSize: 10 },
      encoding: {
        text: { field: 'share', type: 'quantitative', format: '.0%' },
        color: { condition: { test: 'datum.share > 0.5', value: 'white' }, value: '#222' },
      },
    });
  return {
    $schema: SCHEMA,
    background: 'white',
    title: {
      text: 'Confusion matrices on the test set (rows: true class, columns: predicted; head to tail)',
      ...(names ? {} : { subtitle: 'classes by rank of training images (1 = head)' }),
    },
    data: { values },
    facet: {
      field: 'method',
      type: 'nominal',
      sort: methods.map(shown),
      title: null,
      header: { labelFontSize: 12, labelFontWeight: 'bold' },
    },
    columns: 3,
    spec: {
      width: cell * k,
      height: cell * k,
      encoding: {
        x: {
          field: 'predicted',
          type: 'ordinal',
          sort: { field: 'predRank', op: 'min' },
          axis: axisOf('predicted', names ? -45 : 0),
        },
        y: {
          field: 'true',
          type: 'ordinal',
          sort: { field: 'trueRank', op: 'min' },
          axis: axisOf('true', 0),
        },
      },
      layer: layers,
    },
  };
}
