/**
 * The pipeline over seeds (`demo --seeds 0,1,2`): one complete run per seed (stage 1 included)
 * in `<out>/seed-<n>/`, then their mean +- standard deviation per method in `<out>/summary.json`
 * and `summary.md`, and the page of `longtail report` on them in `<out>/report.html` (with its
 * charts in `<out>/charts/`). Each seed's folder is an ordinary run (predict, export and retrain
 * work on it).
 */
import { join } from 'node:path';
import { parseMethods } from '../classifiers/registry.ts';
import { type PipelineConfig, pipelineConfigSchema } from '../config/schema.ts';
import { ConfigError } from '../errors.ts';
import { writeFileAtomic, writeJsonAtomic } from '../io/atomic.ts';
import { planRun, runFile } from '../io/run-folder.ts';
import { writeComparisonFiles } from '../report/comparison-files.ts';
import { summariseRuns } from '../report/group-runs.ts';
import type { RunResults } from '../report/results.ts';
import { type SeedSummary, seedsMarkdown, summariseSeeds } from '../report/seed-summary.ts';
import { markParsed, parseOnce } from '../settings.ts';
import type { PipelineCallbacks } from './callbacks.ts';
import { runPipeline } from './run.ts';
import { checkModelFits, inRunFolder, loadRunData } from './run-setup.ts';

export async function runSeeds(
  cfg: PipelineConfig,
  seeds: readonly number[],
  out?: string,
  opts: PipelineCallbacks & { force?: boolean } = {},
): Promise<{ summary: SeedSummary; runs: RunResults[]; runDir: string }> {
  cfg = parseOnce(pipelineConfigSchema(), cfg, 'the pipeline configuration');
  if (seeds.length === 0) throw new ConfigError('--seeds: give at least one seed');
  for (const s of seeds)
    if (!Number.isInteger(s) || s < 0) throw new ConfigError(`--seeds: seeds are integers >= 0, got ${s}`);
  const dup = seeds.find((s, i) => seeds.indexOf(s) !== i);
  if (dup !== undefined) throw new ConfigError(`--seeds: ${dup} is listed twice`);
  parseMethods(cfg.methods);
  const plan = planRun('demo', out, opts);
  const data = await loadRunData(cfg, opts);
  checkModelFits(cfg, data);
  return inRunFolder(plan, { command: 'seeds', ...cfg, seeds }, opts, async (folder) => {
    const runs: RunResults[] = [];
    const dirs: string[] = [];
    for (const seed of seeds) {
      opts.onPhase?.(`seed ${seed} (${dirs.length + 1} of ${seeds.length})`);
      const dir = join(folder.dir, `seed-${seed}`);
      runs.push(
        await runPipeline(markParsed({ ...cfg, seed }), dir, {
          ...opts,
          onRunFolder: undefined,
          command: 'demo',
        }),
      );
      dirs.push(`seed-${seed}`);
    }
    const summary = summariseSeeds([...seeds], runs, dirs);
    writeJsonAtomic(runFile(folder.dir, 'seedSummary'), summary);
    writeFileAtomic(
      runFile(folder.dir, 'seedSummaryMarkdown'),
      seedsMarkdown(
        summary,
        `${runs[0]!.dataset.name}, ${cfg.backbone}, ${cfg.sampler} stage 1 over ${seeds.length} seeds`,
      ),
    );
    // The comparison page; no results.json here: the folder holds runs, it is not one.
    const comparison = summariseRuns(
      runs.map((results, i) => ({ dir: dirs[i]!, results })),
      { inputs: dirs },
    );
    opts.onPhase?.(`writing the comparison page to ${runFile(folder.dir, 'report')}`);
    await writeComparisonFiles(folder.dir, comparison, { pageOnly: true });
    return { summary, runs, runDir: folder.dir };
  });
}
