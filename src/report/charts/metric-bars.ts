/** Horizontal bars per method, one facet column per metric. */
import { methodColour, SCHEMA, shown, type VegaLiteSpec } from './common.ts';

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
