/**
 * Legibility in a real browser (headless Chromium at 1400 x 900): a demo report (the demo
 * pipeline, small), a 1,000-class report from a synthetic feature file and a `longtail report`
 * comparison of 4 runs. For each: no chart text (SVG or live canvas) below 10 px as rendered,
 * every chart within the page's width, no console error, no network request. A full-page
 * screenshot of each is saved to a temporary folder whose path the test prints, for a person to
 * look at.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { initBackend } from '../src/backend/backend.ts';
import { PipelineConfigSchema } from '../src/config/schema.ts';
import { runPipeline } from '../src/pipeline/run.ts';
import { findChromium, legibility, withReportPage } from '../src/report/browser-check.ts';
import { BIN } from './helpers/cli.ts';
import { writeSyntheticFeatures } from './helpers/synthetic-features.ts';
import { tempDir } from './helpers/tmp.ts';

const skip = findChromium() ? false : 'Chromium is not installed (apt-get install chromium)';
const VIEWPORT = { width: 1400, height: 900 };

function cli(args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((done) => {
    const p = spawn(process.execPath, [BIN, ...args], { env: process.env });
    let stderr = '';
    p.stderr.on('data', (d) => {
      stderr += d;
    });
    p.on('close', (code) => done({ code, stderr }));
  });
}

describe('reports a researcher can read at 1400 px', { skip, timeout: 900_000 }, () => {
  const dir = tempDir('longtail-legible-');
  // Screenshots outside the test's own folder (which is removed): kept for a person to look at.
  const shots = mkdtempSync(join(tmpdir(), 'longtail-report-screenshots-'));
  const reports: Record<string, string> = {};

  before(async () => {
    process.stdout.write(`# report screenshots: ${shots}\n`);
    const fixture = join(import.meta.dirname, 'fixtures', 'features_golden.npz');
    const many = join(dir, 'f1000.npz');
    writeSyntheticFeatures(many, { classes: 1000 });
    const runs = [0, 1, 2, 3].map((i) => join(dir, `run${i}`));
    const [big, ...small] = await Promise.all([
      cli(['retrain', '--features', many, '-m', 'joint,ncm,tau-norm', '--out', join(dir, 'many')]),
      ...runs.map((out, i) =>
        cli([
          'retrain',
          '--features',
          fixture,
          '-m',
          'joint,ncm,tau-norm',
          '--seed',
          String(i),
          '--out',
          out,
        ]),
      ),
    ]);
    assert.equal(big!.code, 0, big!.stderr);
    for (const s of small) assert.equal(s.code, 0, s.stderr);
    reports.many = join(dir, 'many', 'report.html');
    const cmp = await cli(['report', ...runs, '--out', join(dir, 'compare')]);
    assert.equal(cmp.code, 0, cmp.stderr);
    reports.compare = join(dir, 'compare', 'report.html');
    await initBackend('wasm');
    const cfg = PipelineConfigSchema.parse({
      maxPerClass: 40,
      imbalance: 10,
      epochs: 2,
      batchSize: 16,
      crtEpochs: 1,
      lwsEpochs: 1,
      methods: 'all',
    });
    await runPipeline(cfg, join(dir, 'demo'));
    reports.demo = join(dir, 'demo', 'report.html');
  });

  for (const name of ['demo', 'many', 'compare'] as const)
    it(`${name}: chart text 10 px or more, every chart within the page, no console error, no network`, async () => {
      const shot = join(shots, `${name}.png`);
      const r = await withReportPage(
        reports[name]!,
        async (page, watch) => {
          const l = await legibility(page);
          await page.screenshot({ path: shot, fullPage: true });
          return { ...l, problems: [...watch.consoleErrors, ...watch.failedRequests] };
        },
        { viewport: VIEWPORT },
      );
      process.stdout.write(`# ${name}: ${shot}; smallest text ${JSON.stringify(r.smallestText)}\n`);
      assert.deepEqual(r.problems, []);
      assert.deepEqual(r.overflowing, []);
      assert.ok(r.texts > 20, `${r.texts} SVG texts measured`);
      assert.ok(r.smallestText !== null && r.smallestText.px >= 10, JSON.stringify(r.smallestText));
      assert.ok(statSync(shot).size > 10_000);
    });

  it('1,000 classes: per-class views by rank with a moving mean, the page small', () => {
    const html = readFileSync(reports.many!, 'utf8');
    assert.match(html, /mean over \d+ neighbouring classes/);
    assert.doesNotMatch(html, /<figure id="confusion"/);
    const mb = statSync(reports.many!).size / 2 ** 20;
    process.stdout.write(`# 1,000-class report.html: ${mb.toFixed(2)} MiB\n`);
  });
});
