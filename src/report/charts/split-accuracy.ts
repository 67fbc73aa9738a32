/** Top-1 accuracy by split, one bar per method. */
import { SPLIT_ORDER } from '../palette.ts';
import type { RunResults } from '../results.ts';
import { SPLIT_KEYS, SPLIT_OF_KEY, shown, type VegaLiteSpec } from './common.ts';
import { groupedBars } from './grouped-bars.ts';

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
