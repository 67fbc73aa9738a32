/** Test accuracy per class, head to tail, one panel per method. */
import { printable } from '../../io/display.ts';
import { SPLIT_ORDER } from '../palette.ts';
import type { RunResults } from '../results.ts';
import {
  headToTail,
  integerAxis,
  MAX_BARRED_CLASSES,
  MAX_NAMED_CLASSES,
  methodColour,
  SCHEMA,
  shown,
  splitColour,
  splitOfCount,
  type VegaLiteSpec,
} from './common.ts';

/**
 * Test accuracy of every class, classes head to tail by training count: one panel per method
 * (same scales), a bar per class in the method's colour, the many / medium / few ranges shaded in
 * their split colours. A class without test images has no bar and no shade; a class at 0% has a
 * bar drawn as a line on the axis.
 */
export function perClassChart(r: RunResults): VegaLiteSpec {
  const order = headToTail(r.dataset.trainCounts);
  const values = r.methods.flatMap((m) =>
    order.flatMap(({ c, n, rank }) => {
      const acc = m.perClass[c];
      return acc === null || acc === undefined
        ? []
        : [
            {
              method: shown(m),
              rank,
              class: printable(r.dataset.classNames[c] ?? String(c)),
              trainCount: n,
              split: splitOfCount(n, r.dataset.thresholds),
              accuracy: 100 * acc,
            },
          ];
    }),
  );
  const k = Math.max(1, order.length);
  const few = k <= MAX_NAMED_CLASSES;
  // Beyond MAX_NAMED_CLASSES: a line of the mean over 2 * half + 1 neighbouring classes.
  const half = Math.max(1, Math.round(k / 50));
  const scale = { domain: [0.5, k + 0.5], nice: false };
  const x = {
    field: 'from',
    type: 'quantitative',
    axis: integerAxis('class rank by training images (1 = head)', 1, k, k <= 12 ? 12 : 5),
    scale,
  };
  const colour = methodColour(r.methods);
  const y = { type: 'quantitative', title: 'top-1 accuracy (%)', scale: { domain: [0, 100] } };
  return {
    $schema: SCHEMA,
    background: 'white',
    title: {
      text: 'Test accuracy per class, head to tail (shaded: many / medium / few)',
      ...(few ? {} : { subtitle: `line: mean over ${2 * half + 1} neighbouring classes` }),
    },
    data: { values },
    transform: [
      { calculate: 'datum.rank - 0.5', as: 'from' },
      { calculate: 'datum.rank + 0.5', as: 'to' },
      { calculate: 'datum.rank - 0.38', as: 'barFrom' },
      { calculate: 'datum.rank + 0.38', as: 'barTo' },
    ],
    facet: {
      field: 'method',
      type: 'nominal',
      sort: r.methods.map(shown),
      title: null,
      header: { labelFontSize: 12, labelFontWeight: 'bold' },
    },
    columns: 3,
    spec: {
      width: 250,
      height: 130,
      layer: [
        {
          // One shade per split (its ranks are contiguous, head to tail), not one per class: a
          // thousand classes would otherwise be a thousand rectangles per method.
          transform: [
            {
              aggregate: [
                { op: 'min', field: 'from', as: 'from' },
                { op: 'max', field: 'to', as: 'to' },
              ],
              groupby: ['method', 'split'],
            },
          ],
          mark: { type: 'rect', opacity: 0.12 },
          encoding: {
            x,
            x2: { field: 'to' },
            y: { ...y, datum: 0 },
            y2: { datum: 100 },
            fill: splitColour(
              SPLIT_ORDER.filter((s) => values.some((v) => v.split === s)),
              'split (shaded)',
            ),
          },
        },
        ...(k > MAX_BARRED_CLASSES
          ? [
              // Above MAX_BARRED_CLASSES: each class as a faint line, not a bar (the page stays small).
              {
                mark: { type: 'line', strokeWidth: 0.6, opacity: 0.35, interpolate: 'step' },
                encoding: {
                  x: { field: 'rank', type: 'quantitative', scale },
                  y: { ...y, field: 'accuracy' },
                  color: colour,
                },
              },
            ]
          : []),
        ...(k > MAX_BARRED_CLASSES
          ? []
          : [
              {
                mark: few
                  ? { type: 'rect', strokeWidth: 1.5 }
                  : // Hundreds of classes: faint bars, the trend as a line (below).
                    { type: 'rect', opacity: 0.3 },
                encoding: {
                  x: { field: 'barFrom', type: 'quantitative', scale },
                  x2: { field: 'barTo' },
                  y: { ...y, field: 'accuracy' },
                  y2: { datum: 0 },
                  color: colour,
                  ...(few ? { stroke: colour } : {}),
                  tooltip: [
                    { field: 'method' },
                    { field: 'class' },
                    { field: 'trainCount' },
                    { field: 'accuracy', format: '.1f' },
                  ],
                },
              },
            ]),
        ...(few
          ? []
          : [
              {
                transform: [
                  {
                    window: [{ op: 'mean', field: 'accuracy', as: 'smoothed' }],
                    frame: [-half, half],
                    sort: [{ field: 'rank' }],
                    groupby: ['method'],
                  },
                ],
                mark: { type: 'line', strokeWidth: 2 },
                encoding: {
                  x: { field: 'rank', type: 'quantitative', scale },
                  y: { ...y, field: 'smoothed' },
                  color: colour,
                },
              },
            ]),
      ],
    },
    resolve: { scale: { x: 'shared', y: 'shared' } },
  };
}
