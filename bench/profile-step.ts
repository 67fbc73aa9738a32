/**
 * Where a stage-1 training step (or an extraction batch) spends its time, on one thread:
 * every tfjs kernel registered for the wasm backend is wrapped with a timer, and the step's CPU
 * time (this process's user + system: a loaded machine disturbs it least) is split into those
 * kernels and the rest (tfjs dispatch, tape, JavaScript between them).
 *
 *   node --import tsx bench/profile-step.ts [--model resnet20] [--shape 32,32,3] [--extract]
 *       [--batch 128] [--steps 10] [--precision bf16] [--by-shape]
 *
 * `--by-shape` splits each kernel's time by its inputs' shapes (which layer a convolution is).
 * `--extract --compare-chain [--rounds 6]` alternates rounds with and without the whole-backbone
 * native call (CONV_BN_PROGRAM_KERNEL unregistered: layer by layer) in this one process and prints
 * each round's median CPU ms per batch and the ratio of the medians (what survives a loaded machine).
 *
 * For a sampling profile of the same loop: `node --cpu-prof --cpu-prof-dir DIR --import tsx
 * bench/profile-step.ts --no-kernel-timers ...`, then `node bench/cpuprofile-top.mjs DIR/*.cpuprofile`.
 */
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../src/backend/backend.ts';
import { CONV_BN_PROGRAM_KERNEL } from '../src/backend/native-kernels/names.ts';
import { enterBf16Training } from '../src/backend/training-kernels.ts';
import { createModel } from '../src/models/model.ts';
import { Sgd } from '../src/optim/sgd.ts';
import { createRng } from '../src/random/rng.ts';
import { applyGrads, computeGrads } from '../src/train/step.ts';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : fallback;
}

const model = arg('model', 'resnet20');
const [H, W, C] = arg('shape', '32,32,3').split(',').map(Number) as [number, number, number];
const extract = process.argv.includes('--extract');
const B = Number(arg('batch', extract ? '256' : '128'));
const steps = Number(arg('steps', '10'));
const timers = !process.argv.includes('--no-kernel-timers');
const byShape = process.argv.includes('--by-shape');
const precision = arg('precision', 'fp32');
if (precision !== 'fp32' && precision !== 'bf16') throw new Error(`--precision fp32|bf16, got ${precision}`);

await initBackend('wasm');
// Before the timers wrap the registered kernels: the bf16 set is another set of kernel objects.
if (precision === 'bf16') enterBf16Training();

/** CPU time and calls per kernel name. */
const spent = new Map<string, { ms: number; calls: number }>();
if (timers) {
  // getKernelsForBackend returns the registry's own config objects: wrapping kernelFunc there
  // wraps what the engine calls.
  for (const k of tf.getKernelsForBackend('wasm')) {
    const inner = k.kernelFunc;
    (k as { kernelFunc: tf.KernelFunc }).kernelFunc = (args) => {
      const name = byShape
        ? `${k.kernelName} ${Object.values(args.inputs)
            .map((t) => `[${(t as tf.TensorInfo).shape}]`)
            .join(' ')}`
        : k.kernelName;
      // CPU time of the process (one thread here): on a loaded machine, wall time per kernel
      // mostly measures the scheduler.
      const t = process.cpuUsage();
      const out = inner(args);
      const e = spent.get(name) ?? { ms: 0, calls: 0 };
      const d = process.cpuUsage(t);
      e.ms += (d.user + d.system) / 1000;
      e.calls++;
      spent.set(name, e);
      return out;
    };
  }
}

const m = createModel(model, [H, W, C], 10, 0);
const rng = createRng(0);
const x = Float32Array.from({ length: B * H * W * C }, () => rng.next());
const y = Int32Array.from({ length: B }, (_, i) => i % 10);
const opt = new Sgd({ momentum: 0.9, weightDecay: 5e-4 });

const once = extract
  ? () => {
      const f = tf.tidy(() => m.backbone.features(tf.tensor4d(x, [B, H, W, C]), false));
      f.dataSync();
      f.dispose();
    }
  : () => {
      const { grads } = computeGrads(m, x, y);
      applyGrads(m, opt, grads, 0.01);
    };

for (let i = 0; i < 3; i++) once();
spent.clear();

if (process.argv.includes('--compare-chain')) {
  const config = tf.getKernel(CONV_BN_PROGRAM_KERNEL, 'wasm');
  if (config === undefined) throw new Error('the chain kernel is not registered (no native addon?)');
  const cpuMs = () => {
    const c = process.cpuUsage();
    return (c.user + c.system) / 1000;
  };
  const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]!;
  const rounds = Number(arg('rounds', '6'));
  const per: Record<'chain' | 'layers', number[]> = { chain: [], layers: [] };
  for (let r = 0; r < rounds; r++) {
    for (const mode of r % 2 === 0 ? (['chain', 'layers'] as const) : (['layers', 'chain'] as const)) {
      if (mode === 'layers') tf.unregisterKernel(CONV_BN_PROGRAM_KERNEL, 'wasm');
      once();
      const t: number[] = [];
      for (let i = 0; i < steps; i++) {
        const c0 = cpuMs();
        once();
        t.push(cpuMs() - c0);
      }
      if (mode === 'layers') tf.registerKernel(config);
      per[mode].push(median(t));
    }
  }
  const fmt = (v: number[]) => v.map((x) => x.toFixed(1)).join(', ');
  console.log(`${model} ${H}x${W}x${C} b${B}, CPU ms per batch, median of ${steps} per round`);
  console.log(`  chain:  ${fmt(per.chain)}`);
  console.log(`  layers: ${fmt(per.layers)}`);
  console.log(`  layers / chain (ratio of medians): ${(median(per.layers) / median(per.chain)).toFixed(3)}`);
  process.exit(0);
}
const times: number[] = [];
// CPU time of this process per step: what a loaded shared machine disturbs least.
const cpu: number[] = [];
for (let i = 0; i < steps; i++) {
  const t = performance.now();
  const c0 = process.cpuUsage();
  once();
  const c = process.cpuUsage(c0);
  cpu.push((c.user + c.system) / 1000);
  times.push(performance.now() - t);
}
cpu.sort((a, b) => a - b);
console.log(
  `CPU ms per step: median ${cpu[Math.floor(cpu.length / 2)]!.toFixed(1)} min ${cpu[0]!.toFixed(1)}`,
);
times.sort((a, b) => a - b);
const med = times[Math.floor(times.length / 2)]!;
// Kernel shares are of the steps' CPU time.
const total = cpu.reduce((a, b) => a + b, 0);
console.log(
  `${extract ? 'extract' : 'train'} ${model} ${H}x${W}x${C} b${B} ${precision}: median ${med.toFixed(1)} ms per step ` +
    `(min ${times[0]!.toFixed(1)}), ${((B * 1000) / med).toFixed(0)} images/s`,
);
if (timers) {
  const rows = [...spent.entries()].sort((a, b) => b[1].ms - a[1].ms);
  const inKernels = rows.reduce((p, [, v]) => p + v.ms, 0);
  const calls = rows.reduce((p, [, v]) => p + v.calls, 0);
  // Each call also costs tfjs's dispatch and, under a tape, a tape entry (and a clone per saved tensor).
  console.log(
    `kernels ${((100 * inKernels) / total).toFixed(1)}% of the step's CPU time, ${(calls / steps).toFixed(0)} calls a step; CPU ms per step:`,
  );
  for (const [name, v] of rows.slice(0, byShape ? 60 : 25))
    console.log(
      `  ${name.padEnd(byShape ? 60 : 24)} ${(v.ms / steps).toFixed(2).padStart(8)} ms ${((100 * v.ms) / total).toFixed(1).padStart(5)}%  ${(v.calls / steps).toFixed(0).padStart(4)} calls`,
    );
  console.log(
    `  ${'(outside kernels)'.padEnd(24)} ${((total - inKernels) / steps).toFixed(2).padStart(8)} ms ${((100 * (total - inKernels)) / total).toFixed(1).padStart(5)}%`,
  );
}
