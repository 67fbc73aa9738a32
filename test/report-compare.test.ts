import assert from 'node:assert/strict';
import {
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { initBackend } from '../src/backend/backend.ts';
import { PipelineConfigSchema, RetrainConfigSchema } from '../src/config/schema.ts';
import { reportRuns, writeComparison } from '../src/pipeline/report-runs.ts';
import { retrain } from '../src/pipeline/run.ts';
import { runSeeds } from '../src/pipeline/run-seeds.ts';
import { chartSizes, findChromium, launchReportBrowser } from '../src/report/browser-check.ts';
import { comparisonText } from '../src/report/comparison-files.ts';
import { type Comparison, ComparisonSchema, compareRuns } from '../src/report/group-runs.ts';
import type { RunResults } from '../src/report/results.ts';
import { type CliResult, runCli, runInProcess } from './helpers/cli.ts';
import { type TinyFolder, writeImageFolder } from './helpers/image-folder.ts';
import { tempDir } from './helpers/tmp.ts';

const FEATURES = join(import.meta.dirname, 'fixtures', 'features_golden.npz');
const ESC = '\u001b';
const HOSTILE = '<img src=x onerror=alert(1)>';
/**
 * The runs' data: 5 classes, n_max 30 (below the many-shot threshold of 100, so no run has a
 * many-shot class), medium 30 and 20, few 14, 10, 6; 20 test images a class, so three cRT seeds
 * score differently.
 */
const FOLDER: TinyFolder = {
  train: [30, 20, 14, 10, 6],
  val: [4, 4, 4, 4, 4],
  test: [20, 20, 20, 20, 20],
  size: 16,
};

/** Mean and sample standard deviation (n - 1), written out here rather than imported. */
function byHand(xs: number[]): { mean: number; std: number } {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const ss = xs.reduce((a, b) => a + (b - mean) * (b - mean), 0);
  return { mean, std: xs.length > 1 ? Math.sqrt(ss / (xs.length - 1)) : 0 };
}

const results = (dir: string): RunResults => JSON.parse(readFileSync(join(dir, 'results.json'), 'utf8'));

/** A refused command: exit 2, one `longtail:` line matching `pattern`, no stack trace. */
function refused(r: CliResult, pattern: RegExp) {
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, pattern);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.filter((l) => l.startsWith('longtail:')).length, 1, r.stderr);
  assert.doesNotMatch(r.stderr, /\n\s+at /);
}

/** The text of a comparison table's body cells in report.html, row by row (first cell: the method). */
function htmlRows(html: string, group: string): string[][] {
  const start = html.indexOf(`<h3>${group}</h3>`);
  assert.ok(start >= 0, `group ${group} on the page`);
  const table = html.slice(start, html.indexOf('</table>', start));
  return [...table.matchAll(/<tr>((?:<td>[^<]*<\/td>)+)<\/tr>/g)].map((m) =>
    [...m[1]!.matchAll(/<td>([^<]*)<\/td>/g)].map((c) => c[1]!),
  );
}

describe('longtail report: several runs on one page', () => {
  const root = tempDir();
  const seedsDir = join(root, 'seeds');
  // cRT retrained on seed-0; the first into seed-0/stage2 (retrain's default), the others with --out.
  const stage2 = (name: string) =>
    name === 'crt-e1-s1' ? join(seedsDir, 'seed-0', 'stage2') : join(root, name);
  before(async () => {
    await initBackend('wasm');
    // Two complete tiny runs (stage 1 included) over seeds 0 and 1: `demo --seeds` as the library
    // runs it, on a small image folder rather than Fashion-MNIST-LT: what is tested is the reading,
    // grouping and showing of runs, and each stage 2 there evaluates 10,000 test images.
    const dataDir = await writeImageFolder(join(root, 'images'), FOLDER);
    const cfg = PipelineConfigSchema.parse({
      dataset: 'imagefolder',
      dataDir,
      imageSize: FOLDER.size,
      batchSize: 16,
      threads: 1,
      epochs: 1,
      methods: 'joint,ncm,tau-norm',
    });
    await runSeeds(cfg, [0, 1], seedsDir);
    // Stage 2 again on the seed-0 run: cRT with seeds 1, 2, 3 (1 epoch), and seed 1 with 2 epochs.
    const re = (seed: number, crtEpochs: number, out: string | undefined) =>
      retrain(
        RetrainConfigSchema.parse({
          run: join(seedsDir, 'seed-0'),
          methods: 'crt,ncm',
          seed,
          crtEpochs,
          mode: 'features',
          threads: 1,
        }),
        out === undefined ? {} : { out },
      );
    await re(1, 1, undefined);
    await re(2, 1, stage2('crt-e1-s2'));
    await re(3, 1, stage2('crt-e1-s3'));
    await re(1, 2, stage2('crt-e2-s1'));
  });

  it('demo --seeds writes the comparison page beside summary.json, and no results.json (the folder is not a run)', () => {
    for (const f of ['summary.json', 'summary.md', 'report.html', 'charts/compare-accuracy.svg'])
      assert.ok(existsSync(join(seedsDir, f)), f);
    assert.ok(!existsSync(join(seedsDir, 'results.json')));
    const html = readFileSync(join(seedsDir, 'report.html'), 'utf8');
    assert.match(html, /seed-0/);
    assert.match(html, /seed-1/);
  });

  it('a folder of seeds is one group: the page shows mean ± sample std computed from the runs', () => {
    const out = join(root, 'cmp-seeds');
    const r = runCli(['report', seedsDir, '--out', out, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const c: Comparison = ComparisonSchema.parse(JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')));
    assert.deepEqual(JSON.parse(r.stdout).groups, c.groups);
    assert.equal(c.groups.length, 1);
    const g = c.groups[0]!;
    // seed-0/stage2 (a retrain) is not one of the seeds: a run's sub-folders are not searched.
    assert.ok(existsSync(join(seedsDir, 'seed-0', 'stage2', 'results.json')));
    assert.deepEqual(
      g.runs.map((x) => [x.dir, x.seed]),
      [
        [join(seedsDir, 'seed-0'), 0],
        [join(seedsDir, 'seed-1'), 1],
      ],
    );
    const per = [0, 1].map((s) => results(join(seedsDir, `seed-${s}`)));
    assert.notDeepEqual(per[0]!.methods, per[1]!.methods, 'the seeds trained different models');
    const html = readFileSync(join(out, 'report.html'), 'utf8');
    const rows = htmlRows(html, g.name.replace(/</g, '&lt;').replace(/>/g, '&gt;'));
    assert.deepEqual(
      rows.map((x) => x[0]),
      ['Joint', 'NCM', 'tau-norm'],
    );
    for (const [i, m] of per[0]!.methods.entries()) {
      const row = rows[i]!;
      const cols = [
        ['overall', 1, 1],
        ['medium', 3, 1],
        ['few', 4, 1],
        ['macroF1', 5, 3],
        ['ece', 6, 3],
      ] as const;
      for (const [k, col, digits] of cols) {
        const xs = per.map((p) => p.methods.find((x) => x.method === m.method)![k] as number);
        const want = byHand(xs);
        const got = g.methods[i]![k]!;
        assert.ok(Math.abs(got.mean - want.mean) < 1e-9, `${m.method} ${k} mean`);
        assert.ok(Math.abs(got.std - want.std) < 1e-9, `${m.method} ${k} std`);
        assert.equal(
          row[col],
          `${want.mean.toFixed(digits)} ± ${want.std.toFixed(digits)}`,
          `${m.method} ${k}`,
        );
      }
      // n_max 30 < 100 (FOLDER): no many-shot class in either run, so the mean is absent, not 0.
      assert.equal(row[2], '-');
      assert.equal(row[7], '2');
    }
    const md = readFileSync(join(out, 'results.md'), 'utf8');
    assert.ok(md.includes(`| ${rows[1]!.join(' | ')} |`), md);
  });

  it('the calibration and unknown-prior table: recall summaries, NLL, ECE before / after, backward-50 none / calibrated / EM / BBSE / known, mean ± std by hand', () => {
    const { comparison: c } = compareRuns([seedsDir]);
    const g = c.groups[0]!;
    const per = [0, 1].map((s) => results(join(seedsDir, `seed-${s}`)));
    type M = RunResults['methods'][number];
    const b50 = (m: M) => m.shifted.find((x) => x.prior === 'backward 50')!;
    const picks: [string, (m: M) => number, number][] = [
      ['worstClass', (m) => m.recall!.worstClass!, 3],
      ['nll', (m) => m.recall!.nll, 3],
      ['eceBefore', (m) => m.calibration!.eceBefore, 3],
      ['eceAfter', (m) => m.calibration!.eceAfter, 3],
      ['b50None', (m) => b50(m).overall, 1],
      ['b50Calibrated', (m) => b50(m).calibrated!, 1],
      ['b50Em', (m) => b50(m).em!, 1],
      ['b50Bbse', (m) => b50(m).bbse!, 1],
      ['b50Known', (m) => b50(m).knownPrior, 1],
      ['b50EmTv', (m) => b50(m).emTv!, 3],
    ];
    const text = comparisonText(c);
    for (const m of g.methods) {
      const runs = per.map((p) => p.methods.find((x) => x.method === m.method)!);
      const cells: string[] = [];
      for (const [k, get, digits] of picks) {
        const want = byHand(runs.map(get));
        const got = (m as unknown as Record<string, { mean: number; std: number; n: number }>)[k]!;
        assert.ok(
          Math.abs(got.mean - want.mean) < 1e-9 && Math.abs(got.std - want.std) < 1e-9,
          `${m.method} ${k}`,
        );
        assert.equal(got.n, 2);
        cells.push(`${want.mean.toFixed(digits)} ± ${want.std.toFixed(digits)}`);
      }
      // The terminal's second table: worst class and NLL are its 1st and 4th numbers.
      const line = text.split('\n').find((l) => l.startsWith(`${m.label} `) && l.includes(cells[1]!));
      assert.ok(line?.includes(cells[0]!), `${m.method}: ${cells[0]} in ${line}`);
    }
  });

  it('reads runs whose methods this process has not registered, by name', () => {
    const dir = join(tempDir(), 'other-program');
    mkdirSync(dir);
    const r = results(join(seedsDir, 'seed-0'));
    const theirs = { ...r.methods[2]!, method: 'my-head', label: 'My head' };
    writeFileSync(join(dir, 'results.json'), JSON.stringify({ ...r, methods: [...r.methods, theirs] }));
    const { comparison: c } = compareRuns([dir]);
    const m = c.groups[0]!.methods.find((x) => x.method === 'my-head')!;
    assert.equal(m.label, 'My head');
    assert.equal(m.overall!.mean, theirs.overall);
    // Listed after the registered methods; every page renders it.
    assert.equal(c.groups[0]!.methods.at(-1)!.method, 'my-head');
    assert.match(comparisonText(c), /\nMy head +\d/);
  });

  it('runs that differ in a setting are groups side by side, named by that setting', async () => {
    const out = join(root, 'cmp-groups');
    const dirs = ['crt-e1-s1', 'crt-e1-s2', 'crt-e1-s3', 'crt-e2-s1'].map(stage2);
    // In this process (test/helpers/cli.ts); the seeds test starts the real command.
    const r = await runInProcess(['report', ...dirs, '--out', out]);
    assert.equal(r.code, 0, r.stderr);
    const c = ComparisonSchema.parse(JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')));
    assert.deepEqual(c.differingKeys, ['crtEpochs']);
    assert.deepEqual(
      c.groups.map((g) => [g.name, g.runs.length, g.runs.map((x) => x.seed)]),
      [
        ['crtEpochs=1', 3, [1, 2, 3]],
        ['crtEpochs=2', 1, [1]],
      ],
    );
    const crt = dirs.slice(0, 3).map((d) => results(d).methods.find((m) => m.method === 'crt')!.overall);
    assert.ok(new Set(crt).size > 1, 'cRT seeds differ');
    const got = c.groups[0]!.methods.find((m) => m.method === 'crt')!.overall!;
    const want = byHand(crt);
    assert.ok(Math.abs(got.mean - want.mean) < 1e-9 && Math.abs(got.std - want.std) < 1e-9);
    // NCM does not depend on the seed: std 0 over three runs.
    assert.equal(c.groups[0]!.methods.find((m) => m.method === 'ncm')!.overall!.std, 0);
    // The terminal shows both groups; a single run's value has no ± (its spread is unknown).
    assert.match(r.stdout, /crtEpochs=1 \(3 runs, seeds 1, 2, 3\)/);
    assert.match(r.stdout, /crtEpochs=2 \(1 run, seed 1\)\nmethod.*\nNCM +\d+\.\d +/);
    const html = readFileSync(join(out, 'report.html'), 'utf8');
    assert.ok(htmlRows(html, 'crtEpochs=2').every((row) => !row.join().includes('±')));
    // The chart holds both groups, with error bars from mean - std to mean + std.
    const spec = JSON.parse(readFileSync(join(out, 'charts', 'compare-accuracy.vl.json'), 'utf8'));
    const bar = spec.data.values.find(
      (v: { groupName: string; method: string; group: string }) =>
        v.groupName === 'crtEpochs=1' && v.method === 'cRT' && v.group === 'All',
    );
    assert.ok(
      Math.abs(bar.lo - (want.mean - want.std)) < 1e-9 && Math.abs(bar.hi - (want.mean + want.std)) < 1e-9,
    );
    // A run folder given with its stage2 beside it is only itself; the stage-2 folder is a run of its own.
    const both = compareRuns([join(seedsDir, 'seed-0'), stage2('crt-e1-s1')]).comparison;
    assert.equal(
      both.groups.reduce((a, g) => a + g.runs.length, 0),
      2,
    );
  });

  it('refuses bad inputs with one line naming the file, exit 2, and writes nothing', async () => {
    const bad = tempDir();
    const out = join(bad, 'out');
    // From the command line: exit 2, one line, no --out folder.
    const cli = async (args: string[], pattern: RegExp) => {
      refused(await runInProcess(['report', ...args, '--out', out]), pattern);
      assert.ok(!existsSync(out), 'nothing written');
    };
    // From the library (the same code path after argument parsing): a ConfigError naming the file.
    const lib = async (args: string[], pattern: RegExp) => {
      await assert.rejects(reportRuns(args, out), (e: Error) => {
        assert.equal(e.name, 'ConfigError');
        assert.match(e.message, pattern);
        assert.doesNotMatch(e.message, /\n/);
        return true;
      });
      assert.ok(!existsSync(out), 'nothing written');
    };
    await cli([join(bad, 'missing')], new RegExp(`${join(bad, 'missing')}: no such folder`));
    const broken = join(bad, 'broken');
    cpSync(stage2('crt-e1-s1'), broken, { recursive: true });
    writeFileSync(join(broken, 'results.json'), '{"schemaVersion": 2, "methods": [');
    // The good run first: nothing is written before every input has been read.
    await cli([stage2('crt-e1-s2'), broken], new RegExp(`${join(broken, 'results.json')}: not valid JSON`));
    const wrong = join(bad, 'wrong');
    cpSync(stage2('crt-e1-s1'), wrong, { recursive: true });
    const r = results(wrong);
    r.methods[0]!.overall = 120;
    writeFileSync(join(wrong, 'results.json'), JSON.stringify(r));
    await lib(
      [stage2('crt-e1-s2'), wrong],
      new RegExp(
        `^${join(wrong, 'results.json')}: not a longtail results file: methods\\.0\\.overall must be at most 100 \\(got 120\\)$`,
      ),
    );
    const empty = join(bad, 'empty');
    mkdirSync(join(empty, 'sub'), { recursive: true });
    await lib([empty], new RegExp(`^${empty}: no results.json in it or in its sub-folders`));
    await lib([FEATURES], /is a file; expected a run folder/);
    // A comparison is not a run.
    await lib([join(root, 'cmp-groups')], /is a comparison written by longtail report, not a run's results/);
    const none = await runInProcess(['report']);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /missing required argument 'run/);
  });

  it('refuses a non-empty --out unless --force, and never writes into a compared folder', async () => {
    const out = tempDir();
    writeFileSync(join(out, 'notes.txt'), 'mine');
    refused(
      await runInProcess(['report', stage2('crt-e1-s1'), '--out', out]),
      /the folder is not empty \(notes.txt\)/,
    );
    assert.deepEqual(readdirSync(out), ['notes.txt']);
    const ok = await runInProcess(['report', stage2('crt-e1-s1'), '--out', out, '--force']);
    assert.equal(ok.code, 0, ok.stderr);
    assert.deepEqual(readdirSync(out).sort(), [
      '.longtail-manifest.json',
      'charts',
      'notes.txt',
      'report.html',
      'results.json',
      'results.md',
    ]);
    const before = readFileSync(join(stage2('crt-e1-s2'), 'results.json'), 'utf8');
    await assert.rejects(
      reportRuns([stage2('crt-e1-s1'), stage2('crt-e1-s2')], stage2('crt-e1-s2'), { force: true }),
      /is one of the folders compared; write the comparison to a folder of its own/,
    );
    await assert.rejects(reportRuns([seedsDir], seedsDir, { force: true }), /is one of the folders compared/);
    assert.equal(readFileSync(join(stage2('crt-e1-s2'), 'results.json'), 'utf8'), before);
    assert.ok(existsSync(join(seedsDir, 'summary.json')) && existsSync(join(seedsDir, 'config.json')));
  });

  it('opens in headless Chromium with no console error and no network; names from files are escaped', {
    skip: findChromium() ? false : 'Chromium is not installed (.ci/run installs it with apt-get)',
  }, async () => {
    // Feature files named like markup and like a terminal escape: their names are the data sets' names.
    const dir = tempDir();
    const names = [`${HOSTILE}.npz`, `${ESC}[31mred.npz`];
    for (const n of names) copyFileSync(FEATURES, join(dir, n));
    const outs: string[] = [];
    for (const [i, n] of names.entries()) {
      const o = join(dir, `run-${i}`);
      await retrain(
        RetrainConfigSchema.parse({ features: join(dir, n), methods: 'ncm,tau-norm', threads: 1 }),
        { out: o },
      );
      outs.push(o);
    }
    const out = join(dir, 'cmp');
    const r = await runInProcess(['report', ...outs, '--out', out]);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(!(r.stdout + r.stderr).includes(ESC));
    assert.match(r.stdout, /dataset=\\x1b\[31mred\.npz \(1 run/);
    const html = readFileSync(join(out, 'report.html'), 'utf8');
    assert.doesNotMatch(html, /<img|<script|https?:\/\/(?!www\.w3\.org)/);
    assert.ok(!html.includes(ESC));
    assert.ok(html.includes('dataset=&lt;img src=x onerror=alert(1)&gt;.npz'));
    assert.ok(html.includes('dataset=\\x1b[31mred.npz'));
    for (const f of readdirSync(join(out, 'charts')).filter((x) => x.endsWith('.svg'))) {
      const svg = readFileSync(join(out, 'charts', f), 'utf8');
      assert.doesNotMatch(svg, /<img/, f);
      assert.ok(!svg.includes(ESC), f);
    }
    // One Chromium for both pages (a launch costs about a second of CPU).
    const browser = await launchReportBrowser();
    try {
      const page = await browser.open(join(out, 'report.html'));
      const charts = await chartSizes(page.page);
      assert.deepEqual(page.watch.consoleErrors, []);
      assert.deepEqual(page.watch.failedRequests, []);
      assert.deepEqual(
        charts.map((x) => x.id),
        ['compare-accuracy', 'compare-f1-ece'],
      );
      for (const x of charts) assert.ok(x.width > 200 && x.height > 150, `${x.id} is ${x.width}x${x.height}`);
      const seeds = await browser.open(join(seedsDir, 'report.html'));
      assert.deepEqual([seeds.watch.consoleErrors, seeds.watch.failedRequests], [[], []]);
      assert.equal((await chartSizes(seeds.page)).length, 2);
    } finally {
      await browser.close();
    }
  });

  it('the library: compareRuns then writeComparison, the same comparison as the command line', async () => {
    const { comparison, runs } = compareRuns([stage2('crt-e1-s1'), stage2('crt-e1-s2')]);
    assert.equal(runs.length, 2);
    const w = await writeComparison(comparison, join(tempDir(), 'lib'));
    assert.deepEqual(
      ComparisonSchema.parse(JSON.parse(readFileSync(w.results!, 'utf8'))).groups,
      comparison.groups,
    );
    assert.ok(existsSync(w.report));
  });
});
