/**
 * The report's charts as Vega-Lite specs (data inline, so each spec is the evidence for what it
 * draws), one chart a file in this folder; `allCharts` gathers a run's. Rendered to SVG and PNG by
 * ../render.ts.
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

import type { RunResults } from '../results.ts';
import { classCountChart } from './class-counts.ts';
import type { VegaLiteSpec } from './common.ts';
import { confusionChart } from './confusion.ts';
import { f1EceChart } from './f1-ece.ts';
import { perClassChart } from './per-class.ts';
import { perClassBySplitChart } from './per-class-splits.ts';
import { priorCorrectionChart } from './prior-correction.ts';
import { shiftedPriorsChart } from './shifted-priors.ts';
import { splitBarsChart } from './split-accuracy.ts';
import { methodCharts } from './sweep.ts';
import { trainingCurvesChart } from './training-curves.ts';
import { weightNormChart } from './weight-norms.ts';

/** Every chart of a run's report, by file name (a chart without data is left out). */
export function allCharts(r: RunResults): Record<string, VegaLiteSpec> {
  const out: Record<string, VegaLiteSpec | null> = {
    'weight-norms': weightNormChart(r),
    'split-accuracy': splitBarsChart(r),
    'shifted-priors': shiftedPriorsChart(r),
    'prior-correction': priorCorrectionChart(r),
    'class-counts': classCountChart(r.dataset),
    'training-curves': trainingCurvesChart(r),
    'f1-ece': f1EceChart(r),
    'per-class-accuracy': perClassChart(r),
    'per-class-by-split': perClassBySplitChart(r),
    confusion: confusionChart(r),
    ...methodCharts(r),
  };
  return Object.fromEntries(Object.entries(out).filter(([, v]) => v !== null)) as Record<
    string,
    VegaLiteSpec
  >;
}
