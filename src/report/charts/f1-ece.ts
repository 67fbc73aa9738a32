/** Macro-F1 and ECE per method. */
import type { RunResults } from '../results.ts';
import { shown, type VegaLiteSpec } from './common.ts';
import { methodMetricBars } from './metric-bars.ts';

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
