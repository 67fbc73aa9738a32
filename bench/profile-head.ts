/**
 * Time of stage-2 head steps (wall and the process's CPU time, all threads) (cRT: linear, LWS: scaled) on random features, one thread or
 * class-split over worker threads: median ms per step and the projected seconds per epoch.
 *
 *   node --import tsx bench/profile-head.ts [--kind linear|scaled] [--classes 1000] [--dim 2048]
 *       [--batch 512] [--threads 1] [--steps 20] [--rows 113158]
 *
 * With `--baseline OTHER.node` (another build of the native addon, e.g. main's), one class shard
 * of the whole head (this thread) runs the same steps with each build's kernels in turn and the
 * CPU ms per step of both and their ratio are printed: a comparison that a loaded machine
 * disturbs about equally on both sides.
 *
 * With `--file F.npz` (a feature file, e.g. bench/torch_bench.py --write-features), LWS itself
 * trains on it `--rounds` times for each of `--shares` (the memory its kept products may take,
 * LWS's cacheShare; default 0,0.05) in turn, `--epochs` each (default 1; LWS's official 5 shows
 * what the kept products save across epochs), on `--threads`: CPU s (all threads) and peak RSS
 * (Linux; after a collection with `node --expose-gc`) per run.
 *
 * For a sampling profile: `node --cpu-prof --cpu-prof-dir DIR --import tsx bench/profile-head.ts ...`,
 * then `node bench/cpuprofile-top.mjs DIR/*.cpuprofile`.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import { initBackend } from '../src/backend/backend.ts';
import { headKernels, headKernelsOf } from '../src/backend/native-head.ts';
import { lws } from '../src/classifiers/lws.ts';
import { ShardedHead } from '../src/classifiers/sharded/head-threads.ts';
import { combineShardStats, HeadShard } from '../src/classifiers/sharded/shard-step.ts';
import { loadFeatureFile } from '../src/features/feature-set.ts';
import { createRng } from '../src/random/rng.ts';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : fallback;
}
const kind = arg('kind', 'linear') as 'linear' | 'scaled';
const C = Number(arg('classes', '1000'));
const d = Number(arg('dim', '2048'));
const B = Number(arg('batch', '512'));
const threads = Number(arg('threads', '1'));
const steps = Number(arg('steps', '20'));
const rows = Number(arg('rows', '113158'));

await initBackend('wasm');
const rng = createRng(1);
const weight = Float32Array.from({ length: C * d }, () => (rng.next() - 0.5) * 0.05);
const bias = Float32Array.from({ length: C }, () => (rng.next() - 0.5) * 0.1);
const x = Float32Array.from({ length: B * d }, () => rng.next());
const labels = Int32Array.from({ length: B }, () => Math.floor(rng.next() * C));
const file = arg('file', '');
if (file) {
  const fs = loadFeatureFile(file);
  const shares = arg('shares', '0,0.05').split(',').map(Number);
  const epochs = Number(arg('epochs', '1'));
  const rounds = Number(arg('rounds', '3'));
  const cpu: number[][] = shares.map(() => []);
  // Each run's peak RSS (VmHWM reset before it through /proc/self/clear_refs; Linux).
  const peak: number[][] = shares.map(() => []);
  const hwm = () => Number(/^VmHWM:\s+(\d+)/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1]) / 1024;
  let scales: number[] | null = null;
  for (let r = 0; r < rounds; r++) {
    // Alternate the order of the shares each round.
    const order = shares.map((_, i) => i);
    if (r % 2 === 1) order.reverse();
    for (const i of order) {
      (globalThis as { gc?: () => void }).gc?.();
      writeFileSync('/proc/self/clear_refs', '5');
      const u = process.cpuUsage();
      const clf = lws({ features: fs, seed: 0, threads }, { epochs, cacheShare: shares[i]! });
      const du = process.cpuUsage(u);
      cpu[i]!.push((du.user + du.system) / 1e6);
      peak[i]!.push(Math.round(hwm()));
      const s = clf.details.scales as number[];
      if (scales && !s.every((v, k) => Object.is(v, scales![k])))
        throw new Error('the shares gave different scales');
      scales = s;
    }
  }
  const n = fs.train.labels.length;
  console.log(
    JSON.stringify({
      file,
      threads,
      epochs,
      rounds,
      shares: shares.map((share, i) => ({
        share,
        keptMiB: +((Math.floor((share * n * fs.dim) / fs.numClasses) * fs.numClasses * 4) / 2 ** 20).toFixed(
          1,
        ),
        cpuS: cpu[i]!.map((v) => +v.toFixed(2)),
        medianCpuS: +[...cpu[i]!].sort((a, b) => a - b)[Math.floor(rounds / 2)]!.toFixed(2),
        peakRssMiB: peak[i],
      })),
      sameScales: true,
      load: +os.loadavg()[0]!.toFixed(2),
    }),
  );
  process.exit(0);
}
const baseline = arg('baseline', '');
if (baseline) {
  const other = headKernelsOf(createRequire(import.meta.url)(baseline) as object);
  if (!other) throw new Error(`${baseline}: no head kernels in this addon`);
  const spec = { kind, dim: d, lo: 0, hi: C, weight, bias, momentum: 0.9, weightDecay: 5e-4 };
  const shards = [new HeadShard(spec, other), new HeadShard(spec, headKernels())];
  const step = (h: HeadShard) => {
    const u = process.cpuUsage();
    const st = h.forward(x, labels);
    h.backward(combineShardStats([st], B).rowScale[0]!, 0.1);
    const du = process.cpuUsage(u);
    return (du.user + du.system) / 1000;
  };
  for (const h of shards) for (let s = 0; s < 3; s++) step(h);
  const t: number[][] = [[], []];
  for (let s = 0; s < steps; s++) {
    // Alternate which build goes first.
    const order = s % 2 === 0 ? [0, 1] : [1, 0];
    for (const i of order) t[i]!.push(step(shards[i]!));
  }
  const med = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]!;
  const flop = (kind === 'linear' ? 4 : 2) * C * d * B;
  const [mb, mn] = [med(t[0]!), med(t[1]!)];
  const [s0, s1] = [shards[0]!.state(), shards[1]!.state()];
  const sameBits =
    s0.weight.every((v, i) => Object.is(v, s1.weight[i])) &&
    (s0.scales === null || s0.scales.every((v, i) => Object.is(v, s1.scales![i])));
  console.log(
    JSON.stringify({
      kind,
      C,
      d,
      B,
      steps,
      baselineCpuMs: +mb.toFixed(2),
      cpuMs: +mn.toFixed(2),
      ratio: +(mb / mn).toFixed(3),
      // The step's products alone at this CPU time would run at (GFLOP per CPU s):
      productGflopsIfAll: +(flop / mn / 1e6).toFixed(1),
      sameBits,
      load: +os.loadavg()[0]!.toFixed(2),
    }),
  );
  process.exit(0);
}
const head = new ShardedHead({
  kind,
  dim: d,
  numClasses: C,
  weight,
  bias,
  momentum: 0.9,
  weightDecay: 5e-4,
  batchSize: B,
  threads,
});
for (let s = 0; s < 3; s++) head.step(x, labels, 0.1);
const times: number[] = [];
const cpu: number[] = [];
let loss = 0;
for (let s = 0; s < steps; s++) {
  const t = performance.now();
  const u = process.cpuUsage();
  loss = head.step(x, labels, 0.1);
  const du = process.cpuUsage(u);
  times.push(performance.now() - t);
  cpu.push((du.user + du.system) / 1000);
}
head.finish();
times.sort((a, b) => a - b);
cpu.sort((a, b) => a - b);
const med = times[Math.floor(times.length / 2)]!;
const perEpoch = (Math.ceil(rows / B) * med) / 1000;
console.log(
  JSON.stringify({
    kind,
    C,
    d,
    B,
    threads,
    steps,
    medianMs: +med.toFixed(1),
    minMs: +times[0]!.toFixed(1),
    // CPU time of the whole process (all threads) per step: less sensitive to a loaded machine.
    cpuMs: +cpu[Math.floor(cpu.length / 2)]!.toFixed(1),
    load: +os.loadavg()[0]!.toFixed(2),
    epochS: +perEpoch.toFixed(2),
    loss,
  }),
);
