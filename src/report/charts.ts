/**
 * The report's charts as Vega-Lite specs (data inline, so each spec is the evidence for what it
 * draws). Rendered to SVG and PNG by render.ts. Class names are data (folder names): control
 * characters are shown as text (`printable`), and vega's SVG writer escapes markup.
 */
import { hasMethod, methodEntry } from '../classifiers/registry.ts';
import type { ChartSpec } from '../classifiers/types.ts';
import { printable } from '../io/display.ts';
import { type RunResults, shiftedColumns, shiftedRows } from './results.ts';

export type VegaLiteSpec = ChartSpec;
type MethodResult = RunResults['methods'][number];

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

/**
 * A tuned method's sweep (tau-norm's tau, logit adjustment's tau, ...): test accuracy per split
 * against the parameter, the value chosen on validation marked. Null without a sweep.
 */
export function sweepChart(m: Pick<MethodResult, 'label' | 'tuned'>): VegaLiteSpec | null {
  const t = m.tuned;
  if (!t || t.sweep.length === 0) return null;
  const values = t.sweep.flatMap((p) =>
    (['overall', 'many', 'medium', 'few'] as const)
      .filter((k) => p.test[k] !== null)
      .map((k) => ({ value: p.value, split: k === 'overall' ? 'All' : k, accuracy: 100 * p.test[k]! })),
  );
  const how = t.chosenOn === 'val' ? 'chosen on validation' : t.chosenOn === 'given' ? 'given' : 'default';
  return {
    ...base,
    title: `${m.label}: test accuracy against ${t.param} (${how}: ${t.param} = ${t.value})`,
    data: { values },
    layer: [
      {
        mark: { type: 'line', point: true },
        encoding: {
          x: { field: 'value', type: 'quantitative', title: t.param },
          y: { field: 'accuracy', type: 'quantitative', title: 'top-1 accuracy (%)' },
          color: { field: 'split', type: 'nominal', sort: ['All', 'many', 'medium', 'few'] },
        },
      },
      {
        data: { values: [{ value: t.value }] },
        mark: { type: 'rule', strokeDash: [4, 4], color: 'black' },
        encoding: { x: { field: 'value', type: 'quantitative' } },
      },
    ],
  };
}

/** What each method adds: its sweep (`<method>-sweep`) and the charts its registry entry draws. */
export function methodCharts(r: RunResults): Record<string, VegaLiteSpec | null> {
  const out: Record<string, VegaLiteSpec | null> = {};
  for (const m of r.methods) {
    out[`${m.method}-sweep`] = sweepChart(m);
    const extra = hasMethod(m.method) ? methodEntry(m.method).charts?.(m) : undefined;
    for (const [name, spec] of Object.entries(extra ?? {})) out[`${m.method}-${name}`] = spec;
  }
  return out;
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
    { epoch: h.epoch, metric: 'train accuracy', value: h.trainAcc, panel: 'accuracy (%)' },
    ...(h.valAcc === null
      ? []
      : [{ epoch: h.epoch, metric: 'validation accuracy', value: h.valAcc, panel: 'accuracy (%)' }]),
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

/** Overall accuracy against the test set's class prior, forward long tails to backward, one line per method. */
export function shiftedPriorsChart(r: RunResults): VegaLiteSpec | null {
  const cols = shiftedColumns(r);
  if (cols.length === 0) return null;
  const values = shiftedRows(r).flatMap((row) =>
    row.values.flatMap((v, i) =>
      v === null ? [] : [{ method: row.label, prior: cols[i]!.prior, accuracy: v }],
    ),
  );
  return {
    ...base,
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
      color: { field: 'method', type: 'nominal', sort: r.methods.map((m) => m.label) },
    },
  };
}

export function allCharts(r: RunResults): Record<string, VegaLiteSpec> {
  const out: Record<string, VegaLiteSpec | null> = {
    'weight-norms': weightNormChart(r),
    'split-accuracy': splitBarsChart(r),
    'shifted-priors': shiftedPriorsChart(r),
    'class-counts': classCountChart(r.dataset),
    'training-curves': trainingCurvesChart(r),
    ...methodCharts(r),
  };
  return Object.fromEntries(Object.entries(out).filter(([, v]) => v !== null)) as Record<
    string,
    VegaLiteSpec
  >;
}
