/** Stage-1 training curves. */
import type { RunResults } from '../results.ts';
import { integerAxis, SCHEMA, type VegaLiteSpec } from './common.ts';

const METRIC_COLOURS = {
  domain: ['train accuracy', 'validation accuracy', 'train loss'],
  range: ['#1b9e77', '#d95f02', '#7570b3'],
};

/** Stage-1 training curves: loss, train and validation accuracy per (integer) epoch, the last value written. */
export function trainingCurvesChart(r: RunResults): VegaLiteSpec | null {
  if (!r.stage1 || r.stage1.history.length === 0) return null;
  const last = r.stage1.history.at(-1)!.epoch;
  const values = r.stage1.history.flatMap((h) => [
    { epoch: h.epoch, metric: 'train loss', value: h.loss, panel: 'loss', label: h.loss.toFixed(3) },
    {
      epoch: h.epoch,
      metric: 'train accuracy',
      value: h.trainAcc,
      panel: 'accuracy (%)',
      label: h.trainAcc.toFixed(1),
    },
    ...(h.valAcc === null
      ? []
      : [
          {
            epoch: h.epoch,
            metric: 'validation accuracy',
            value: h.valAcc,
            panel: 'accuracy (%)',
            label: h.valAcc.toFixed(1),
          },
        ]),
  ]);
  const first = r.stage1.history[0]!.epoch;
  const x = {
    field: 'epoch',
    type: 'quantitative',
    axis: integerAxis('epoch', first, last, 12),
    // One epoch alone still gets an axis around it, not a point on a zero-width scale.
    scale: { domain: first === last ? [first - 1, last + 1] : [first, last], nice: false },
  };
  const colour = { field: 'metric', type: 'nominal', scale: METRIC_COLOURS, title: null };
  return {
    $schema: SCHEMA,
    background: 'white',
    title: `Stage 1 training (best validation epoch: ${r.stage1.bestEpoch}, dashed)`,
    data: { values },
    facet: { column: { field: 'panel', type: 'nominal', sort: ['accuracy (%)', 'loss'], title: null } },
    spec: {
      width: 300,
      height: 220,
      layer: [
        {
          mark: { type: 'line', point: true },
          encoding: { x, y: { field: 'value', type: 'quantitative', title: null }, color: colour },
        },
        {
          transform: [
            { filter: `datum.epoch === ${r.stage1.bestEpoch}` },
            { aggregate: [{ op: 'count', as: 'n' }], groupby: ['epoch'] },
          ],
          mark: { type: 'rule', strokeDash: [4, 4], color: '#555' },
          encoding: { x: { field: 'epoch', type: 'quantitative' } },
        },
        {
          transform: [{ filter: `datum.epoch === ${last}` }],
          mark: { type: 'text', align: 'right', dx: -4, dy: -8, fontSize: 10 },
          encoding: {
            x,
            y: { field: 'value', type: 'quantitative' },
            text: { field: 'label' },
            color: colour,
          },
        },
      ],
    },
    resolve: { scale: { y: 'independent' } },
  };
}
