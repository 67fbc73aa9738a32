/**
 * The report's charts as Vega-Lite specs (data inline, so each spec is the evidence for what it
 * draws). Rendered to SVG and PNG by render.ts.
 *
 * Rules every chart follows (a static SVG has no tooltips: vega's SVG writer keeps a tooltip only
 * as an aria-label, which no viewer shows on hover):
 * - one colour per method and per split everywhere (palette.ts), whatever else the run holds;
 * - values are written on bars, and a bar of value 0 is drawn as a line in its colour with "0.0"
 *   above it, so a zero is never mistaken for a missing bar;
 * - short axis labels are horizontal; long class-rank axes are quantitative with integer ticks;
 *   epochs are integers.
 * Class names and method labels are data (folder names, registered labels): control characters
 * are shown as text (`printable`), and vega's SVG writer escapes markup.
 */
import { hasMethod, methodEntry } from '../classifiers/registry.ts';
import type { ChartSpec } from '../classifiers/types.ts';
import { printable } from '../io/display.ts';
import { methodColourScale, SPLIT_ORDER, splitColourScale } from './palette.ts';
import { type RunResults, shiftedColumns, shiftedRows } from './results.ts';

export type VegaLiteSpec = ChartSpec;
type MethodResult = RunResults['methods'][number];

const SCHEMA = 'https://vega.github.io/schema/vega-lite/v5.json';
const base = { $schema: SCHEMA, background: 'white', width: 520, height: 280 };

/** Up to this many classes, charts draw one mark (and a name) per class; beyond, a rank axis. */
export const MAX_NAMED_CLASSES = 50;
/** Above this many classes the per-class chart draws each method's classes as one faint line, not bars. */
export const MAX_BARRED_CLASSES = 200;
/** Confusion matrices are drawn up to this many classes (results.json may hold none beyond). */
export const MAX_CONFUSION_CLASSES = 50;

const SPLIT_OF_KEY = { overall: 'All', many: 'many', medium: 'medium', few: 'few' } as const;
const SPLIT_KEYS = ['overall', 'many', 'medium', 'few'] as const;

/** The label a chart shows for a method (printable: a registered label is anyone's text). */
const shown = (m: { label: string }) => printable(m.label);

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
const integerAxis = (title: string, lo: number, hi: number, max = 10) => ({
  title,
  format: 'd',
  values: integerTicks(lo, hi, max),
  labelAngle: 0,
  labelOverlap: true,
});

/** Training count order: classes head to tail (ties by index), with their 1-based rank. */
function headToTail(trainCounts: readonly number[]): { c: number; n: number; rank: number }[] {
  return trainCounts
    .map((n, c) => ({ n, c }))
    .sort((a, b) => b.n - a.n || a.c - b.c)
    .map((x, i) => ({ ...x, rank: i + 1 }));
}

const splitOfCount = (n: number, t: { many: number; few: number }) =>
  n > t.many ? 'many' : n < t.few ? 'few' : 'medium';

/**
 * Vertical grouped bars with the value written above each bar (and zero drawn as a line):
 * `x` the group (a split), `xOffset` the method. Rows: { method, split, value, lo?, hi? }; with
 * lo / hi an error bar is drawn (mean +- std), and the label is the mean.
 */
export function groupedBars(opts: {
  values: Record<string, unknown>[];
  methods: readonly { method: string; label: string }[];
  groups: readonly string[];
  yTitle: string;
  format: string;
  errorBars?: boolean;
  title?: string;
  subtitle?: string;
}): VegaLiteSpec {
  const sortMethods = opts.methods.map(shown);
  const perBar = 24;
  const width = Math.max(300, opts.groups.length * (sortMethods.length * perBar + 18));
  const x = {
    field: 'group',
    type: 'nominal',
    sort: [...opts.groups],
    title: null,
    axis: { labelAngle: 0, labelFontSize: 12, domain: true, ticks: false },
    scale: { paddingInner: 0.12 },
  };
  const xOffset = { field: 'method', sort: sortMethods, scale: { paddingInner: 0.08 } };
  const colour = methodColour(opts.methods);
  const layers: Record<string, unknown>[] = [
    {
      // The stroke in the bar's own colour keeps a bar of value 0 visible (a line on the axis).
      mark: { type: 'bar', strokeWidth: 1.5 },
      encoding: {
        x,
        xOffset,
        y: { field: 'value', type: 'quantitative', title: opts.yTitle, scale: { zero: true } },
        color: colour,
        stroke: colour,
      },
    },
  ];
  if (opts.errorBars)
    layers.push({
      mark: { type: 'rule', color: 'black', strokeWidth: 1.2 },
      encoding: {
        x,
        xOffset,
        y: { field: 'lo', type: 'quantitative' },
        y2: { field: 'hi' },
      },
    });
  layers.push({
    mark: { type: 'text', baseline: 'bottom', dy: -3, fontSize: 10, color: '#222' },
    encoding: {
      x,
      xOffset,
      y: { field: opts.errorBars ? 'hi' : 'value', type: 'quantitative' },
      text: { field: 'value', type: 'quantitative', format: opts.format },
    },
  });
  return {
    $schema: SCHEMA,
    background: 'white',
    ...(opts.title
      ? { title: opts.subtitle ? { text: opts.title, subtitle: opts.subtitle } : opts.title }
      : {}),
    width,
    height: 280,
    data: { values: opts.values },
    layer: layers,
  };
}

/**
 * Horizontal bars, one per method, value written at the bar's end; a facet column per metric
 * (independent scales). Rows: { method, metric, value, lo?, hi? }.
 */
export function methodMetricBars(opts: {
  values: Record<string, unknown>[];
  methods: readonly { method: string; label: string }[];
  metrics: readonly string[];
  format: string;
  errorBars?: boolean;
  title: string;
  /** A row of panels per value of this field (e.g. a comparison's groups). */
  rows?: { field: string; sort: string[] };
}): VegaLiteSpec {
  const y = { field: 'method', type: 'nominal', sort: opts.methods.map(shown), title: null };
  const colour = methodColour(opts.methods, null);
  const xEnd = opts.errorBars ? 'hi' : 'value';
  const layers: Record<string, unknown>[] = [
    {
      mark: { type: 'bar', strokeWidth: 1.5 },
      encoding: {
        y,
        x: { field: 'value', type: 'quantitative', title: null, scale: { zero: true } },
        color: { ...colour, legend: null },
        stroke: colour,
      },
    },
  ];
  if (opts.errorBars)
    layers.push({
      mark: { type: 'rule', color: 'black', strokeWidth: 1.2 },
      encoding: { y, x: { field: 'lo', type: 'quantitative' }, x2: { field: 'hi' } },
    });
  layers.push({
    mark: { type: 'text', align: 'left', dx: 3, fontSize: 10, color: '#222' },
    encoding: {
      y,
      x: { field: xEnd, type: 'quantitative' },
      text: { field: 'value', type: 'quantitative', format: opts.format },
    },
  });
  return {
    $schema: SCHEMA,
    background: 'white',
    title: opts.title,
    data: { values: opts.values },
    facet: {
      column: {
        field: 'metric',
        type: 'nominal',
        sort: [...opts.metrics],
        title: null,
        header: { labelFontSize: 12, labelFontWeight: 'bold' },
      },
      ...(opts.rows
        ? {
            row: {
              field: opts.rows.field,
              type: 'nominal',
              sort: opts.rows.sort,
              title: null,
              header: {
                labelFontSize: 12,
                labelFontWeight: 'bold',
                labelAngle: 0,
                labelAlign: 'left',
                labelLimit: 400,
              },
            },
          }
        : {}),
    },
    spec: { width: 260, height: { step: 20 }, layer: layers },
    resolve: { scale: { x: 'independent' } },
  };
}

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

/**
 * A tuned method's sweep (tau-norm's tau, logit adjustment's tau, ...): test accuracy per split
 * against the parameter, the value chosen on validation marked and its accuracies written beside
 * it. Null without a sweep.
 */
export function sweepChart(m: Pick<MethodResult, 'label' | 'tuned'>): VegaLiteSpec | null {
  const t = m.tuned;
  if (!t || t.sweep.length === 0) return null;
  const values = t.sweep.flatMap((p) =>
    SPLIT_KEYS.filter((k) => p.test[k] !== null).map((k) => ({
      value: p.value,
      split: SPLIT_OF_KEY[k],
      accuracy: 100 * p.test[k]!,
      chosen: p.value === t.value,
    })),
  );
  const how = t.chosenOn === 'val' ? 'chosen on validation' : t.chosenOn === 'given' ? 'given' : 'default';
  const colour = splitColour([...new Set(values.map((v) => v.split))]);
  const x = { field: 'value', type: 'quantitative', title: t.param, axis: { labelAngle: 0 } };
  return {
    ...base,
    title: `${shown(m)}: test accuracy against ${printable(t.param)} (${how}: ${printable(t.param)} = ${t.value})`,
    data: { values },
    layer: [
      {
        mark: { type: 'line', point: true },
        encoding: {
          x,
          y: { field: 'accuracy', type: 'quantitative', title: 'top-1 accuracy (%)' },
          color: colour,
        },
      },
      {
        data: { values: [{ value: t.value }] },
        mark: { type: 'rule', strokeDash: [4, 4], color: 'black' },
        encoding: { x: { field: 'value', type: 'quantitative' } },
      },
      {
        transform: [{ filter: 'datum.chosen' }],
        mark: { type: 'text', align: 'left', dx: 5, dy: -6, fontSize: 10, fontWeight: 'bold' },
        encoding: {
          x,
          y: { field: 'accuracy', type: 'quantitative' },
          text: { field: 'accuracy', type: 'quantitative', format: '.1f' },
          color: colour,
        },
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

/** Accuracy per split for each method: grouped bars, every value written on its bar. */
export function splitBarsChart(r: RunResults): VegaLiteSpec {
  const values = r.methods.flatMap((m) =>
    SPLIT_KEYS.filter((k) => m[k] !== null).map((k) => ({
      method: shown(m),
      split: SPLIT_OF_KEY[k],
      group: SPLIT_OF_KEY[k],
      accuracy: m[k],
      value: m[k],
    })),
  );
  const present = SPLIT_ORDER.filter((s) => values.some((v) => v.split === s));
  const t = r.dataset.thresholds;
  const absent = (['many', 'medium', 'few'] as const).filter((s) => !present.includes(s));
  const rule = { many: `more than ${t.many}`, medium: `${t.few} to ${t.many}`, few: `fewer than ${t.few}` };
  return groupedBars({
    values,
    methods: r.methods,
    groups: present,
    yTitle: 'top-1 accuracy (%)',
    format: '.1f',
    title: 'Top-1 accuracy by split (%)',
    ...(absent.length
      ? {
          subtitle: `no bar for ${absent.join(', ')}: no class has ${absent.map((s) => rule[s]).join(' or ')} training images`,
        }
      : {}),
  });
}

/** Macro-F1 and expected calibration error per method, values written on the bars. */
export function f1EceChart(r: RunResults): VegaLiteSpec {
  const values = r.methods.flatMap((m) => [
    { method: shown(m), metric: 'macro-F1', value: m.macroF1 },
    { method: shown(m), metric: 'ECE (lower is better)', value: m.ece },
  ]);
  return methodMetricBars({
    values,
    methods: r.methods,
    metrics: ['macro-F1', 'ECE (lower is better)'],
    format: '.3f',
    title: 'Macro-F1 and expected calibration error (15 bins) on the test set',
  });
}

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

/** Every chart of a run's report, by file name (a chart without data is left out). */
export function allCharts(r: RunResults): Record<string, VegaLiteSpec> {
  const out: Record<string, VegaLiteSpec | null> = {
    'weight-norms': weightNormChart(r),
    'split-accuracy': splitBarsChart(r),
    'shifted-priors': shiftedPriorsChart(r),
    'class-counts': classCountChart(r.dataset),
    'training-curves': trainingCurvesChart(r),
    'f1-ece': f1EceChart(r),
    'per-class-accuracy': perClassChart(r),
    confusion: confusionChart(r),
    ...methodCharts(r),
  };
  return Object.fromEntries(Object.entries(out).filter(([, v]) => v !== null)) as Record<
    string,
    VegaLiteSpec
  >;
}
