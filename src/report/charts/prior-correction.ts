/**
 * Accuracy against the shift ratio of the test prior (forward and backward long tails, ratios 2,
 * 10, 50; 1 = the test set as it is) with four lines: no correction, the prior estimated by EM,
 * by BBSE, and the known prior (the oracle). From results.json's `shifted` entries; one row of
 * panels per method, for the best methods by validation accuracy (test accuracy without one).
 */
import type { RunResults } from '../results.ts';
import { SCHEMA, shown, type VegaLiteSpec } from './common.ts';

/** The four corrections, each with its own colour (not a method's) and dash. */
export const CORRECTIONS = [
  { key: 'overall', label: 'no correction', colour: '#4d4d4d', dash: [1, 0] },
  { key: 'em', label: 'EM-estimated prior', colour: '#1b9e77', dash: [1, 0] },
  { key: 'bbse', label: 'BBSE-estimated prior', colour: '#d95f02', dash: [1, 0] },
  { key: 'knownPrior', label: 'known prior (oracle)', colour: '#7570b3', dash: [5, 3] },
] as const;

/** The `count` methods with the best validation accuracy (test accuracy without validation), best first. */
export function bestMethods(r: Pick<RunResults, 'methods'>, count: number): RunResults['methods'] {
  const score = (m: RunResults['methods'][number]) => m.valOverall ?? m.overall;
  return [...r.methods].sort((a, b) => score(b) - score(a)).slice(0, count);
}

export function priorCorrectionChart(r: RunResults, count = 3): VegaLiteSpec | null {
  const methods = bestMethods(
    { methods: r.methods.filter((m) => m.shifted.some((s) => s.direction !== 'uniform')) },
    count,
  );
  if (methods.length === 0) return null;
  const values = methods.flatMap((m) => {
    const rows = m.shifted.filter((s) => s.direction !== 'uniform');
    const atOne = (direction: string) =>
      CORRECTIONS.filter((c) => c.key === 'overall' || c.key === 'knownPrior').map((c) => ({
        method: shown(m),
        direction,
        ratio: 1,
        correction: c.label,
        accuracy: m.overall,
      }));
    return [
      // Ratio 1 is the test set as it is: every correction starts from the uncorrected accuracy.
      ...atOne('forward'),
      ...atOne('backward'),
      ...rows.flatMap((s) =>
        CORRECTIONS.flatMap((c) => {
          const v = s[c.key];
          return v === null || v === undefined
            ? []
            : [
                {
                  method: shown(m),
                  direction: s.direction,
                  ratio: s.ratio,
                  correction: c.label,
                  accuracy: v,
                },
              ];
        }),
      ),
    ];
  });
  const present = CORRECTIONS.filter((c) => values.some((v) => v.correction === c.label));
  const scale = { domain: present.map((c) => c.label), range: present.map((c) => c.colour) };
  return {
    $schema: SCHEMA,
    background: 'white',
    title: {
      text: 'Top-1 accuracy against the shift of the test prior, with the prior corrected or not',
      subtitle: `the ${methods.length} best method${methods.length > 1 ? 's' : ''} by validation accuracy; ratio n_max / n_min of the test set (1: as it is)`,
    },
    data: { values },
    facet: {
      row: {
        field: 'method',
        type: 'nominal',
        sort: methods.map(shown),
        title: null,
        header: { labelFontSize: 12, labelFontWeight: 'bold', labelAngle: 0, labelAlign: 'left' },
      },
      column: {
        field: 'direction',
        type: 'nominal',
        sort: ['forward', 'backward'],
        title: null,
        header: { labelFontSize: 12, labelExpr: "datum.value + ' long tail'" },
      },
    },
    spec: {
      width: 300,
      height: 170,
      mark: { type: 'line', point: true, strokeWidth: 2 },
      encoding: {
        x: {
          field: 'ratio',
          type: 'quantitative',
          scale: { type: 'log', domain: [1, 50] },
          axis: { values: [1, 2, 10, 50], format: 'd', title: 'shift ratio', labelAngle: 0 },
        },
        y: { field: 'accuracy', type: 'quantitative', title: 'top-1 (%)', scale: { zero: false } },
        color: { field: 'correction', type: 'nominal', scale, sort: scale.domain, title: null },
        strokeDash: {
          field: 'correction',
          type: 'nominal',
          scale: { domain: present.map((c) => c.label), range: present.map((c) => c.dash) },
          legend: null,
        },
      },
    },
  };
}
