/**
 * Opens a report in a real browser (Debian's headless Chromium through playwright-core, which
 * downloads nothing) and reports console errors, failed or network requests and whether every
 * chart (static SVG or live canvas) is visible. `withReportPage` hands the open page to a function
 * (to move the live report's controls). Used by the test suite, `node scripts/check-report.mjs
 * REPORT.html` and `node scripts/screenshot-report.mjs`.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Page } from 'playwright-core';

export const CHROMIUM_PATHS = ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome'];

export function findChromium(): string | null {
  const env = process.env.LONGTAIL_CHROMIUM;
  if (env && existsSync(env)) return env;
  return CHROMIUM_PATHS.find((p) => existsSync(p)) ?? null;
}

export interface BrowserCheck {
  consoleErrors: string[];
  failedRequests: string[];
  /** Every figure: its id and the size of its SVG or canvas (0 x 0 when it has none). */
  charts: { id: string; width: number; height: number }[];
  screenshot?: string;
}

/** Console errors and failed / network requests seen so far (the arrays fill while the page runs). */
export interface PageWatch {
  consoleErrors: string[];
  failedRequests: string[];
}

/** An open report page; `close()` closes it (and ends its browser when openReportPage launched one for it). */
export interface ReportPage {
  page: Page;
  watch: PageWatch;
  close(): Promise<void>;
}

/** One headless Chromium: `open` loads a report in a new page of it (several may be open at once). */
export interface ReportBrowser {
  open(htmlPath: string, opts?: { viewport?: { width: number; height: number } }): Promise<ReportPage>;
  close(): Promise<void>;
}

/** Launches headless Chromium once; its pages share it (a launch costs about a second per report otherwise). */
export async function launchReportBrowser(): Promise<ReportBrowser> {
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
  return {
    async open(htmlPath, opts = {}) {
      // A context per page: nothing (cache, storage) is shared between two reports.
      const context = await browser.newContext({ viewport: opts.viewport ?? { width: 1440, height: 900 } });
      try {
        const page = await context.newPage();
        const watch: PageWatch = { consoleErrors: [], failedRequests: [] };
        page.on('console', (m) => {
          if (m.type() === 'error') watch.consoleErrors.push(m.text());
        });
        page.on('pageerror', (e) => watch.consoleErrors.push(String(e)));
        page.on('requestfailed', (r) => watch.failedRequests.push(r.url()));
        page.on('request', (r) => {
          if (!r.url().startsWith('file:') && !r.url().startsWith('data:'))
            watch.failedRequests.push(`network request: ${r.url()}`);
        });
        await page.goto(pathToFileURL(resolve(htmlPath)).href, { waitUntil: 'load' });
        return { page, watch, close: () => context.close() };
      } catch (e) {
        await context.close();
        throw e;
      }
    },
    close: () => browser.close(),
  };
}

/** Opens `htmlPath` in headless Chromium (viewport 1440 x 900 unless given) and waits for it to load. */
export async function openReportPage(
  htmlPath: string,
  opts: { viewport?: { width: number; height: number } } = {},
): Promise<ReportPage> {
  const browser = await launchReportBrowser();
  try {
    const r = await browser.open(htmlPath, opts);
    return {
      ...r,
      close: async () => {
        await r.close();
        await browser.close();
      },
    };
  } catch (e) {
    await browser.close();
    throw e;
  }
}

/** Opens `htmlPath` (openReportPage), runs `fn` on the loaded page and closes the browser. */
export async function withReportPage<T>(
  htmlPath: string,
  fn: (page: Page, watch: PageWatch) => Promise<T>,
  opts: { viewport?: { width: number; height: number } } = {},
): Promise<T> {
  const r = await openReportPage(htmlPath, opts);
  try {
    return await fn(r.page, r.watch);
  } finally {
    await r.close();
  }
}

/** Every figure's id and the rendered size of its SVG or canvas. */
export function chartSizes(page: Page): Promise<BrowserCheck['charts']> {
  return page.$$eval('figure', (figs) =>
    figs.map((f) => {
      const el = f.querySelector('svg, canvas');
      const r = el?.getBoundingClientRect();
      return { id: f.id, width: r?.width ?? 0, height: r?.height ?? 0 };
    }),
  );
}

/** What a reader at this viewport sees of the charts' text and widths. */
export interface Legibility {
  /** The smallest rendered text in a static chart (SVG) or live canvas, in CSS pixels, and where. */
  smallestText: { px: number; chart: string; text: string } | null;
  /** Figures reaching past the page's width (x: their right edge, page: the page's width). */
  overflowing: { id: string; right: number; page: number }[];
  /** SVG text elements measured. */
  texts: number;
}

/**
 * Text sizes as rendered (an SVG's font size times its on-screen scale; a live canvas's drawn
 * size times its shown / drawn width) and figures wider than the page.
 */
export function legibility(page: Page): Promise<Legibility> {
  // A string, not a function: the test runner's transform would add helpers the page lacks.
  return page.evaluate(LEGIBILITY_SCRIPT) as Promise<Legibility>;
}

const LEGIBILITY_SCRIPT = `(() => {
  let smallest = null;
  let texts = 0;
  const note = (px, chart, text) => { if (smallest === null || px < smallest.px) smallest = { px, chart, text }; };
  for (const t of document.querySelectorAll('figure svg text')) {
    const text = (t.textContent || '').trim();
    if (text === '' || t.getClientRects().length === 0) continue;
    const ctm = t.getScreenCTM();
    if (!ctm) continue;
    texts++;
    note(parseFloat(getComputedStyle(t).fontSize) * Math.hypot(ctm.a, ctm.b), t.closest('figure')?.id ?? '?', text);
  }
  for (const c of document.querySelectorAll('figure canvas')) {
    const font = Number(c.dataset.fontPx), drawn = Number(c.dataset.drawnWidth);
    const shown = c.getBoundingClientRect().width;
    if (font > 0 && drawn > 0 && shown > 0) note((font * shown) / drawn, c.closest('figure')?.id ?? '?', '(canvas)');
  }
  const page = document.documentElement.clientWidth;
  const overflowing = [...document.querySelectorAll('figure')]
    .map((f) => ({ id: f.id, right: (f.querySelector('svg, canvas') ?? f).getBoundingClientRect().right, page }))
    .filter((f) => f.right > page + 0.5);
  return { smallestText: smallest, overflowing, texts };
})()`;

export async function checkReportInBrowser(
  htmlPath: string,
  opts: { screenshot?: string } = {},
): Promise<BrowserCheck> {
  return withReportPage(htmlPath, async (page, watch) => {
    const charts = await chartSizes(page);
    if (opts.screenshot) await page.screenshot({ path: opts.screenshot, fullPage: true });
    return {
      consoleErrors: watch.consoleErrors,
      failedRequests: watch.failedRequests,
      charts,
      ...(opts.screenshot ? { screenshot: opts.screenshot } : {}),
    };
  });
}
