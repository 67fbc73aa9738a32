/** A tuned method's sweep, and the charts a method's registry entry adds. */
import { hasMethod, methodEntry } from '../../classifiers/registry.ts';
import { printable } from '../../io/display.ts';
import type { RunResults } from '../results.ts';
import {
  base,
  type MethodResult,
  SPLIT_KEYS,
  SPLIT_OF_KEY,
  shown,
  splitColour,
  type VegaLiteSpec,
} from './common.ts';

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
