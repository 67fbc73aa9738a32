/**
 * The paper's sampling study: joint training with instance-balanced, square-root,
 * class-balanced and progressively-balanced sampling, every stage-2 method on each
 * representation, and a check of the paper's five findings on the measured numbers.
 */
import { join } from 'node:path';
import { methodEntries, parseMethods } from '../classifiers/registry.ts';
import { type PipelineConfig, type StudyConfig, studyConfigSchema } from '../config/schema.ts';
import { ConfigError } from '../errors.ts';
import { writeFileAtomic, writeJsonAtomic } from '../io/atomic.ts';
import { planRun, runFile } from '../io/run-folder.ts';
import type { VegaLiteSpec } from '../report/charts/common.ts';
import { writeChart } from '../report/render.ts';
import type { RunResults } from '../report/results.ts';
import { meanOfRuns, seedsMarkdown, summariseSeeds } from '../report/seed-summary.ts';
import { markdownTable } from '../report/table.ts';
import { checkSamplerName } from '../sampling/samplers.ts';
import { markParsed, parseOnce } from '../settings.ts';
import { type PipelineCallbacks, runPipeline } from './run.ts';
import { checkModelFits, inRunFolder, loadRunData } from './run-setup.ts';

export const STUDY_SAMPLERS = [
  'instance-balanced',
  'square-root',
  'class-balanced',
  'progressively-balanced',
] as const;

export interface Finding {
  id: number;
  claim: string;
  /** null: not judged, because the study's grid lacks what the finding compares (evidence says what). */
  reproduced: boolean | null;
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

const f1 = (v: number | null) => (v === null ? '-' : v.toFixed(1));

const CLAIMS = {
  1: 'Sampling matters for joint training: square-root and progressively-balanced beat instance-balanced overall',
  2: 'Instance-balanced features generalise best: stage-2 methods on IB features beat the same methods on CB features',
  3: 'Decoupling helps: cRT, tau-norm and LWS beat joint overall and on few-shot, with a small many-shot loss',
  4: 'Weight norms: after joint training ||w_i|| grows with n_i; cRT, tau-norm and LWS flatten it',
  5: 'tau trades many-shot for few-shot accuracy smoothly',
} as const;

/**
 * Checks the paper's five findings (docs/methods.md) against a study's runs. A finding is judged only
 * where the grid has what it compares (samplers and methods); otherwise it is reported as not
 * judged, with what is missing.
 */
export function checkFindings(runs: Record<string, RunResults>): Finding[] {
  const get = (s: string, m: string) => runs[s]?.methods.find((x) => x.method === m);
  const out: Finding[] = [];
  const skip = (id: keyof typeof CLAIMS, missing: string[]) =>
    out.push({
      id,
      claim: CLAIMS[id],
      reproduced: null,
      evidence: `not judged: the study has no ${missing.join(', ')}`,
    });
  const need = (pairs: [string, string][]) =>
    pairs.filter(([s, m]) => !get(s, m)).map(([s, m]) => `${m} on ${s} features`);
  const IB = 'instance-balanced';

  const m1 = need([
    [IB, 'joint'],
    ['square-root', 'joint'],
    ['progressively-balanced', 'joint'],
  ]);
  if (m1.length > 0) skip(1, m1);
  else {
    const j = (s: string) => get(s, 'joint')?.overall ?? null;
    const jIb = j(IB)!;
    out.push({
      id: 1,
      claim: CLAIMS[1],
      reproduced: j('square-root')! > jIb && j('progressively-balanced')! > jIb,
      evidence: `joint All: IB ${f1(jIb)}, CB ${f1(j('class-balanced'))}, SqrtB ${f1(j('square-root'))}, PB ${f1(j('progressively-balanced'))}`,
    });
  }

  const s2 = ['ncm', 'crt', 'tau-norm', 'lws'].filter((m) => get(IB, m) && get('class-balanced', m));
  if (s2.length === 0) skip(2, ['stage-2 method (NCM, cRT, tau-norm or LWS) on both IB and CB features']);
  else {
    out.push({
      id: 2,
      claim: CLAIMS[2],
      reproduced: s2.every((m) => get(IB, m)!.overall > get('class-balanced', m)!.overall),
      evidence: s2
        .map(
          (m) =>
            `${get(IB, m)!.label} ${f1(get(IB, m)!.overall)} vs ${f1(get('class-balanced', m)!.overall)}`,
        )
        .join('; '),
    });
  }

  const dec = ['crt', 'tau-norm', 'lws'].filter((m) => get(IB, m));
  const j = get(IB, 'joint');
  if (!j || dec.length === 0) {
    const missing = [
      ...(j ? [] : ['joint on IB features']),
      ...(dec.length ? [] : ['cRT, tau-norm or LWS on IB features']),
    ];
    skip(3, missing);
    skip(4, missing);
  } else {
    const m = (name: string) => get(IB, name)!;
    out.push({
      id: 3,
      claim: CLAIMS[3],
      reproduced: dec.every((d) => m(d).overall > j.overall && (j.few === null || (m(d).few ?? 0) > j.few)),
      evidence: ['joint', ...dec]
        .map((d) => `${m(d).label} ${f1(m(d).overall)} (many ${f1(m(d).many)}, few ${f1(m(d).few)})`)
        .join('; '),
    });
    const counts = runs[IB]!.dataset.trainCounts;
    const rho = (d: string) => spearman(m(d).weightNorms, counts);
    // "Flatter": the norms vary less relative to their mean (coefficient of variation). Rank
    // correlation alone cannot say it: tau-norm with tau < 1 keeps the ranking of the norms.
    const cv = (d: string) => {
      const v = m(d).weightNorms;
      const mean = v.reduce((a, b) => a + b, 0) / v.length;
      return Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / v.length) / mean;
    };
    out.push({
      id: 4,
      claim: CLAIMS[4],
      reproduced: rho('joint') > 0.5 && dec.every((d) => cv(d) < cv('joint')),
      evidence:
        `Spearman(||w_i||, n_i): ${['joint', ...dec].map((d) => `${m(d).label} ${rho(d).toFixed(2)}`).join(', ')}; ` +
        `spread (std / mean of ||w_i||): ${['joint', ...dec].map((d) => `${m(d).label} ${cv(d).toFixed(2)}`).join(', ')}`,
    });
  }

  const tau = get(IB, 'tau-norm');
  const sweep = tau?.tuned?.sweep;
  if (!tau || !sweep || sweep.length < 3)
    skip(5, ['tau-norm sweep on IB features (a fixed --tau has no sweep)']);
  else {
    const taus = sweep.map((p) => p.value);
    const many = sweep.map((p) => p.test.many ?? 0);
    const few = sweep.map((p) => p.test.few ?? 0);
    // Over tau in [0, 1] (where the paper's figure shows the trade-off): few-shot rises steadily
    // while many-shot falls.
    const upto = taus.filter((t) => t <= 1).length;
    const rMany = spearman(taus.slice(0, upto), many.slice(0, upto));
    const rFew = spearman(taus.slice(0, upto), few.slice(0, upto));
    out.push({
      id: 5,
      claim: CLAIMS[5],
      reproduced: rFew > 0.8 && rMany < 0 && many[upto - 1]! < many[0]!,
      evidence: `tau 0 -> 1: many ${f1(100 * many[0]!)} -> ${f1(100 * many[upto - 1]!)}, few ${f1(100 * few[0]!)} -> ${f1(100 * few[upto - 1]!)}; Spearman with tau: many ${rMany.toFixed(2)}, few ${rFew.toFixed(2)}`,
    });
  }
  return out;
}

export interface StudyResult {
  /** Per cell (sampler, or sampler+loss), the mean over its seeds' runs. */
  runs: Record<string, RunResults>;
  cells: StudyCell[];
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
      x: {
        field: 'method',
        type: 'nominal',
        sort: methodEntries().map((e) => e.label),
        title: null,
      },
      xOffset: { field: 'sampler', sort: Object.keys(runs) },
      y: { field: 'accuracy', type: 'quantitative', title: 'top-1 accuracy (%)' },
      color: {
        field: 'sampler',
        type: 'nominal',
        sort: Object.keys(runs),
        title: 'stage 1',
        legend: { labelLimit: 400 },
      },
    },
  };
}

/**
 * Runs the study into `out/<sampler>/` (default `runs/study-samplers-<time>`) and writes
 * study.json, study.md and the chart. The grid (samplers, methods) and the data are checked
 * before anything is trained or written.
 */
export async function runSamplerStudy(
  cfg: StudyConfig,
  out?: string,
  opts: PipelineCallbacks & { force?: boolean } = {},
): Promise<StudyResult & { runDir: string }> {
  cfg = parseOnce(studyConfigSchema(), cfg, 'the study configuration');
  const samplers = cfg.samplers ?? [...STUDY_SAMPLERS];
  for (const s of samplers) checkSamplerName(s);
  const { samplers: _s, losses: _l, seeds: _n, ...pipeline } = cfg;
  const losses = cfg.losses ?? [pipeline.loss];
  const seeds = cfg.seeds ?? [pipeline.seed];
  for (const [flag, list] of [
    ['--samplers', samplers],
    ['--losses', losses],
    ['--seeds', seeds],
  ] as const) {
    const dup = (list as readonly (string | number)[]).find((s, i) => list.indexOf(s as never) !== i);
    if (dup !== undefined) throw new ConfigError(`${flag}: '${dup}' is listed twice`);
  }
  parseMethods(cfg.methods);
  const plan = planRun('study samplers', out, opts);
  const data = await loadRunData(pipeline, opts);
  checkModelFits({ ...pipeline, sampler: samplers[0]! }, data);
  return inRunFolder(plan, { command: 'study', ...cfg, samplers, losses, seeds }, opts, async (folder) => {
    // A cell of the grid is a stage-1 sampler (and loss, when the grid has several); each cell runs once per seed.
    const cells: StudyCell[] = [];
    const total = samplers.length * losses.length * seeds.length;
    for (const sampler of samplers)
      for (const loss of losses) {
        const key = losses.length > 1 ? `${sampler}+${loss}` : sampler;
        const runs: RunResults[] = [];
        for (const seed of seeds) {
          opts.onPhase?.(
            `study (${cells.length * seeds.length + runs.length + 1} of ${total}): stage 1 with ${sampler} sampling, ${loss} loss, seed ${seed}`,
          );
          const dir = seeds.length > 1 ? join(folder.dir, key, `seed-${seed}`) : join(folder.dir, key);
          runs.push(
            // A cell: the parsed settings with the grid's sampler, loss and seed, each checked above.
            await runPipeline(markParsed({ ...pipeline, sampler, loss, seed }), dir, {
              ...opts,
              onRunFolder: undefined,
              command: 'study samplers',
            }),
          );
        }
        cells.push({ key, sampler, loss, seeds, runs, mean: meanOfRuns(runs) });
      }
    const findings = await writeStudyReport(folder.dir, { ...pipeline, sampler: samplers[0]! }, cells);
    return {
      runs: Object.fromEntries(cells.map((c) => [c.key, c.mean])),
      cells,
      findings,
      runDir: folder.dir,
    };
  });
}

/** One cell of a study's grid: its runs over seeds and their mean. */
export interface StudyCell {
  key: string;
  sampler: string;
  loss: string;
  seeds: readonly number[];
  runs: RunResults[];
  mean: RunResults;
}

/**
 * Checks the findings and writes study.json, study.md and the chart. The paper's findings are
 * about samplers under one loss: they are judged on the cells of the grid's first loss, on the
 * mean over seeds.
 */
export async function writeStudyReport(
  outDir: string,
  cfg: PipelineConfig,
  cells: StudyCell[],
): Promise<Finding[]> {
  const firstLoss = cells[0]!.loss;
  const bySampler = Object.fromEntries(
    cells.filter((c) => c.loss === firstLoss).map((c) => [c.sampler, c.mean]),
  );
  const findings = checkFindings(bySampler);
  const multiSeed = cells[0]!.seeds.length > 1;
  const summaries = cells.map((c) => ({
    c,
    s: summariseSeeds(
      [...c.seeds],
      c.runs,
      c.runs.map(() => ''),
    ),
  }));
  writeJsonAtomic(runFile(outDir, 'study'), {
    config: cfg,
    findings,
    judgedOn: `loss ${firstLoss}${multiSeed ? `, mean over seeds ${cells[0]!.seeds.join(', ')}` : ''}`,
    cells: summaries.map(({ c, s }) => ({
      key: c.key,
      sampler: c.sampler,
      loss: c.loss,
      seeds: c.seeds,
      methods: s.methods,
    })),
  });
  const means = Object.fromEntries(cells.map((c) => [c.key, c.mean]));
  await writeChart(runFile(outDir, 'studyChart'), studyChart(means));
  const title = `${cells[0]!.runs[0]!.dataset.name}, ${cfg.backbone}, ${cfg.epochs} epochs, seeds ${cells[0]!.seeds.join(', ')}`;
  const md = [
    `# Study: ${title}`,
    '',
    ...summaries.flatMap(({ c, s }) => [
      `## Stage 1 with ${c.sampler} sampling, ${c.loss} loss`,
      '',
      multiSeed ? seedsMarkdown(s, '').split('\n').slice(2).join('\n') : markdownTable(c.mean),
      '',
    ]),
    `## The paper's findings on this data (loss ${firstLoss}${multiSeed ? ', means over seeds' : ''})`,
    '',
    ...findings.map(
      (f) =>
        `${f.id}. **${f.reproduced === null ? 'Not judged' : f.reproduced ? 'Reproduced' : 'Not reproduced'}**: ${f.claim}. ${f.evidence}.`,
    ),
    '',
    '![study](study.svg)',
    '',
  ].join('\n');
  writeFileAtomic(runFile(outDir, 'studyMarkdown'), md);
  return findings;
}
