// Measures a report's live section: the page's size, and the time from a control move to the
// updated DOM (the input handler recomputes every method's row and redraws the three canvases
// synchronously; a layout is forced after it), median of N moves (each to a value not seen before).
//   node scripts/time-live-report.mjs runs/<run>/report.html [N]
import { statSync } from 'node:fs';
import { register } from 'tsx/esm/api';

register();
const { withReportPage } = await import('../src/report/browser-check.ts');
const [html, nArg = '10'] = process.argv.slice(2);
if (!html) {
  console.error('usage: node scripts/time-live-report.mjs REPORT.html [N]');
  process.exit(2);
}
const n = Number(nArg);
const r = await withReportPage(html, async (page, watch) => {
  const load = await page.evaluate(() => performance.getEntriesByType('navigation')[0]?.duration ?? null);
  const time = (id, values) =>
    page.evaluate(
      ({ id, values }) => {
        const el = document.getElementById(id);
        const ms = [];
        for (const v of values) {
          const t0 = performance.now();
          el.value = String(v);
          el.dispatchEvent(new Event('input', { bubbles: true }));
          void document.body.offsetHeight; // layout of the updated DOM
          ms.push(performance.now() - t0);
        }
        ms.sort((a, b) => a - b);
        return { median: ms[Math.floor(ms.length / 2)], min: ms[0], max: ms[ms.length - 1] };
      },
      { id, values },
    );
  await page.selectOption('#live-method', 'tau-norm');
  const tau = await time(
    'live-tau',
    Array.from({ length: n }, (_, i) => (0.05 + (i * 1.9) / n).toFixed(2)),
  );
  const prior = await time(
    'live-prior',
    Array.from({ length: n }, (_, i) => (i % 17) - 8),
  );
  const info = await page.textContent('#live-sample');
  return { load, tau, prior, info, errors: [...watch.consoleErrors, ...watch.failedRequests] };
});
console.log(JSON.stringify({ bytes: statSync(html).size, ...r }, null, 2));
