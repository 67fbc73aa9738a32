/**
 * `longtail report RUN...`: a comparison of runs written to a folder of its own, by the run
 * folder's rules (a non-empty --out is refused unless --force; default `runs/report-<time>`,
 * unique; locked while written; atomic writes).
 */
import { resolve } from 'node:path';
import { ConfigError } from '../errors.ts';
import { openRun, planRun } from '../io/run-folder.ts';
import { writeComparisonFiles } from '../report/comparison-files.ts';
import { type Comparison, ComparisonSchema, compareRuns, type LoadedRun } from '../report/group-runs.ts';

export interface WriteComparisonOptions {
  /** Replace what longtail wrote in a non-empty `out` folder. */
  force?: boolean;
  /** The folder is open (created and locked): from here on files are written. */
  onRunFolder?: (dir: string) => void;
}

export interface WrittenComparison {
  runDir: string;
  report: string;
  markdown: string | null;
  results: string | null;
  charts: string[];
}

/**
 * Writes a comparison (from `compareRuns`) to `out` (default `runs/report-<time>`): results.json
 * (ComparisonSchema), results.md, charts/ and report.html. Refuses to write into one of the
 * compared runs or the folders given as inputs.
 */
export async function writeComparison(
  comparison: Comparison,
  out?: string,
  opts: WriteComparisonOptions = {},
): Promise<WrittenComparison> {
  ComparisonSchema.parse(comparison);
  const plan = planRun('report', out, opts);
  const target = resolve(plan.dir);
  const inputs = [...comparison.inputs, ...comparison.groups.flatMap((g) => g.runs.map((r) => r.dir))];
  const clash = inputs.find((d) => resolve(d) === target);
  if (clash !== undefined)
    throw new ConfigError(
      `--out ${plan.dir}: is ${clash === plan.dir ? 'one of the folders compared' : `the folder compared as ${clash}`}; write the comparison to a folder of its own`,
    );
  const folder = openRun(plan);
  try {
    opts.onRunFolder?.(folder.dir);
    const files = await writeComparisonFiles(folder.dir, comparison);
    return { runDir: folder.dir, ...files };
  } finally {
    folder.release();
  }
}

/** compareRuns then writeComparison: what `longtail report` does. Nothing is written if an input is bad. */
export async function reportRuns(
  inputs: readonly string[],
  out?: string,
  opts: WriteComparisonOptions = {},
): Promise<{ comparison: Comparison; runs: LoadedRun[] } & WrittenComparison> {
  // The --out check first: a refused folder costs no reading.
  planRun('report', out, opts);
  const { comparison, runs } = compareRuns(inputs);
  return { comparison, runs, ...(await writeComparison(comparison, out, opts)) };
}
