/** Vertical grouped bars (split x method), values written on the bars. */
import { methodColour, SCHEMA, shown, type VegaLiteSpec } from './common.ts';

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
