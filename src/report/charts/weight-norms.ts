/** The classifier's weight norm per class, head to tail. */
import { printable } from '../../io/display.ts';
import type { RunResults } from '../results.ts';
import {
  base,
  headToTail,
  integerAxis,
  MAX_NAMED_CLASSES,
  type MethodResult,
  methodColour,
  shown,
  type VegaLiteSpec,
} from './common.ts';

/** Weight norms identical across methods (e.g. Joint and tau-norm at tau = 0): their lines overlap. */
function identicalNorms(methods: readonly MethodResult[]): string[][] {
  const same = (a: number[], b: number[]) =>
    a.length === b.length && a.every((v, i) => Math.abs(v - b[i]!) <= 1e-9 * Math.max(1, Math.abs(v)));
  const groups: MethodResult[][] = [];
  for (const m of methods) {
    const g = groups.find((x) => same(x[0]!.weightNorms, m.weightNorms));
    if (g) g.push(m);
    else groups.push([m]);
  }
  return groups.filter((g) => g.length > 1).map((g) => g.map(shown));
}

/** ||w_i|| per class, classes sorted by training count (descending), one line per method. */
export function weightNormChart(r: RunResults): VegaLiteSpec {
  const order = headToTail(r.dataset.trainCounts);
  const values = r.methods.flatMap((m) =>
    order.map(({ n, c, rank }) => ({
      method: shown(m),
      rank,
      class: printable(r.dataset.classNames[c] ?? String(c)),
      trainCount: n,
      norm: m.weightNorms[c],
    })),
  );
  const overlap = identicalNorms(r.methods);
  return {
    ...base,
    title: {
      text: 'Classifier weight norm per class (classes by training count)',
      ...(overlap.length
        ? { subtitle: `same weights, one line: ${overlap.map((g) => g.join(' = ')).join('; ')}` }
        : {}),
    },
    data: { values },
    mark: { type: 'line', point: order.length <= MAX_NAMED_CLASSES },
    encoding: {
      x: {
        field: 'rank',
        type: 'quantitative',
        axis: integerAxis('class rank by training images (1 = head)', 1, order.length, 10),
        scale: { domain: [1, Math.max(2, order.length)], nice: false },
      },
      y: { field: 'norm', type: 'quantitative', title: '||w_i||' },
      color: methodColour(r.methods),
      tooltip: [
        { field: 'method' },
        { field: 'class' },
        { field: 'trainCount' },
        { field: 'norm', format: '.3f' },
      ],
    },
  };
}
