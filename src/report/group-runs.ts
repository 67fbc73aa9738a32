/**
 * Several runs side by side (`longtail report RUN...`): runs that share a configuration are one
 * group, reported as mean +- sample standard deviation per method; groups that differ are named
 * by the settings they differ in.
 *
 * The grouping key is the run's configuration (results.json `config`) plus the data set's name,
 * without the settings that do not change what is measured: the seed (what the runs of a group
 * differ in), file and folder paths (the same data or run in another place; the data set's name,
 * which for a feature file is its file name, still tells data sets apart), the method list (each
 * method is summarised over the runs that have it) and the thread count (results do not depend
 * on it). Everything else must be equal, so a retrain with another tau or epoch count is a
 * group of its own.
 */
import { readdirSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { z } from 'zod';
import { methodNames } from '../classifiers/registry.ts';
import { ConfigError } from '../errors.ts';
import { printable, quoted } from '../io/display.ts';
import { readFileChecked } from '../io/read-file.ts';
import { assertNotLocked, RUN_FILES, runFile } from '../io/run-folder.ts';
import { ruleOf } from '../registry.ts';
import { withRenamedSettings } from '../settings.ts';
import { MethodResultSchema, type RunResults, RunResultsSchema } from './results.ts';
import { EXTRA_KEYS, summariseSeeds } from './seed-summary.ts';

/** Configuration keys left out of the grouping key, and why (shown on the page). */
export const IGNORED_CONFIG_KEYS: Readonly<Record<string, string>> = {
  seed: 'what the runs of a group differ in',
  dataDir: 'a path',
  trainList: 'a path',
  valList: 'a path',
  testList: 'a path',
  dataRoot: 'a path',
  classes: 'a path',
  features: 'a path (the data set name, the feature file name, is in the key)',
  run: 'a path (the stage-1 run a retrain read)',
  download: 'how the data was fetched',
  methods: 'each method is summarised over the runs that have it',
  threads:
    "the same recipe on another machine (stage 1 normalises each thread's share of a batch, so its numbers move as a seed's do)",
};

/** The key the data set's name is recorded under in a group's configuration. */
const DATASET_KEY = 'dataset';

/** A run's results.json may be this large (the confusion matrices of 1000 classes are ~10 MB). */
const MAX_RESULTS_BYTES = 512 * 2 ** 20;

/** How deep `compareRuns` looks for runs below a folder that is not a run (a study: OUT/cell/seed-N). */
const MAX_DEPTH = 3;

const meanStdSchema = z.object({ mean: z.number(), std: z.number().min(0), n: z.number().int().positive() });
const METRICS = ['overall', 'many', 'medium', 'few', 'macroF1', 'ece'] as const;

export const ComparisonSchema = z.object({
  schemaVersion: z.literal(1),
  tool: z.literal('longtail'),
  /** Tells a comparison's results.json from a run's. */
  kind: z.literal('comparison'),
  createdAt: z.string(),
  /** What was asked for: the run folders, results files and folders of runs given. */
  inputs: z.array(z.string()),
  /** Settings left out of the grouping key, with the reason. */
  ignoredKeys: z.record(z.string(), z.string()),
  /** Settings whose values differ between groups (each group is named by its values of these). */
  differingKeys: z.array(z.string()),
  groups: z
    .array(
      z.object({
        name: z.string(),
        /** The group's values of `differingKeys` (absent: the setting is not set in the group). */
        differing: z.record(z.string(), z.unknown()),
        /** The configuration the group's runs share (the grouping key). */
        config: z.record(z.string(), z.unknown()),
        runs: z
          .array(
            z.object({
              dir: z.string(),
              seed: z.number().int().nullable(),
              command: z.string(),
              createdAt: z.string(),
            }),
          )
          .min(1),
        methods: z.array(
          z.object({
            method: z.string(),
            label: z.string(),
            /** Runs of the group that have this method. */
            runs: z.number().int().positive(),
            overall: meanStdSchema.nullable(),
            many: meanStdSchema.nullable(),
            medium: meanStdSchema.nullable(),
            few: meanStdSchema.nullable(),
            macroF1: meanStdSchema.nullable(),
            ece: meanStdSchema.nullable(),
            // Recall summaries, NLL, ECE before / after calibration, backward-50 none / EM / BBSE /
            // known and TV errors (report/seed-summary.ts EXTRA_METRICS); absent in older comparisons.
            ...Object.fromEntries(EXTRA_KEYS.map((k) => [k, meanStdSchema.nullable().optional()])),
          }),
        ),
      }),
    )
    .min(1),
  warnings: z.array(z.string()),
});

/** A comparison of runs: what `longtail report` writes to results.json. */
export type Comparison = z.infer<typeof ComparisonSchema>;
export type ComparisonGroup = Comparison['groups'][number];

/** A run folder and its validated results. */
export interface LoadedRun {
  dir: string;
  results: RunResults;
}

function isDir(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

function hasResults(dir: string): boolean {
  try {
    return statSync(runFile(dir, 'results')).isFile();
  } catch {
    return false;
  }
}

/** Run folders below `dir` (not itself), depth first in name order, not descending into a run. */
function runsBelow(dir: string, depth: number): string[] {
  if (depth > MAX_DEPTH) return [];
  const out: string[] = [];
  let names: string[];
  try {
    names = readdirSync(dir).sort();
  } catch {
    return [];
  }
  for (const name of names) {
    if (name.startsWith('.') || name === RUN_FILES.charts || name === 'node_modules') continue;
    const sub = join(dir, name);
    if (!isDir(sub)) continue;
    if (hasResults(sub)) out.push(sub);
    else out.push(...runsBelow(sub, depth + 1));
  }
  return out;
}

/**
 * The run folders the arguments name: a run folder (it has results.json; `RUN/stage2` of a
 * retrain is one), a results.json file, or a folder of runs (`demo --seeds`, a study: its
 * sub-folders with results.json, up to three levels down; `found` marks these). Each folder
 * once, in argument order.
 */
export function expandRunDirs(inputs: readonly string[]): { dir: string; found: boolean }[] {
  if (inputs.length === 0) throw new ConfigError('report: give at least one run folder');
  const out: { dir: string; found: boolean }[] = [];
  const seen = new Set<string>();
  for (const input of inputs) {
    let dirs: string[];
    let found = false;
    let st: ReturnType<typeof statSync>;
    try {
      st = statSync(input);
    } catch {
      throw new ConfigError(`${input}: no such folder`);
    }
    if (st.isFile()) {
      if (basename(input) !== RUN_FILES.results)
        throw new ConfigError(`${input}: is a file; expected a run folder (or its ${RUN_FILES.results})`);
      dirs = [join(input, '..')];
    } else if (hasResults(input)) dirs = [input];
    else {
      found = true;
      dirs = runsBelow(input, 1);
      if (dirs.length === 0)
        throw new ConfigError(
          `${input}: no ${RUN_FILES.results} in it or in its sub-folders (expected a run folder, or a folder of runs such as demo --seeds or study writes)`,
        );
    }
    for (const d of dirs) {
      const key = resolve(d);
      if (seen.has(key)) continue;
      seen.add(key);
      out.push({ dir: d, found });
    }
  }
  return out;
}

/** A comparison's results.json (`longtail report` output), which is not a run. */
function isComparison(value: unknown): boolean {
  return (value as { kind?: unknown } | null)?.kind === 'comparison';
}

function parseJsonFile(path: string): unknown {
  const text = readFileChecked(path, 'results file', { maxBytes: MAX_RESULTS_BYTES }).toString('utf8');
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`${path}: not valid JSON (${(e as Error).message.split('\n')[0]})`);
  }
}

/**
 * A run's results as `report` reads them: any method name, registered in this process or not (a
 * method added with registerClassifier in the program that made the run is known here by name).
 */
const ReadableResultsSchema = RunResultsSchema.extend({
  methods: z.array(MethodResultSchema.extend({ method: z.string().min(1) })).min(1),
});

/** Reads and validates one run's results.json; errors are one line naming the file. */
export function readRunResults(dir: string): RunResults {
  const path = runFile(dir, 'results');
  assertNotLocked(dir);
  const value = parseJsonFile(path);
  if (isComparison(value))
    throw new ConfigError(
      `${path}: is a comparison written by longtail report, not a run's results; give the runs it compared`,
    );
  const r = ReadableResultsSchema.safeParse(value);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    const field = issue.path.join('.') || '(top level)';
    let got: unknown = value;
    for (const k of issue.path) got = (got as Record<PropertyKey, unknown> | undefined)?.[k as string];
    throw new ConfigError(
      `${path}: not a longtail results file: ${field} ${ruleOf(issue, got)}${got === undefined ? '' : ` (got ${JSON.stringify(got)})`}`,
    );
  }
  return r.data;
}

/** A value as JSON with its keys sorted, so equal configurations have equal keys. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v !== null && typeof v === 'object')
    return `{${Object.keys(v)
      .sort()
      .filter((k) => (v as Record<string, unknown>)[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  return JSON.stringify(v) ?? 'null';
}

/** The configuration that decides a run's group (IGNORED_CONFIG_KEYS removed, the data set's name in). */
export function groupingConfig(r: RunResults): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  // Runs written before a setting was renamed group with the runs written after.
  const config = withRenamedSettings(r.config);
  for (const k of Object.keys(config).sort())
    if (!Object.hasOwn(IGNORED_CONFIG_KEYS, k) && config[k] !== undefined) out[k] = config[k];
  out[DATASET_KEY] = r.dataset.name;
  return out;
}

/** A setting's value as a person reads it (`resnet8`, `0.5`, `{"a":1}`). */
export function showValue(v: unknown): string {
  if (v === undefined) return '(unset)';
  return typeof v === 'string' ? v : canonical(v);
}

const seedOf = (r: RunResults): number | null => (typeof r.config.seed === 'number' ? r.config.seed : null);

/** Summarises loaded runs: groups by configuration, mean +- std per method per group. */
export function summariseRuns(
  runs: readonly LoadedRun[],
  opts: { inputs?: readonly string[]; warnings?: readonly string[] } = {},
): Comparison {
  if (runs.length === 0) throw new ConfigError('report: no runs to compare');
  const groups = new Map<string, { config: Record<string, unknown>; runs: LoadedRun[] }>();
  for (const run of runs) {
    const config = groupingConfig(run.results);
    const key = canonical(config);
    const g = groups.get(key);
    if (g) g.runs.push(run);
    else groups.set(key, { config, runs: [run] });
  }
  const list = [...groups.values()];
  const keys = [...new Set(list.flatMap((g) => Object.keys(g.config)))].sort();
  const differingKeys =
    list.length < 2 ? [] : keys.filter((k) => new Set(list.map((g) => canonical(g.config[k]))).size > 1);
  const order = methodNames();
  const rank = (m: string) => (order.includes(m) ? order.indexOf(m) : order.length);
  const warnings: string[] = [...(opts.warnings ?? [])];
  const out = list.map((g) => {
    const differing = Object.fromEntries(
      differingKeys.filter((k) => g.config[k] !== undefined).map((k) => [k, g.config[k]]),
    );
    const name =
      differingKeys.length === 0
        ? `${showValue(g.config[DATASET_KEY])}: all runs`
        : differingKeys.map((k) => `${k}=${showValue(g.config[k])}`).join(', ');
    const seeds = g.runs.map((r) => seedOf(r.results));
    const twice = seeds.filter((s, i) => s !== null && seeds.indexOf(s) !== i);
    if (twice.length > 0)
      warnings.push(
        `group ${quoted(name)}: seed ${[...new Set(twice)].join(', ')} appears more than once (the same run twice, or runs that differ in a setting the key leaves out)`,
      );
    const summary = summariseSeeds(
      seeds.filter((s): s is number => s !== null),
      g.runs.map((r) => r.results),
      g.runs.map((r) => r.dir),
    );
    const methods = summary.methods
      .map((m) => ({
        method: m.method,
        label: m.label,
        runs: g.runs.filter((r) => r.results.methods.some((x) => x.method === m.method)).length,
        ...Object.fromEntries(METRICS.map((k) => [k, m[k]])),
        ...Object.fromEntries(EXTRA_KEYS.map((k) => [k, m[k]])),
      }))
      .sort((a, b) => rank(a.method) - rank(b.method)) as ComparisonGroup['methods'];
    return {
      name,
      differing,
      config: g.config,
      runs: g.runs.map((r) => ({
        dir: r.dir,
        seed: seedOf(r.results),
        command: r.results.command,
        createdAt: r.results.createdAt,
      })),
      methods,
    };
  });
  return ComparisonSchema.parse({
    schemaVersion: 1,
    tool: 'longtail',
    kind: 'comparison',
    createdAt: new Date().toISOString(),
    inputs: [...(opts.inputs ?? runs.map((r) => r.dir))],
    ignoredKeys: { ...IGNORED_CONFIG_KEYS },
    differingKeys,
    groups: out,
    warnings,
  });
}

/**
 * Reads the runs the arguments name (run folders, results.json files, folders of runs) and
 * compares them: runs of the same configuration (all settings but the seed, paths, method list
 * and threads) are grouped, each group reported as mean +- sample standard deviation per method.
 * Every file is read and validated before anything is returned; a bad one throws a ConfigError
 * naming it.
 *
 * @example
 * import { compareRuns, writeComparison } from 'longtail';
 * // The seeds of `demo --seeds 0,1,2 --out runs/seeds`, and a retrain of seed 0 with other settings:
 * const { comparison } = compareRuns(['runs/seeds', 'runs/seeds/seed-0/stage2']);
 * for (const g of comparison.groups) console.log(g.name, g.methods.map((m) => [m.label, m.overall?.mean]));
 * await writeComparison(comparison, 'runs/seeds-report'); // report.html, results.md, results.json, charts/
 */
export function compareRuns(inputs: readonly string[]): { comparison: Comparison; runs: LoadedRun[] } {
  const runs: LoadedRun[] = [];
  const warnings: string[] = [];
  for (const { dir, found } of expandRunDirs(inputs)) {
    // A comparison written inside a folder of runs is not one of its runs: passed over, said so.
    if (found && isComparison(parseJsonFile(runFile(dir, 'results')))) {
      warnings.push(`${dir}: a comparison written by longtail report, not a run; left out`);
      continue;
    }
    runs.push({ dir, results: readRunResults(dir) });
  }
  if (runs.length === 0)
    throw new ConfigError(
      `${inputs.join(', ')}: no runs to compare (only comparisons written by longtail report)`,
    );
  return { comparison: summariseRuns(runs, { inputs, warnings }), runs };
}

/** A group's name for a terminal (user text shown, never interpreted). */
export function groupTitle(g: ComparisonGroup): string {
  const seeds = g.runs.map((r) => (r.seed === null ? '?' : String(r.seed)));
  const n = g.runs.length;
  return printable(
    `${g.name} (${n} run${n === 1 ? '' : 's'}, seed${n === 1 ? '' : 's'} ${seeds.join(', ')})`,
  );
}
