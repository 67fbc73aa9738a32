/**
 * Stage 2's evaluation of one method (validation, test and shifted sets, the calibration fit) on
 * 1 thread and on `--threads` threads, alternated in one process so that both see the same load:
 * wall and CPU seconds per run (CPU of the whole process, all threads), the median ratio
 * one-thread wall / split wall, and the results compared (they must be identical).
 *
 *   node --import tsx bench/profile-eval.ts FILE [--methods joint,ncm] [--threads 2] [--rounds 3]
 *
 * FILE is a feature file (e.g. the ImageNet-LT-size one bench/run.ts writes); validation and
 * test stay in the file and are read by blocks, as `retrain --features` does.
 */
import os from 'node:os';
import { initBackend } from '../src/backend/backend.ts';
import { createClassifier, type MethodName } from '../src/classifiers/registry.ts';
import { loadFeatureFile } from '../src/features/feature-set.ts';
import { evaluateClassifier } from '../src/pipeline/stage2.ts';

const argv = process.argv.slice(2);
const arg = (name: string, fallback: string) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1]! : fallback;
};
const file = argv[0];
if (!file || file.startsWith('--')) {
  process.stderr.write(
    'usage: node --import tsx bench/profile-eval.ts FILE [--methods joint] [--threads 2] [--rounds 3]\n',
  );
  process.exit(2);
}
const methods = arg('methods', 'joint').split(',') as MethodName[];
const threads = Number(arg('threads', '2'));
const rounds = Number(arg('rounds', '3'));

await initBackend('wasm');
const fs = loadFeatureFile(file, undefined, { evalInFile: true });
const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]!;
for (const m of methods) {
  const ctx = { features: fs, seed: 0 };
  const clf = createClassifier(m, ctx, {});
  const time = (t: number) => {
    const w = performance.now();
    const u = process.cpuUsage();
    const r = evaluateClassifier(clf, { ...ctx, threads: t }, 0);
    const c = process.cpuUsage(u);
    return { wall: (performance.now() - w) / 1000, cpu: (c.user + c.system) / 1e6, r: { ...r, seconds: 0 } };
  };
  const one: number[] = [];
  const split: number[] = [];
  let same = true;
  for (let k = 0; k < rounds; k++) {
    // Alternate which goes first, so that neither always meets the other's garbage.
    const order = k % 2 === 0 ? [1, threads] : [threads, 1];
    const runs = order.map((t) => ({ t, ...time(t) }));
    for (const x of runs) (x.t === 1 ? one : split).push(x.wall);
    same &&= JSON.stringify(runs[0]!.r) === JSON.stringify(runs[1]!.r);
    for (const x of runs)
      process.stderr.write(
        `${m} ${x.t} thread(s): wall ${x.wall.toFixed(2)} s, cpu ${x.cpu.toFixed(2)} s, load ${os.loadavg()[0]!.toFixed(2)}\n`,
      );
  }
  console.log(
    JSON.stringify({
      method: m,
      classes: fs.numClasses,
      dim: fs.dim,
      val: fs.val?.labels.length ?? 0,
      test: fs.test.labels.length,
      threads,
      oneMedianS: +median(one).toFixed(2),
      splitMedianS: +median(split).toFixed(2),
      ratio: +(median(one) / median(split)).toFixed(2),
      identical: same,
      load: +os.loadavg()[0]!.toFixed(2),
    }),
  );
}
