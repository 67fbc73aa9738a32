/**
 * Opens a report in a real browser (Debian's headless Chromium through playwright-core, which
 * downloads nothing) and reports console errors, failed requests and whether every chart is
 * visible. Used by the test suite and by `node scripts/check-report.mjs REPORT.html`.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

export const CHROMIUM_PATHS = ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome'];

export function findChromium(): string | null {
  const env = process.env.LONGTAIL_CHROMIUM;
  if (env && existsSync(env)) return env;
  return CHROMIUM_PATHS.find((p) => existsSync(p)) ?? null;
}

export interface BrowserCheck {
  consoleErrors: string[];
  failedRequests: string[];
  charts: { id: string; width: number; height: number }[];
  screenshot?: string;
}

export async function checkReportInBrowser(
  htmlPath: string,
  opts: { screenshot?: string } = {},
): Promise<BrowserCheck> {
  const executablePath = findChromium();
  if (!executablePath)
    throw new Error('no Chromium found (apt-get install chromium, or set LONGTAIL_CHROMIUM)');
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({
    executablePath,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
    const consoleErrors: string[] = [];
    const failedRequests: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error') consoleErrors.push(m.text());
    });
    page.on('pageerror', (e) => consoleErrors.push(String(e)));
    page.on('requestfailed', (r) => failedRequests.push(r.url()));
    page.on('request', (r) => {
      if (!r.url().startsWith('file:') && !r.url().startsWith('data:'))
        failedRequests.push(`network request: ${r.url()}`);
    });
    await page.goto(pathToFileURL(resolve(htmlPath)).href, { waitUntil: 'load' });
    const charts = await page.$$eval('figure', (figs) =>
      figs.map((f) => {
        const svg = f.querySelector('svg');
        const r = svg?.getBoundingClientRect();
        return { id: f.id, width: r?.width ?? 0, height: r?.height ?? 0 };
      }),
    );
    if (opts.screenshot) await page.screenshot({ path: opts.screenshot, fullPage: true });
    return {
      consoleErrors,
      failedRequests,
      charts,
      ...(opts.screenshot ? { screenshot: opts.screenshot } : {}),
    };
  } finally {
    await browser.close();
  }
}
