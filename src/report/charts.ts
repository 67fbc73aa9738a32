/**
 * The report's charts as Vega-Lite specs (data inline, so each spec is the evidence for what it
 * draws). Rendered to SVG and PNG by render.ts. Class names are data (folder names): control
 * characters are shown as text (`printable`), and vega's SVG writer escapes markup.
 */
import { printable } from '../io/display.ts';
import type { RunResults } from './results.ts';

export type VegaLiteSpec = Record<string, unknown> & { data: { values: Record<string, unknown>[] } };

const base = {
  $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
  background: 'white',
  width: 420,
  height: 260,
};

/** ||w_i|| per class, classes sorted by training count (descending), one line per method. */
export function weightNormChart(r: RunResults): VegaLiteSpec {
  const order = r.dataset.trainCounts.map((n, c) => ({ n, c })).sort((a, b) => b.n - a.n || a.c - b.c);
  const values = r.methods.flatMap((m) =>
    order.map(({ n, c }, rank) => ({
      method: m.label,
      rank,
      class: printable(r.dataset.classNames[c] ?? String(c)),
      trainCount: n,
      norm: m.weightNorms[c],
    })),
  );
  return {
    ...base,
    title: 'Classifier weight norm per class (classes by training count)',
    data: { values },
    mark: { type: 'line', point: true },
    encoding: {
      x: { field: 'rank', type: 'ordinal', title: 'class rank by training images (head to tail)' },
      y: { field: 'norm', type: 'quantitative', title: '||w_i||' },
      color: { field: 'method', type: 'nominal', sort: r.methods.map((m) => m.label) },
      tooltip: [{ field: 'class' }, { field: 'trainCount' }, { field: 'norm', format: '.3f' }],
    },
  };
}

/** tau-norm's sweep: accuracy per split against tau, the chosen tau marked. */
export function tauSweepChart(r: RunResults): VegaLiteSpec | null {
  const t = r.methods.find((m) => m.method === 'tau-norm');
  if (!t) return null;
  const sweep = t.details.sweep as { tau: number; test: Record<string, number | null> }[];
  const values = sweep.flatMap((p) =>
    (['overall', 'many', 'medium', 'few'] as const)
      .filter((k) => p.test[k] !== null)
      .map((k) => ({ tau: p.tau, split: k === 'overall' ? 'All' : k, accuracy: 100 * p.test[k]! })),
  );
  return {
    ...base,
    title: `tau-norm: test accuracy against tau (chosen on validation: tau = ${t.tau})`,
    data: { values },
    layer: [
      {
        mark: { type: 'line', point: true },
        encoding: {
          x: { field: 'tau', type: 'quantitative', title: 'tau' },
          y: { field: 'accuracy', type: 'quantitative', title: 'top-1 accuracy (%)' },
          color: { field: 'split', type: 'nominal', sort: ['All', 'many', 'medium', 'few'] },
        },
      },
      {
        data: { values: [{ tau: t.tau }] },
        mark: { type: 'rule', strokeDash: [4, 4], color: 'black' },
        encoding: { x: { field: 'tau', type: 'quantitative' } },
      },
    ],
  };
}

/** Accuracy per split for each method, grouped bars. */
export function splitBarsChart(r: RunResults): VegaLiteSpec {
  const values = r.methods.flatMap((m) =>
    (['overall', 'many', 'medium', 'few'] as const)
      .filter((k) => m[k] !== null)
      .map((k) => ({ method: m.label, split: k === 'overall' ? 'All' : k, accuracy: m[k] })),
  );
  return {
    ...base,
    title: 'Top-1 accuracy by split',
    data: { values },
    mark: 'bar',
    encoding: {
      x: { field: 'split', type: 'nominal', sort: ['All', 'many', 'medium', 'few'], title: null },
      xOffset: { field: 'method', sort: r.methods.map((m) => m.label) },
      y: { field: 'accuracy', type: 'quantitative', title: 'top-1 accuracy (%)' },
      color: { field: 'method', type: 'nominal', sort: r.methods.map((m) => m.label) },
    },
  };
}

/** The long tail itself: training images per class. */
export function classCountChart(
  d: Pick<RunResults['dataset'], 'classNames' | 'trainCounts' | 'thresholds'>,
): VegaLiteSpec {
  const values = d.trainCounts.map((n, c) => ({
    class: printable(d.classNames[c] ?? String(c)),
    index: c,
    count: n,
    split: n > d.thresholds.many ? 'many' : n < d.thresholds.few ? 'few' : 'medium',
  }));
  return {
    ...base,
    title: 'Training images per class',
    data: { values },
    mark: 'bar',
    encoding: {
      x: { field: 'class', type: 'nominal', sort: { field: 'count', order: 'descending' }, title: null },
      y: { field: 'count', type: 'quantitative', title: 'training images' },
      color: { field: 'split', type: 'nominal', sort: ['many', 'medium', 'few'] },
    },
  };
}

/** Stage-1 training curves: loss, train and validation accuracy per epoch. */
export function trainingCurvesChart(r: RunResults): VegaLiteSpec | null {
  if (!r.stage1 || r.stage1.history.length === 0) return null;
  const values = r.stage1.history.flatMap((h) => [
    { epoch: h.epoch, metric: 'train loss', value: h.loss, panel: 'loss' },
    { epoch: h.epoch, metric: 'train accuracy', value: 100 * h.trainAcc, panel: 'accuracy (%)' },
    ...(h.valAcc === null
      ? []
      : [{ epoch: h.epoch, metric: 'validation accuracy', value: 100 * h.valAcc, panel: 'accuracy (%)' }]),
  ]);
  return {
    $schema: base.$schema,
    background: 'white',
    title: `Stage 1 training (best validation epoch: ${r.stage1.bestEpoch})`,
    data: { values },
    facet: { column: { field: 'panel', type: 'nominal', title: null } },
    spec: {
      width: 260,
      height: 220,
      mark: { type: 'line', point: true },
      encoding: {
        x: { field: 'epoch', type: 'quantitative' },
        y: { field: 'value', type: 'quantitative', title: null },
        color: { field: 'metric', type: 'nominal' },
      },
    },
    resolve: { scale: { y: 'independent' } },
  };
}

export function allCharts(r: RunResults): Record<string, VegaLiteSpec> {
  const out: Record<string, VegaLiteSpec | null> = {
    'weight-norms': weightNormChart(r),
    'tau-sweep': tauSweepChart(r),
    'split-accuracy': splitBarsChart(r),
    'class-counts': classCountChart(r.dataset),
    'training-curves': trainingCurvesChart(r),
  };
  return Object.fromEntries(Object.entries(out).filter(([, v]) => v !== null)) as Record<
    string,
    VegaLiteSpec
  >;
}
