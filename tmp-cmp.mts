import { readFileSync } from 'node:fs';
import { allCharts } from './src/report/charts.ts';
import { renderSvg } from './src/report/render.ts';
const r = JSON.parse(readFileSync('/tmp/dl/proto-run/results.json', 'utf8'));
const alt = JSON.parse(JSON.stringify(r).replaceAll('__proto__', 'x_proto_x'));
const a = allCharts(r), b = allCharts(alt);
for (const k of Object.keys(a)) {
  let sa: string | null = null, sb: string | null = null;
  try { sa = await renderSvg(a[k]!); } catch (e) { sa = 'ERR ' + (e as Error).message; }
  sb = await renderSvg(b[k]!);
  const same = sa === sb!.replaceAll('x_proto_x', '__proto__');
  console.log(k, same ? 'same' : 'DIFFERENT', sa?.length, sb?.length);
}
const sa = (await renderSvg(a.confusion!))!; const sb = (await renderSvg(b.confusion!))!.replaceAll('x_proto_x', '__proto__');
let i = 0; while (sa[i] === sb[i]) i++; console.log(sa.slice(i - 300, i + 200)); console.log('---'); console.log(sb.slice(i - 300, i + 200));
