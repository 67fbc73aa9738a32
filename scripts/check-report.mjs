// Checks a report.html in headless Chromium: no console errors, no network, every chart visible.
// Usage: node scripts/check-report.mjs runs/<run>/report.html [screenshot.png]
import { register } from 'tsx/esm/api';

register();
const { checkReportInBrowser } = await import('../src/report/browser-check.ts');
const [html, shot] = process.argv.slice(2);
if (!html) {
  console.error('usage: node scripts/check-report.mjs REPORT.html [SCREENSHOT.png]');
  process.exit(2);
}
const r = await checkReportInBrowser(html, shot ? { screenshot: shot } : {});
console.log(JSON.stringify(r, null, 2));
const bad =
  r.consoleErrors.length > 0 ||
  r.failedRequests.length > 0 ||
  r.charts.length === 0 ||
  r.charts.some((c) => c.width < 50 || c.height < 50);
process.exit(bad ? 1 : 0);
