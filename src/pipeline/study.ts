/**
 * The paper's sampling study: joint training with instance-balanced, square-root,
 * class-balanced and progressively-balanced sampling, every stage-2 method on each
 * representation, and a check of the paper's five findings on the measured numbers.
 */
import { join } from 'node:path';
import type { PipelineConfig } from '../config/schema.ts';
import { writeFileAtomic, writeJsonAtomic } from '../io/atomic.ts';
import type { VegaLiteSpec } from '../report/charts.ts';
import { markdownTable } from '../report/markdown.ts';
import { writeChart } from '../report/render.ts';
import { compactResults, type RunResults } from '../report/results.ts';
import { type PipelineCallbacks, runPipeline } from './run.ts';

export const STUDY_SAMPLERS = [
  'instance-balanced',
  'square-root',
  'class-balanced',
  'progressively-balanced',
] as const;

export interface Finding {
  id: number;
  claim: string;
  reproduced: boolean;
  evidence: string;
}

/** Spearman rank correlation (average ranks for ties). */
export function spearman(a: number[], b: number[]): number {
  const rank = (v: number[]) => {
    const idx = v.map((x, i) => [x, i] as const).sort((p, q) => p[0] - q[0]);
    const r = new Array<number>(v.length);
    for (let i = 0; i < idx.length; ) {
      let j = i;
      while (j + 1 < idx.length && idx[j + 1]![0] === idx[i]![0]) j++;
      for (let k = i; k <= j; k++) r[idx[k]![1]] = (i + j) / 2;
      i = j + 1;
    }
    return r;
  };
  const ra = rank(a);
  const rb = rank(b);
  const mean = (x: number[]) => x.reduce((s, y) => s + y, 0) / x.length;
  const ma = mean(ra);
  const mb = mean(rb);
  let num = 0;
  let da = 0;
  let db = 0;
  for (let i = 0; i < a.length; i++) {
    num += (ra[i]! - ma) * (rb[i]! - mb);
    da += (ra[i]! - ma) ** 2;
    db += (rb[i]! - mb) ** 2;
  }
  return da === 0 || db === 0 ? 0 : num / Math.sqrt(da * db);
}

const get = (r: RunResults, m: string) => r.methods.find((x) => x.method === m)!;
const f1 = (v: number | null) => (v === null ? '-' : v.toFixed(1));

/** Checks the paper's five findings (METHOD.md) against a study's runs. */
export function checkFindings(runs: Record<string, RunResults>): Finding[] {
  const ib = runs['instance-balanced']!;
  const out: Finding[] = [];
  const joint = (s: string) => (runs[s] ? get(runs[s]!, 'joint').overall : null);
  const sq = joint('square-root');
  const pb = joint('progressively-balanced');
  const jIb = get(ib, 'joint').overall;
  if (sq !== null && pb !== null) {
    out.push({
      id: 1,
      claim:
        'Sampling matters for joint training: square-root and progressively-balanced beat instance-balanced overall',
      reproduced: sq > jIb && pb > jIb,
      evidence: `joint All: IB ${f1(jIb)}, CB ${f1(joint('class-balanced'))}, SqrtB ${f1(sq)}, PB ${f1(pb)}`,
    });
  }
  const cb = runs['class-balanced'];
  if (cb) {
    const methods = ['ncm', 'crt', 'tau-norm', 'lws'];
    const wins = methods.filter((m) => get(ib, m).overall > get(cb, m).overall);
    out.push({
      id: 2,
      claim:
        'Instance-balanced features generalise best: stage-2 methods on IB features beat the same methods on CB features',
      reproduced: wins.length === methods.length,
      evidence: methods
        .map((m) => `${get(ib, m).label} ${f1(get(ib, m).overall)} vs ${f1(get(cb, m).overall)}`)
        .join('; '),
    });
  }
  const dec = ['crt', 'tau-norm', 'lws'];
  const j = get(ib, 'joint');
  out.push({
    id: 3,
    claim:
      'Decoupling helps: cRT, tau-norm and LWS beat joint overall and on few-shot, with a small many-shot loss',
    reproduced: dec.every(
      (m) => get(ib, m).overall > j.overall && (j.few === null || (get(ib, m).few ?? 0) > j.few),
    ),
    evidence: ['joint', ...dec]
      .map(
        (m) =>
          `${get(ib, m).label} ${f1(get(ib, m).overall)} (many ${f1(get(ib, m).many)}, few ${f1(get(ib, m).few)})`,
      )
      .join('; '),
  });
  const counts = ib.dataset.trainCounts;
  const rho = (m: string) => spearman(get(ib, m).weightNorms, counts);
  // "Flatter": the norms vary less relative to their mean (coefficient of variation). Rank
  // correlation alone cannot say it: tau-norm with tau < 1 keeps the ranking of the norms.
  const cv = (m: string) => {
    const v = get(ib, m).weightNorms;
    const mean = v.reduce((a, b) => a + b, 0) / v.length;
    return Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / v.length) / mean;
  };
  out.push({
    id: 4,
    claim: 'Weight norms: after joint training ||w_i|| grows with n_i; cRT, tau-norm and LWS flatten it',
    reproduced: rho('joint') > 0.5 && dec.every((m) => cv(m) < cv('joint')),
    evidence:
      `Spearman(||w_i||, n_i): ${['joint', ...dec].map((m) => `${get(ib, m).label} ${rho(m).toFixed(2)}`).join(', ')}; ` +
      `spread (std / mean of ||w_i||): ${['joint', ...dec].map((m) => `${get(ib, m).label} ${cv(m).toFixed(2)}`).join(', ')}`,
  });
  const tau = get(ib, 'tau-norm');
  const sweep = tau.details.sweep as { tau: number; test: { many: number | null; few: number | null } }[];
  const taus = sweep.map((p) => p.tau);
  const many = sweep.map((p) => p.test.many ?? 0);
  const few = sweep.map((p) => p.test.few ?? 0);
  // Over tau in [0, 1] (where the paper's figure shows the trade-off): few-shot rises steadily
  // while many-shot falls.
  const upto = taus.filter((t) => t <= 1).length;
  const rMany = spearman(taus.slice(0, upto), many.slice(0, upto));
  const rFew = spearman(taus.slice(0, upto), few.slice(0, upto));
  out.push({
    id: 5,
    claim: 'tau trades many-shot for few-shot accuracy smoothly',
    reproduced: rFew > 0.8 && rMany < 0 && many[upto - 1]! < many[0]!,
    evidence: `tau 0 -> 1: many ${f1(100 * many[0]!)} -> ${f1(100 * many[upto - 1]!)}, few ${f1(100 * few[0]!)} -> ${f1(100 * few[upto - 1]!)}; Spearman with tau: many ${rMany.toFixed(2)}, few ${rFew.toFixed(2)}`,
  });
  return out;
}

export interface StudyResult {
  runs: Record<string, RunResults>;
  findings: Finding[];
}

function studyChart(runs: Record<string, RunResults>): VegaLiteSpec {
  const values = Object.entries(runs).flatMap(([sampler, r]) =>
    r.methods.map((m) => ({ sampler, method: m.label, accuracy: m.overall, few: m.few })),
  );
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    background: 'white',
    width: 460,
    height: 260,
    title: 'Stage-2 methods on each stage-1 representation (test top-1, All)',
    data: { values },
    mark: 'bar',
    encoding: {
      x: { field: 'method', type: 'nominal', sort: ['Joint', 'NCM', 'cRT', 'tau-norm', 'LWS'], title: null },
      xOffset: { field: 'sampler', sort: [...STUDY_SAMPLERS] },
      y: { field: 'accuracy', type: 'quantitative', title: 'top-1 accuracy (%)' },
      color: {
        field: 'sampler',
        type: 'nominal',
        sort: [...STUDY_SAMPLERS],
        title: 'stage-1 sampler',
        legend: { labelLimit: 400 },
      },
    },
  };
}

/** Runs the study into `outDir/<sampler>/` and writes study.json, study.md and the chart. */
export async function runSamplerStudy(
  cfg: PipelineConfig,
  outDir: string,
  opts: PipelineCallbacks & { samplers?: readonly string[] } = {},
): Promise<StudyResult> {
  const runs: Record<string, RunResults> = {};
  for (const sampler of opts.samplers ?? STUDY_SAMPLERS) {
    opts.onPhase?.(`study: stage 1 with ${sampler} sampling`);
    runs[sampler] = await runPipeline({ ...cfg, sampler, samplerQ: undefined }, join(outDir, sampler), {
      ...opts,
      command: 'study samplers',
    });
  }
  const findings = await writeStudyReport(outDir, cfg, runs);
  return { runs, findings };
}

/** Checks the findings and writes study.json, study.md and the chart for a study's runs. */
export async function writeStudyReport(
  outDir: string,
  cfg: PipelineConfig,
  runs: Record<string, RunResults>,
): Promise<Finding[]> {
  const findings = checkFindings(runs);
  writeJsonAtomic(join(outDir, 'study.json'), {
    config: cfg,
    findings,
    runs: Object.fromEntries(Object.entries(runs).map(([s, r]) => [s, compactResults(r).methods])),
  });
  await writeChart(join(outDir, 'study'), studyChart(runs));
  const md = [
    `# Sampling study: ${Object.values(runs)[0]!.dataset.name}, ${cfg.backbone}, ${cfg.epochs} epochs, seed ${cfg.seed}`,
    '',
    ...Object.entries(runs).flatMap(([s, r]) => [`## Stage 1 with ${s} sampling`, '', markdownTable(r), '']),
    "## The paper's findings on this data",
    '',
    ...findings.map(
      (f) => `${f.id}. **${f.reproduced ? 'Reproduced' : 'Not reproduced'}**: ${f.claim}. ${f.evidence}.`,
    ),
    '',
    '![study](study.svg)',
    '',
  ].join('\n');
  writeFileAtomic(join(outDir, 'study.md'), md);
  return findings;
}
