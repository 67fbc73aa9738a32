/**
 * Where a data-parallel training step's time goes, 1 thread against N (alternating, so both see
 * the same machine load): per step on the main thread, posting the workers' shards, its own
 * gradients, waiting for the workers, the gradient mean, the update; per worker, the delay until
 * it starts its shard, its gradients, the delay until the main thread reads them, its update.
 * Every thread's time on a core and time waiting for one (Linux scheduler clock) is given beside
 * its gradients: under load, the queued time says how much of a slow shard was the machine.
 *
 *   node --import tsx bench/profile-parallel.ts [--model resnet8] [--shape 28,28,1] [--threads 2]
 *       [--batch 128] [--steps 30] [--rounds 3] [--augment none|crop-flip] [--no-ahead]
 *
 * `--augment crop-flip` assembles every step's batch on the main thread as training does
 * (src/train/epoch.ts: the next batch while the workers compute, DataParallel.step's
 * `whileWaiting`), from 4,096 random images; without it every step reuses one batch (as
 * `npm run bench` does).
 *
 * A third trainer, one thread on half the batch, runs in the same rounds: its on-core time
 * against a 2-thread shard's (the same number of images) is what running both cores at once
 * costs each of them (shared cache and memory), apart from waiting.
 */
import { initBackend } from '../src/backend/backend.ts';
import type { ImageSet } from '../src/data/types.ts';
import { createModel } from '../src/models/model.ts';
import { Sgd } from '../src/optim/sgd.ts';
import { createRng } from '../src/random/rng.ts';
import { type Augmentation, makeBatch } from '../src/train/augment.ts';
import { DataParallel, type StepTimings } from '../src/train/parallel/data-parallel.ts';
import { type ThreadCounters, threadClock } from '../src/train/parallel/thread-clock.ts';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : fallback;
}
const model = arg('model', 'resnet8');
const [H, W, C] = arg('shape', '28,28,1').split(',').map(Number) as [number, number, number];
const threads = Number(arg('threads', '2'));
const steps = Number(arg('steps', '30'));
const rounds = Number(arg('rounds', '3'));
const B = Number(arg('batch', '128'));
const augment = arg('augment', 'none') as Augmentation;
if (augment !== 'none' && augment !== 'crop-flip')
  throw new Error(`--augment none|crop-flip, got ${augment}`);

await initBackend('wasm');
const rng = createRng(0);
const x = Float32Array.from({ length: B * H * W * C }, () => rng.next());
const y = Int32Array.from({ length: B }, (_, i) => i % 10);
const N = 4096;
const images: ImageSet = {
  pixels: Uint8Array.from({ length: augment === 'none' ? 0 : N * H * W * C }, () => rng.int(256)),
  labels: Int32Array.from({ length: N }, (_, i) => i % 10),
  height: H,
  width: W,
  channels: C,
};
const augRng = createRng(1);
const idx = new Int32Array(B);
/** The next step's batch: the fixed one, or a fresh augmented one as an epoch makes it. */
function nextBatch(): number {
  if (augment === 'none') return 0;
  const t = performance.now();
  for (let k = 0; k < B; k++) idx[k] = augRng.int(N);
  makeBatch(images, idx, augment, augRng, x);
  for (let k = 0; k < B; k++) y[k] = images.labels[idx[k]!]!;
  return performance.now() - t;
}

const make = async (t: number) => {
  const m = createModel(model, [H, W, C], 10, 0);
  const opt = new Sgd({ momentum: 0.9, weightDecay: 5e-4 });
  const dp = await DataParallel.create(m, opt, t, { seed: 0, momentum: 0.9, weightDecay: 5e-4 });
  dp.profile = true;
  for (let i = 0; i < 3; i++) await dp.step(x, y, 0.01);
  return dp;
};
const one = await make(1);
const half = await make(1);
const many = await make(threads);
/** `--no-ahead`: a second N-thread trainer whose steps never announce the next batch (as before 2026-12-05). */
const plain = process.argv.includes('--no-ahead') ? await make(threads) : null;
const pct = (v: number[], q: number) => [...v].sort((a, b) => a - b)[Math.floor(q * (v.length - 1))]!;
const med = (v: number[]) => pct(v, 0.5);

interface Round {
  wall: number[];
  batch: number[];
  parts: StepTimings[];
  /** Main thread's CPU ms per step, whole step (batch assembly included). */
  cpu: number[];
  /** The process's CPU ms per step: every thread, V8's own background threads included. */
  proc: number[];
}

async function run(dp: DataParallel, part = 1, ahead = true): Promise<Round> {
  const r: Round = { wall: [], batch: [], parts: [], cpu: [], proc: [] };
  const n = Math.round(B * part);
  const xs = x.subarray(0, n * H * W * C);
  const ys = y.subarray(0, n);
  nextBatch();
  for (let s = 0; s < steps; s++) {
    const t = performance.now();
    const c0 = threadClock();
    const p0 = process.cpuUsage();
    // The next batch goes where this one was, as the trainer does: announced but for the last.
    const more = s + 1 < steps;
    await dp.step(xs, ys, 0.01, {
      whileWaiting: () => {
        r.batch.push(nextBatch());
        return more && ahead;
      },
    });
    const p = process.cpuUsage(p0);
    const c1 = threadClock();
    r.proc.push((p.user + p.system) / 1000);
    r.wall.push(performance.now() - t);
    r.parts.push(dp.lastTimings);
    if (c0 && c1) r.cpu.push((c1.cpuNs - c0.cpuNs) / 1e6);
  }
  return r;
}

const f = (v: number) => v.toFixed(1);
/** Means over the steps of a thread's events during its shard. */
function events(all: (ThreadCounters | undefined)[]): string {
  const e = all.filter((x): x is ThreadCounters => x !== undefined);
  if (e.length === 0) return 'no event counts';
  const mean = (g: (x: ThreadCounters) => number) => (e.reduce((s, x) => s + g(x), 0) / e.length).toFixed(1);
  return (
    `${mean((x) => x.minorFaults)} minor / ${mean((x) => x.majorFaults)} major faults, ` +
    `${mean((x) => x.voluntarySwitches)} blocked / ${mean((x) => x.involuntarySwitches)} preempted (means)`
  );
}
/** The per-step timeline of a round, medians over its steps, ms. */
function timeline(label: string, res: Round) {
  const p = res.parts;
  const m = (g: (t: StepTimings) => number | undefined) => {
    const v = p.map(g).filter((e): e is number => e !== undefined);
    return v.length ? f(med(v)) : '-';
  };
  console.log(
    `  ${label}: step p10 ${f(pct(res.wall, 0.1))} median ${f(med(res.wall))} p90 ${f(pct(res.wall, 0.9))} ms` +
      `; CPU per step: main thread ${res.cpu.length ? f(med(res.cpu)) : '-'} ms, process ${f(med(res.proc))} ms` +
      ` (the rest: workers and V8's background threads)`,
  );
  console.log(
    `    main:     post ${m((t) => t.post)}, gradients ${m((t) => t.compute)} ` +
      `(on core ${m((t) => t.cpu)}, queued ${m((t) => t.queued)}), next batch ${m((t) => t.meanwhile)}, wait ${m((t) => t.wait)}, ` +
      `mean ${m((t) => t.reduce)}, update ${m((t) => t.apply)}; during its shard ${events(p.map((t) => t.events))}`,
  );
  const k = p[0]!.workers.length;
  for (let w = 0; w < k; w++) {
    const wk = (g: (t: StepTimings, x: NonNullable<StepTimings['workers'][number]>) => number | undefined) =>
      m((t) => {
        const x = t.workers[w];
        return x ? g(t, x) : undefined;
      });
    // The main thread's own shard ends at start + post + compute; its wait ends at + wait.
    console.log(
      `    worker ${w + 1}: starts ${wk((t, x) => x.start - (t.start + t.post))} after the post, ` +
        `gradients ${wk((_, x) => x.end - x.start)} (on core ${wk((_, x) => x.cpu)}, queued ${wk((_, x) => x.queued)}), ` +
        `ends ${wk((t, x) => x.end - (t.start + t.post + t.compute))} after the main shard, ` +
        `read ${wk((t, x) => t.start + t.post + t.compute + t.wait - x.end)} later, update ${wk((_, x) => (x.apply > 0 ? x.apply : undefined))}; ` +
        `during its shard ${events(p.map((t) => t.workers[w]?.events))}; its whole step on a core ${wk((_, x) => x.cycle)}`,
    );
  }
}

const speedups: number[] = [];
for (let r = 0; r < rounds; r++) {
  const a = await run(one);
  const h = await run(half, 1 / threads);
  // Alternate which N-thread trainer goes first.
  const c = plain && r % 2 === 1 ? await run(plain, 1, false) : null;
  const b = await run(many);
  const d = plain && r % 2 === 0 ? await run(plain, 1, false) : null;
  const p = c ?? d;
  speedups.push(med(a.wall) / med(b.wall));
  console.log(`round ${r + 1} (${model} ${H}x${W}x${C} b${B}, augment ${augment}):`);
  timeline('1 thread', a);
  timeline(`1 thread on 1/${threads} of the batch`, h);
  timeline(`${threads} threads`, b);
  if (p) {
    timeline(`${threads} threads, next batch not announced`, p);
    const crit = (res: Round) =>
      res.parts.map((t, i) =>
        Math.max(res.cpu[i] ?? 0, ...t.workers.map((w) => (w?.cpu ?? 0) + (w?.apply ?? 0))),
      );
    // A worker's cycle given with step k+1 spans its step k: against the main thread's step k.
    const whole = (res: Round) =>
      res.parts.slice(1).map((t, i) => Math.max(res.cpu[i] ?? 0, ...t.workers.map((w) => w?.cycle ?? 0)));
    console.log(
      `    critical path on a core, median of max(main step, worker shard + update): announced ${f(med(crit(b)))}, ` +
        `not ${f(med(crit(p)))} ms; of max(main step, worker's whole step) ${f(med(whole(b)))} / ${f(med(whole(p)))} ms; ` +
        `process CPU per step ${f(med(b.proc))} / ${f(med(p.proc))} ms`,
    );
  }
}
console.log(
  `speed-up of ${threads} threads (median step against median step), per round: ${speedups.map((s) => s.toFixed(2)).join(', ')}`,
);
await one.dispose();
await half.dispose();
await many.dispose();
await plain?.dispose();
