/**
 * Vega-Lite -> SVG (vega's headless renderer) -> PNG (sharp / librsvg). No browser needed.
 *
 * vega and vega-lite are optional peer dependencies (about 43 MB installed, a third of the rest of
 * the install): the repository has them (dev dependencies), and a project that installs longtail
 * gets rendered charts after `npm install vega vega-lite`. Without them a chart is written as its
 * Vega-Lite spec only (`.vl.json`, data included; any Vega-Lite viewer renders it) and one line
 * on stderr says so. All three are imported on the first chart, not when longtail loads.
 */
import { writeFileAtomic } from '../io/atomic.ts';
import type { VegaLiteSpec } from './charts.ts';

interface Renderer {
  vega: typeof import('vega');
  compile: typeof import('vega-lite').compile;
}

let renderer: Promise<Renderer | null> | undefined;
let told = false;

function notInstalled(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND';
}

/** vega and vega-lite, loaded once; null when they are not installed. */
function chartRenderer(): Promise<Renderer | null> {
  renderer ??= Promise.all([import('vega'), import('vega-lite')]).then(
    ([vega, vegaLite]) => ({ vega, compile: vegaLite.compile }),
    (err: unknown) => {
      if (notInstalled(err)) return null;
      throw err;
    },
  );
  return renderer;
}

/** Whether charts render to SVG and PNG here (vega and vega-lite are installed). */
export async function chartsAvailable(): Promise<boolean> {
  return (await chartRenderer()) !== null;
}

/** The chart as SVG, or null when vega / vega-lite are not installed. */
export async function renderSvg(spec: VegaLiteSpec): Promise<string | null> {
  const r = await chartRenderer();
  if (r === null) return null;
  const compiled = r.compile(spec as unknown as Parameters<Renderer['compile']>[0]).spec;
  const view = new r.vega.View(r.vega.parse(compiled), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/**
 * Writes `<base>.vl.json` (the spec, data included) and, when vega is installed, `<base>.svg` and
 * `<base>.png`; the paths of what was written (svg and png null when not rendered).
 */
export async function writeChart(
  base: string,
  spec: VegaLiteSpec,
): Promise<{ svg: string | null; png: string | null; spec: string }> {
  writeFileAtomic(`${base}.vl.json`, `${JSON.stringify(spec, null, 2)}\n`);
  const svg = await renderSvg(spec);
  if (svg === null) {
    if (!told)
      process.stderr.write(
        'longtail: charts are written as Vega-Lite specs only (.vl.json); `npm install vega vega-lite` renders them to SVG and PNG\n',
      );
    told = true;
    return { svg: null, png: null, spec: `${base}.vl.json` };
  }
  writeFileAtomic(`${base}.svg`, svg);
  const { default: sharp } = await import('sharp');
  const png = await sharp(Buffer.from(svg), { density: 144 }).png().toBuffer();
  writeFileAtomic(`${base}.png`, png);
  return { svg: `${base}.svg`, png: `${base}.png`, spec: `${base}.vl.json` };
}
