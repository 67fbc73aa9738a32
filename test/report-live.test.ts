/**
 * The live report in a real browser (headless Chromium through playwright-core): it opens cleanly
 * and offline, its tau slider reproduces `longtail retrain --tau T`, its prior slider gives the
 * uniform numbers and the expectation under a forward long tail, switching the method redraws the
 * confusion heat map. One tiny run, trained once.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import { initBackend } from '../src/backend/backend.ts';
import { PipelineConfigSchema } from '../src/config/schema.ts';
import { runPipeline } from '../src/pipeline/run.ts';
import { chartSizes, findChromium, openReportPage, type ReportPage } from '../src/report/browser-check.ts';
import type { RunResults } from '../src/report/results.ts';
import { BIN } from './helpers/cli.ts';
import { tempDir } from './helpers/tmp.ts';

const METHODS = ['joint', 'ncm', 'crt', 'tau-norm', 'logit-adjust'];
const LIVE = ['live-class-accuracy', 'live-confusion', 'live-reliability'];
const skip = findChromium() ? false : 'Chromium is not installed (.ci/run installs it with apt-get)';

type Row = { overall: string; many: string; medium: string; few: string; macroF1: string; ece: string };

/** The live table's row of a method, as shown. */
function liveRow(page: Page, method: string): Promise<Row> {
  return page.$eval(`#live-table tr[data-method="${method}"]`, (tr) => {
    const o: Record<string, string> = {};
    for (const td of tr.querySelectorAll('td[data-col]'))
      o[(td as HTMLElement).dataset.col!] = td.textContent!;
    return o as Row;
  });
}

/** Sets a range input and fires `input`, as a user's drag does. */
function slide(page: Page, id: string, value: number): Promise<void> {
  return page.$eval(
    `#${id}`,
    (el, v) => {
      (el as HTMLInputElement).value = String(v);
      el.dispatchEvent(new Event('input', { bubbles: true }));
    },
    value,
  );
}

/** The real CLI in a child process, asynchronously (several at once). */
function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((done) => {
    const p = spawn(process.execPath, [BIN, ...args], { env: process.env });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => {
      stdout += d;
    });
    p.stderr.on('data', (d) => {
      stderr += d;
    });
    p.on('close', (code) => done({ code, stdout, stderr }));
  });
}

const fmt = (v: number | null) => (v === null ? '-' : v.toFixed(1));

describe('the live report', { skip }, () => {
  const out = tempDir('longtail-live-');
  let r: RunResults;
  let html: string;
  let open: ReportPage;
  /** The page as loaded, its controls at the run's settings. */
  const fresh = async () => {
    await open.page.reload({ waitUntil: 'load' });
    return open.page;
  };
  after(() => open?.close());
  before(async () => {
    await initBackend('wasm');
    const cfg = PipelineConfigSchema.parse({
      // Enough training that Joint is not one constant class and tau moves the numbers
      // (tau-norm here: All 44.0 at tau 0, 47.8 at 0.9, 33.6 at 2).
      maxPerClass: 60,
      imbalance: 10,
      epochs: 5,
      batchSize: 16,
      lr: 0.1,
      crtEpochs: 1,
      methods: METHODS.join(','),
    });
    r = await runPipeline(cfg, out);
    html = join(out, 'report.html');
    open = await openReportPage(html);
  });

  it('opens with no console error and no network request; every chart is drawn; it is small', async () => {
    const page = await fresh();
    const charts = await chartSizes(page);
    const note = await page.textContent('#live-sample');
    const watch = open.watch;
    assert.deepEqual(watch.consoleErrors, []);
    assert.deepEqual(watch.failedRequests, []);
    for (const id of LIVE) assert.ok(charts.some((c) => c.id === id));
    for (const c of charts) assert.ok(c.width > 200 && c.height > 150, `${c.id} is ${c.width}x${c.height}`);
    assert.match(note!, /all 10000 test images/);
    const text = readFileSync(html, 'utf8');
    assert.doesNotMatch(text, /<script[^>]*\ssrc=|https?:\/\/(?!www\.w3\.org)/);
    assert.ok(statSync(html).size < 5e6, `${statSync(html).size} bytes`);
  });

  it('at the run settings, the live table equals results.json (1 decimal, as results.md)', async () => {
    const page = await fresh();
    const rows = await Promise.all(METHODS.map((m) => liveRow(page, m)));
    METHODS.forEach((m, i) => {
      const want = r.methods.find((x) => x.method === m)!;
      const got = rows[i]!;
      assert.deepEqual(
        [got.overall, got.many, got.medium, got.few],
        [fmt(want.overall), fmt(want.many), fmt(want.medium), fmt(want.few)],
        m,
      );
      assert.ok(Math.abs(Number(got.macroF1) - want.macroF1) <= 0.0015, `${m} macro-F1`);
      assert.ok(Math.abs(Number(got.ece) - want.ece) <= 0.0015, `${m} ECE`);
    });
  });

  it('the tau slider at 0, 1 and the chosen tau gives what `longtail retrain --tau T` prints', async () => {
    const chosen = r.methods.find((m) => m.method === 'tau-norm')!.tuned!.value;
    const taus = [...new Set([0, 1, chosen])];
    const runs = Promise.all(
      taus.map((t) =>
        cli([
          'retrain',
          '--run',
          out,
          '--method',
          'tau-norm',
          '--tau',
          String(t),
          '--mode',
          'features',
          '--json',
          '--out',
          tempDir(),
        ]),
      ),
    );
    const page = await fresh();
    const shown: Row[] = [];
    for (const t of taus) {
      await slide(page, 'live-tau', t);
      shown.push(await liveRow(page, 'tau-norm'));
    }
    assert.ok(new Set(shown.map((x) => x.overall)).size > 1, 'tau changes the numbers in this run');
    (await runs).forEach((res, i) => {
      const t = taus[i]!;
      assert.equal(res.code, 0, res.stderr);
      const want = JSON.parse(res.stdout).methods[0];
      const got = shown[i]!;
      for (const k of ['overall', 'many', 'medium', 'few'] as const) {
        if (want[k] === null) assert.equal(got[k], '-', `tau ${t} ${k}`);
        else
          assert.ok(
            Math.abs(Number(got[k]) - want[k]) <= 0.1 + 1e-9,
            `tau ${t} ${k}: page ${got[k]}, CLI ${want[k]}`,
          );
      }
    });
  });

  it('the prior slider: the test set gives the uniform numbers, forward 50 the expectation sum_c q_c acc_c', async () => {
    const page = await fresh();
    await slide(page, 'live-prior', -8); // forward 50
    const forward = await liveRow(page, 'joint');
    await slide(page, 'live-prior', 0);
    const uniform = await liveRow(page, 'joint');
    const joint = r.methods.find((m) => m.method === 'joint')!;
    assert.equal(uniform.overall, fmt(joint.overall));
    // Independently: class sizes floor(m 50^(-rank / (C - 1))) by training-count rank, m = 1000.
    const counts = r.dataset.trainCounts;
    const rank = counts.map((n, c) => counts.filter((x, j) => x > n || (x === n && j < c)).length);
    const sizes = rank.map((k) => Math.max(1, Math.floor(1000 * 50 ** (-k / (counts.length - 1)))));
    const total = sizes.reduce((a, b) => a + b, 0);
    const expected = joint.perClass.reduce((a: number, acc, c) => a + (sizes[c]! / total) * acc!, 0);
    assert.equal(forward.overall, (Math.round(expected * 10000) / 100).toFixed(1));
    assert.equal(
      forward.few,
      fmt(joint.few),
      'splits are per-class means: the prior alone does not move them',
    );
  });

  it('switching the method redraws the confusion heat map; a screenshot after it is saved', async (t) => {
    // Kept after the test, for a person to look at (a temporary folder, never the repository).
    const shot = join(mkdtempSync(join(tmpdir(), 'longtail-live-shot-')), 'live-report.png');
    const page = await fresh();
    const canvas = '#live-confusion canvas';
    await page.selectOption('#live-method', 'tau-norm');
    const a = await page.$eval(canvas, (c) => (c as HTMLCanvasElement).toDataURL());
    const sigA = await page.$eval(canvas, (c) => (c as HTMLCanvasElement).dataset.signature);
    await page.selectOption('#live-method', 'ncm');
    const b = await page.$eval(canvas, (c) => (c as HTMLCanvasElement).toDataURL());
    const sigB = await page.$eval(canvas, (c) => (c as HTMLCanvasElement).dataset.signature);
    await page.screenshot({ path: shot, fullPage: true });
    assert.notEqual(a, b);
    assert.notEqual(sigA, sigB);
    assert.ok(statSync(shot).size > 10_000);
    t.diagnostic(`screenshot: ${shot}`);
    console.log(`live report screenshot (after switching to NCM): ${shot}`);
  });
});
