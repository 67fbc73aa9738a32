/** Accuracy on shifted test priors. */
import { printable } from '../../io/display.ts';
import { type RunResults, shiftedColumns, shiftedRows } from '../results.ts';
import { base, methodColour, type VegaLiteSpec } from './common.ts';

/** Overall accuracy against the test set's class prior, forward long tails to backward, one line per method. */
export function shiftedPriorsChart(r: RunResults): VegaLiteSpec | null {
  const cols = shiftedColumns(r);
  if (cols.length === 0) return null;
  const values = shiftedRows(r).flatMap((row) =>
    row.values.flatMap((v, i) =>
      v === null ? [] : [{ method: printable(row.label), prior: cols[i]!.prior, accuracy: v }],
    ),
  );
  return {
    ...base,
    width: Math.max(520, cols.length * 90),
    title: 'Top-1 accuracy on shifted test priors',
    data: { values },
    mark: { type: 'line', point: true },
    encoding: {
      x: {
        field: 'prior',
        type: 'ordinal',
        sort: cols.map((c) => c.prior),
        title: 'test prior (forward long tail <- uniform -> backward long tail)',
        axis: { labelAngle: 0 },
      },
      y: { field: 'accuracy', type: 'quantitative', title: 'top-1 accuracy (%)', scale: { zero: false } },
      color: methodColour(r.methods),
      tooltip: [{ field: 'method' }, { field: 'prior' }, { field: 'accuracy', format: '.1f' }],
    },
  };
}
