/**
 * Where a data-parallel training step's time goes on the main thread, 1 thread against N
 * (alternating, so both see the same machine load): per step, posting the workers' shards,
 * this thread's own gradients, waiting for the workers, the gradient mean, the update.
 *
 *   node --import tsx bench/profile-parallel.ts [--model resnet8] [--shape 28,28,1] [--threads 2]
 *       [--steps 30] [--rounds 3]
 */
import { initBackend } from '../src/backend/backend.ts';
import { createModel } from '../src/models/model.ts';
import { Sgd } from '../src/optim/sgd.ts';
import { createRng } from '../src/random/rng.ts';
import { DataParallel, type StepTimings } from '../src/train/parallel/data-parallel.ts';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : fallback;
}
const model = arg('model', 'resnet8');
const [H, W, C] = arg('shape', '28,28,1').split(',').map(Number) as [number, number, number];
const threads = Number(arg('threads', '2'));
const steps = Number(arg('steps', '30'));
const rounds = Number(arg('rounds', '3'));
const B = 128;

await initBackend('wasm');
const rng = createRng(0);
const x = Float32Array.from({ length: B * H * W * C }, () => rng.next());
const y = Int32Array.from({ length: B }, (_, i) => i % 10);
const make = async (t: number) => {
  const m = createModel(model, [H, W, C], 10, 0);
  const opt = new Sgd({ momentum: 0.9, weightDecay: 5e-4 });
  const dp = await DataParallel.create(m, opt, t, { seed: 0, momentum: 0.9, weightDecay: 5e-4 });
  for (let i = 0; i < 3; i++) await dp.step(x, y, 0.01);
  return dp;
};
const one = await make(1);
const many = await make(threads);
const pct = (v: number[], q: number) => [...v].sort((a, b) => a - b)[Math.floor(q * (v.length - 1))]!;

async function run(dp: DataParallel) {
  const wall: number[] = [];
  const parts: StepTimings[] = [];
  for (let s = 0; s < steps; s++) {
    const t = performance.now();
    await dp.step(x, y, 0.01);
    wall.push(performance.now() - t);
    parts.push(dp.lastTimings);
  }
  return { wall, parts };
}

const speedups: number[] = [];
for (let r = 0; r < rounds; r++) {
  const a = await run(one);
  const b = await run(many);
  const med = (v: number[]) => pct(v, 0.5);
  speedups.push(med(a.wall) / med(b.wall));
  for (const [label, res] of [
    ['1 thread', a],
    [`${threads} threads`, b],
  ] as const) {
    const keys = ['post', 'compute', 'wait', 'reduce', 'apply'] as const;
    const parts = keys.map((k) => `${k} ${med(res.parts.map((p) => p[k])).toFixed(1)}`).join(', ');
    console.log(
      `round ${r + 1} ${label}: step p10 ${pct(res.wall, 0.1).toFixed(1)} median ${med(res.wall).toFixed(1)} p90 ${pct(res.wall, 0.9).toFixed(1)} ms; medians: ${parts}`,
    );
  }
}
console.log(
  `speed-up of ${threads} threads (median step against median step), per round: ${speedups.map((s) => s.toFixed(2)).join(', ')}`,
);
await one.dispose();
await many.dispose();
