/**
 * Legibility in a real browser (headless Chromium at 1400 x 900): a demo report (the demo
 * pipeline, small), a 1,000-class report from a synthetic feature file and a `longtail report`
 * comparison of 4 runs. For each: no chart text (SVG or live canvas) below 10 px as rendered,
 * every chart within the page's width, no console error, no network request. A full-page
 * screenshot of each is saved to a temporary folder whose path the test prints, for a person to
 * look at.
 *
 * Cheap by construction: every report is built once, in this process, through the library (no CLI
 * child processes), and one Chromium serves every page, the pages checked at the same time.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { initBackend } from '../src/backend/backend.ts';
import { PipelineConfigSchema, RetrainConfigSchema } from '../src/config/schema.ts';
import { tvDistance } from '../src/eval/label-shift.ts';
import { reportRuns } from '../src/pipeline/report-runs.ts';
import { retrain, runPipeline } from '../src/pipeline/run.ts';
import {
  findChromium,
  type Legibility,
  launchReportBrowser,
  legibility,
  type ReportBrowser,
} from '../src/report/browser-check.ts';
import { LIVE_ROWS_WITHOUT_PER_CLASS, type LiveArray, type LiveData } from '../src/report/live/data.ts';
import {
  classSplits,
  classWeights,
  confusionCounts,
  correctionShift,
  countLabels,
  decodeRows,
  estimateLivePrior,
  evaluateLive,
  fractionText,
  livePosteriors,
  livePredictions,
  pctText,
  rowWeights,
  sliderPrior,
  sourceOf,
} from '../src/report/live/math.ts';
import { writeSyntheticFeatures } from './helpers/synthetic-features.ts';
import { tempDir } from './helpers/tmp.ts';

const skip = findChromium() ? false : 'Chromium is not installed (apt-get install chromium)';
const VIEWPORT = { width: 1400, height: 900 };
const NAMES = ['demo', 'many', 'compare'] as const;
type Name = (typeof NAMES)[number];
type Seen = Legibility & { problems: string[]; shot: string };

describe('reports a researcher can read at 1400 px', { skip, timeout: 900_000 }, () => {
  const dir = tempDir('longtail-legible-');
  // Screenshots outside the test's own folder (which is removed): kept for a person to look at.
  const shots = mkdtempSync(join(tmpdir(), 'longtail-report-screenshots-'));
  const reports = {} as Record<Name, string>;
  const seen = {} as Record<Name, Seen>;
  let browser: ReportBrowser | undefined;
  after(() => browser?.close());

  before(async () => {
    process.stdout.write(`# report screenshots: ${shots}\n`);
    const launched = launchReportBrowser(); // starts while the reports are built
    await initBackend('wasm');
    const many = join(dir, 'f1000.npz');
    // 5 test images a class: the shifted sets then hold more logits than EM / BBSE take
    // (ESTIMATION_MAX_FLOATS), which are skipped with a note; at 3 a class EM runs to its
    // iteration cap on every set, minutes of CPU that this test of the page does not need.
    writeSyntheticFeatures(many, { classes: 1000, testPerClass: 5 });
    const methods = 'joint,ncm,tau-norm';
    await retrain(RetrainConfigSchema.parse({ features: many, methods }), { out: join(dir, 'many') });
    reports.many = join(dir, 'many', 'report.html');
    const fixture = join(import.meta.dirname, 'fixtures', 'features_golden.npz');
    const runs = [0, 1, 2, 3].map((i) => join(dir, `run${i}`));
    for (const [seed, out] of runs.entries())
      await retrain(RetrainConfigSchema.parse({ features: fixture, methods, seed }), { out });
    await reportRuns(runs, join(dir, 'compare'));
    reports.compare = join(dir, 'compare', 'report.html');
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

    // The three pages at once, in one browser.
    browser = await launched;
    await Promise.all(
      NAMES.map(async (name) => {
        const shot = join(shots, `${name}.png`);
        const open = await browser!.open(reports[name], { viewport: VIEWPORT });
        try {
          const l = await legibility(open.page);
          await open.page.screenshot({ path: shot, fullPage: true });
          seen[name] = { ...l, problems: [...open.watch.consoleErrors, ...open.watch.failedRequests], shot };
        } finally {
          await open.close();
        }
      }),
    );
  });

  for (const name of NAMES)
    it(`${name}: chart text 10 px or more, every chart within the page, no console error, no network`, () => {
      const r = seen[name];
      process.stdout.write(`# ${name}: ${r.shot}; smallest text ${JSON.stringify(r.smallestText)}\n`);
      assert.deepEqual(r.problems, []);
      assert.deepEqual(r.overflowing, []);
      assert.ok(r.texts > 20, `${r.texts} SVG texts measured`);
      assert.ok(r.smallestText !== null && r.smallestText.px >= 10, JSON.stringify(r.smallestText));
      assert.ok(statSync(r.shot).size > 10_000);
    });

  it('1,000 classes: per-class views by rank and by split, the most-confused pairs, the live data capped', () => {
    const html = readFileSync(reports.many, 'utf8');
    assert.match(html, /mean over \d+ neighbouring classes/);
    assert.match(html, /<figure id="per-class-by-split"/);
    assert.doesNotMatch(html, /<figure id="confusion"/);
    // Pairs: a table per method, names and shares.
    assert.match(html, /<h2>Most-confused classes<\/h2>/);
    for (const m of ['joint', 'ncm', 'tau-norm'])
      assert.match(html, new RegExp(`<figure class="pairs" id="confused-${m}">`));
    assert.match(html, /<tr><td>\d+<\/td><td>\d+<\/td><td>\d+<\/td><td>\d+\.\d%<\/td><\/tr>/);
    // Per-class live views hidden, so no more rows than the table needs.
    assert.match(html, /id="live-per-class-hidden"/);
    const live = JSON.parse(
      /<script type="application\/json" id="live-data">([^<]*)<\/script>/.exec(html)![1]!,
    );
    assert.equal(live.k, LIVE_ROWS_WITHOUT_PER_CLASS);
    const mb = statSync(reports.many).size / 2 ** 20;
    process.stdout.write(`# 1,000-class report.html: ${mb.toFixed(2)} MiB\n`);
    assert.ok(mb < 8, `${mb.toFixed(2)} MiB`);
  });

  it("demo: the live prior correction estimated by EM or BBSE gives the library's numbers on the page's rows", async () => {
    const html = readFileSync(reports.demo, 'utf8');
    const live = JSON.parse(
      /<script type="application\/json" id="live-data">([^<]*)<\/script>/.exec(html)![1]!,
    ) as LiveData;
    const method = 'crt'; // stored logits: no knob, its calibration always applies
    const m = live.methods.find((x) => x.method === method)!;
    const cal = m.calibration!;
    assert.ok(cal.temperature > 0 && cal.valConfusion, 'the page carries the calibration and BBSE counts');
    const buf = (s: string) => {
      const b = Buffer.from(s, 'base64');
      return b.buffer.slice(b.byteOffset, b.byteOffset + b.length);
    };
    const C = live.numClasses;
    const k = live.k;
    const decode = (a: LiveArray) =>
      decodeRows(new Float32Array(buf(a.offsets)), new Uint16Array(buf(a.halves)), k, C);
    const labels = new Int32Array(buf(live.labels));
    const z = decode(m.logits!);
    const counts = countLabels(labels, C);
    const q = sliderPrior(live.trainCounts, live.testCounts, { ratio: 50, direction: 'backward' });
    const w = classWeights(q, counts);
    const source = sourceOf(live.sourcePrior, C);
    const splits = classSplits(live.trainCounts, live.thresholds);
    const want = (how: 'em' | 'bbse') => {
      const est = estimateLivePrior(
        how,
        { probs: livePosteriors(z, k, C, cal), pred: livePredictions(z, k, C, cal) },
        k,
        C,
        rowWeights(labels, w),
        source,
        confusionCounts(new Int32Array(buf(cal.valConfusion!)), C),
      );
      const e = evaluateLive(z, labels, C, w, splits, {
        shift: correctionShift(est, source, cal),
        temperature: cal.temperature,
      });
      return { overall: pctText(e.overall), tv: fractionText(tvDistance(est, Array.from(q))) };
    };
    const open = await browser!.open(reports.demo, { viewport: VIEWPORT });
    try {
      const { page } = open;
      const row = () =>
        page.$eval(`#live-table tr[data-method="${method}"]`, (tr) => ({
          overall: tr.querySelector('td[data-col="overall"]')!.textContent!,
          tv: tr.querySelector('td[data-col="tv"]')!.textContent!,
        }));
      const options = await page.$$eval('#live-correction option', (os) =>
        os.map((o) => [(o as HTMLOptionElement).value, (o as HTMLOptionElement).disabled]),
      );
      assert.deepEqual(options, [
        ['none', false],
        ['known', false],
        ['em', false],
        ['bbse', false],
      ]);
      await page.$eval('#live-prior', (el) => {
        (el as HTMLInputElement).value = '8'; // backward 50
        el.dispatchEvent(new Event('input', { bubbles: true }));
      });
      const none = await row();
      const got: Record<string, { overall: string; tv: string }> = {};
      for (const how of ['em', 'bbse', 'known'] as const) {
        await page.selectOption('#live-correction', how);
        got[how] = await row();
      }
      process.stdout.write(`# demo live, crt at backward 50: ${JSON.stringify({ none, ...got })}\n`);
      assert.equal(none.tv, '-');
      for (const how of ['em', 'bbse'] as const) {
        assert.deepEqual(got[how], want(how), how);
        assert.notEqual(got[how]!.overall, none.overall, `${how} changes the numbers`);
      }
      assert.deepEqual(open.watch.consoleErrors, []);
    } finally {
      await open.close();
    }
  });
});
