// Screenshots a run's report after moving its live controls (for the README's picture):
//   node scripts/screenshot-report.mjs runs/<run>/report.html OUT.png [TAU] [PRIOR_STEP]
// It shows tau-norm, sets its tau (default 1.0) and the target prior (default -3: forward ratio 10),
// and saves the live section (controls, live table, the three live charts) as a PNG.
import { register } from 'tsx/esm/api';

register();
const { withReportPage } = await import('../src/report/browser-check.ts');
const [html, out, tau = '1', prior = '-3'] = process.argv.slice(2);
if (!html || !out) {
  console.error('usage: node scripts/screenshot-report.mjs REPORT.html OUT.png [TAU] [PRIOR_STEP]');
  process.exit(2);
}
const errors = await withReportPage(
  html,
  async (page, watch) => {
    const set = (id, v) =>
      page.$eval(
        `#${id}`,
        (el, value) => {
          el.value = value;
          el.dispatchEvent(new Event('input', { bubbles: true }));
        },
        v,
      );
    await page.selectOption('#live-method', 'tau-norm');
    await set('live-tau', tau);
    await set('live-prior', prior);
    await page.locator('#live').screenshot({ path: out });
    return [...watch.consoleErrors, ...watch.failedRequests];
  },
  { viewport: { width: 1400, height: 900 } },
);
if (errors.length > 0) {
  console.error(errors.join('\n'));
  process.exit(1);
}
console.log(out);
