/**
 * report.html's size against the class count: a synthetic feature file per class count (Gaussian
 * clouds, an exponential long tail from 60 training images, `testPerClass` test images a class;
 * test/helpers/synthetic-features.ts), `retrain` Joint, NCM and tau-norm on it through the
 * library, and the page's size: in all, its live data (JSON) and its inline SVG charts.
 *
 *   node --import tsx bench/report-size.ts [class counts, default 10,1000,8142] [test images a class, default 3]
 */
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { initBackend } from '../src/backend/backend.ts';
import { RetrainConfigSchema } from '../src/config/schema.ts';
import { retrain } from '../src/pipeline/run.ts';
import { formatTable } from '../src/report/table.ts';
import { writeSyntheticFeatures } from '../test/helpers/synthetic-features.ts';

const counts = (process.argv[2] ?? '10,1000,8142').split(',').map(Number);
const testPerClass = Number(process.argv[3] ?? '3');
await initBackend('wasm');
const MB = 2 ** 20;
const rows: (string | number)[][] = [];
for (const C of counts) {
  const dir = mkdtempSync(join(os.tmpdir(), 'longtail-report-size-'));
  try {
    const feats = join(dir, 'f.npz');
    writeSyntheticFeatures(feats, { classes: C, testPerClass });
    const t0 = performance.now();
    const cpu0 = process.cpuUsage();
    await retrain(RetrainConfigSchema.parse({ features: feats, methods: 'joint,ncm,tau-norm' }), {
      out: join(dir, 'run'),
    });
    const cpu = process.cpuUsage(cpu0);
    const html = readFileSync(join(dir, 'run', 'report.html'), 'utf8');
    const live = /<script type="application\/json" id="live-data">([^<]*)<\/script>/.exec(html)?.[1] ?? '';
    const svg = [...html.matchAll(/<svg[\s\S]*?<\/svg>/g)].reduce((a, m) => a + m[0].length, 0);
    const k = live ? (JSON.parse(live) as { k: number }).k : 0;
    rows.push([
      C,
      C * testPerClass,
      k,
      (statSync(join(dir, 'run', 'report.html')).size / MB).toFixed(2),
      (live.length / MB).toFixed(2),
      (svg / MB).toFixed(2),
      ((performance.now() - t0) / 1000).toFixed(0),
      ((cpu.user + cpu.system) / 1e6).toFixed(0),
    ]);
    process.stdout.write(`${rows.at(-1)!.join('\t')}\n`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
process.stdout.write(
  `${formatTable(['classes', 'test images', 'live rows', 'report.html MiB', 'live data MiB', 'SVG MiB', 'wall s', 'CPU s'], rows)}\n` +
    `load average (1 min) at the end: ${os.loadavg()[0]!.toFixed(1)} on ${os.cpus().length} CPUs\n`,
);
