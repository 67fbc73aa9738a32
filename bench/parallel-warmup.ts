/**
 * How long a data-parallel trainer takes to reach its steady step, 1 thread against N: each
 * trainer in fresh processes (as `npm run bench` and a real run start), alternating, every step
 * timed from the first. Per step: wall time, the main thread's time on a core (the whole step),
 * the worker's (its shard and its update, the gradients message's scheduler clock) and the
 * process's CPU. The critical path on a core, max(main, worker), is what the step would take on
 * an idle machine apart from waiting, so the windows' ratios survive load; wall ratios need a
 * quiet machine.
 *
 *   node --import tsx bench/parallel-warmup.ts [--model resnet8] [--shape 28,28,1] [--threads 2]
 *       [--batch 128] [--steps 60] [--processes 3] [--node-flags "--single-threaded ..."]
 *
 * Windows (steps counted from 1): step 1 (the first: workers' JIT, the wasm heap's growth), steps
 * 3-17 (what the bench's paired rounds timed before 2026-12-05: 2 warm-up steps, 3 repeats of
 * 5), 21-end (after the bench's 20 warm-up steps now).
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { initBackend } from '../src/backend/backend.ts';
import { createModel } from '../src/models/model.ts';
import { Sgd } from '../src/optim/sgd.ts';
import { createRng } from '../src/random/rng.ts';
import { DataParallel } from '../src/train/parallel/data-parallel.ts';
import { threadClock } from '../src/train/parallel/thread-clock.ts';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : fallback;
}
const model = arg('model', 'resnet8');
const shape = arg('shape', '28,28,1');
const threads = Number(arg('threads', '2'));
const steps = Number(arg('steps', '60'));
const processes = Number(arg('processes', '3'));
const B = Number(arg('batch', '128'));
/** Flags for the trainers' processes (V8's, e.g. --single-threaded: is the warm-up its background threads?). */
const nodeFlags = arg('node-flags', '')
  .split(' ')
  .filter((f) => f !== '');

interface Curve {
  wall: number[];
  main: number[];
  worker: number[];
  proc: number[];
}

async function child(t: number): Promise<Curve> {
  const [H, W, C] = shape.split(',').map(Number) as [number, number, number];
  await initBackend('wasm');
  const rng = createRng(0);
  const x = Float32Array.from({ length: B * H * W * C }, () => rng.next());
  const y = Int32Array.from({ length: B }, (_, i) => i % 10);
  const m = createModel(model, [H, W, C], 10, 0);
  const opt = new Sgd({ momentum: 0.9, weightDecay: 5e-4 });
  const dp = await DataParallel.create(m, opt, t, { seed: 0, momentum: 0.9, weightDecay: 5e-4 });
  dp.profile = true;
  const c: Curve = { wall: [], main: [], worker: [], proc: [] };
  for (let s = 0; s < steps; s++) {
    const c0 = threadClock();
    const p0 = process.cpuUsage();
    const w0 = performance.now();
    // The next step's batch is this one, announced as the trainer's epoch loop does.
    await dp.step(x, y, 0.01, { whileWaiting: () => true });
    c.wall.push(performance.now() - w0);
    const p = process.cpuUsage(p0);
    const c1 = threadClock();
    c.proc.push((p.user + p.system) / 1000);
    c.main.push(c0 && c1 ? (c1.cpuNs - c0.cpuNs) / 1e6 : Number.NaN);
    // The slowest worker's shard and update (its update follows the previous step's exchange).
    c.worker.push(
      Math.max(0, ...dp.lastTimings.workers.map((w) => (w ? (w.cpu ?? Number.NaN) + w.apply : 0))),
    );
  }
  await dp.dispose();
  return c;
}

const childIdx = process.argv.indexOf('--child');
if (childIdx >= 0) {
  process.stdout.write(`${JSON.stringify(await child(Number(process.argv[childIdx + 1])))}\n`);
  process.exit(0);
}

const self = fileURLToPath(import.meta.url);
const curves = new Map<number, Curve[]>([
  [1, []],
  [threads, []],
]);
for (let p = 0; p < processes; p++) {
  for (const t of curves.keys()) {
    const r = spawnSync(
      process.execPath,
      [...nodeFlags, '--import', 'tsx', self, ...process.argv.slice(2), '--child', String(t)],
      {
        encoding: 'utf8',
        timeout: 1_800_000,
      },
    );
    if (r.status !== 0) throw new Error(`child (threads ${t}) failed:\n${r.stderr}`);
    curves.get(t)!.push(JSON.parse(r.stdout.trim().split('\n').pop()!));
  }
}

const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
/** The mean over processes of a per-step figure's mean over steps [lo, hi) (0-based). */
function windowMean(cs: Curve[], g: (c: Curve, s: number) => number, lo: number, hi: number): number {
  return mean(cs.map((c) => mean(Array.from({ length: Math.min(hi, steps) - lo }, (_, k) => g(c, lo + k)))));
}
const windows: [string, number, number][] = [
  ['step 1', 0, 1],
  ['2-5', 1, 5],
  ['6-10', 5, 10],
  ['11-20', 10, 20],
  ['3-17 (old bench)', 2, 17],
  [`21-${steps} (bench now)`, 20, steps],
];
const figures: [string, (c: Curve, s: number) => number][] = [
  ['wall', (c, s) => c.wall[s]!],
  ['on core: main', (c, s) => c.main[s]!],
  ['on core: worker', (c, s) => c.worker[s]!],
  ['on core: max(main, worker)', (c, s) => Math.max(c.main[s]!, c.worker[s]!)],
  ['process CPU', (c, s) => c.proc[s]!],
];
const f = (v: number) => (Number.isFinite(v) ? v.toFixed(1) : '-');
console.log(
  `${model} ${shape} b${B}, ${processes} fresh processes per thread count, ms per step (means), windows of steps:`,
);
for (const [t, cs] of curves) {
  console.log(`${t} thread(s):`);
  for (const [name, g] of figures) {
    if (t === 1 && name.includes('worker')) continue;
    console.log(
      `  ${name.padEnd(27)} ${windows.map(([w, lo, hi]) => `${w} ${f(windowMean(cs, g, lo, hi))}`).join(' | ')}`,
    );
  }
}
const one = curves.get(1)!;
const many = curves.get(threads)!;
for (const [name, g] of [figures[0]!, figures[3]!]) {
  console.log(
    `${threads} threads over 1 by ${name}: ${windows
      .slice(4)
      .map(([w, lo, hi]) => `${w} ${(windowMean(one, g, lo, hi) / windowMean(many, g, lo, hi)).toFixed(2)}x`)
      .join(', ')}`,
  );
}
