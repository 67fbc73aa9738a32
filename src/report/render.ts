/** Vega-Lite -> SVG (vega's headless renderer) -> PNG (sharp / librsvg). No browser needed. */
import sharp from 'sharp';
import * as vega from 'vega';
import { compile } from 'vega-lite';
import { writeFileAtomic } from '../io/atomic.ts';
import type { VegaLiteSpec } from './charts.ts';

export async function renderSvg(spec: VegaLiteSpec): Promise<string> {
  const compiled = compile(spec as unknown as Parameters<typeof compile>[0]).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** Writes `<base>.svg`, `<base>.png` and `<base>.vl.json` (the spec, data included). */
export async function writeChart(
  base: string,
  spec: VegaLiteSpec,
): Promise<{ svg: string; png: string; spec: string }> {
  const svg = await renderSvg(spec);
  writeFileAtomic(`${base}.svg`, svg);
  const png = await sharp(Buffer.from(svg), { density: 144 }).png().toBuffer();
  writeFileAtomic(`${base}.png`, png);
  writeFileAtomic(`${base}.vl.json`, `${JSON.stringify(spec, null, 2)}\n`);
  return { svg: `${base}.svg`, png: `${base}.png`, spec: `${base}.vl.json` };
}
