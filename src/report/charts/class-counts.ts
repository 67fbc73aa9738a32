/** The long tail itself: training images per class. */
import { printable } from '../../io/display.ts';
import type { RunResults } from '../results.ts';
import {
  base,
  headToTail,
  integerAxis,
  MAX_NAMED_CLASSES,
  SCHEMA,
  splitColour,
  splitOfCount,
  type VegaLiteSpec,
} from './common.ts';

/**
 * The long tail itself: training images per class, coloured by split. Up to MAX_NAMED_CLASSES
 * classes as horizontal bars (names readable, counts written at the bars); beyond, bars by rank.
 */
export function classCountChart(
  d: Pick<RunResults['dataset'], 'classNames' | 'trainCounts' | 'thresholds'>,
): VegaLiteSpec {
  const order = headToTail(d.trainCounts);
  const values = order.map(({ c, n, rank }) => ({
    class: printable(d.classNames[c] ?? String(c)),
    index: c,
    rank,
    count: n,
    split: splitOfCount(n, d.thresholds),
  }));
  const colour = splitColour(['many', 'medium', 'few'].filter((s) => values.some((v) => v.split === s)));
  const title = `Training images per class (many > ${d.thresholds.many}, few < ${d.thresholds.few})`;
  if (order.length <= MAX_NAMED_CLASSES) {
    const y = {
      field: 'class',
      type: 'nominal',
      sort: { field: 'rank', op: 'min' },
      title: null,
      axis: { labelLimit: 200 },
    };
    return {
      $schema: SCHEMA,
      background: 'white',
      title,
      width: 420,
      height: { step: 18 },
      data: { values },
      layer: [
        {
          mark: { type: 'bar', strokeWidth: 1.5 },
          encoding: {
            y,
            // Room at the right for the longest bar's count.
            x: {
              field: 'count',
              type: 'quantitative',
              title: 'training images',
              scale: { domain: [0, Math.max(1, ...d.trainCounts) * 1.12] },
              // One bar a class, nothing to stack: and vega's stack groups rows in a plain
              // object keyed by class name, which a class named `__proto__` breaks.
              stack: null,
            },
            color: colour,
            stroke: colour,
          },
        },
        {
          mark: { type: 'text', align: 'left', dx: 3, fontSize: 10, color: '#222' },
          encoding: {
            y,
            x: { field: 'count', type: 'quantitative' },
            text: { field: 'count', type: 'quantitative' },
          },
        },
      ],
    };
  }
  return {
    ...base,
    width: 640,
    title,
    data: { values },
    mark: { type: 'bar' },
    encoding: {
      x: {
        field: 'rank',
        type: 'quantitative',
        axis: integerAxis('class rank by training images (1 = head)', 1, order.length, 10),
        scale: { domain: [0.5, order.length + 0.5], nice: false },
      },
      y: { field: 'count', type: 'quantitative', title: 'training images' },
      color: colour,
      tooltip: [{ field: 'class' }, { field: 'count' }],
    },
  };
}
