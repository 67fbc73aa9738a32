/**
 * bf16 against fp32 training steps on one thread, by CPU time: one model per precision (same
 * initial weights, same batch), stepped in turn with the order swapped every repeat, each repeat
 * timed as this process's CPU seconds (user + system) so time the scheduler gives other processes
 * does not count. Prints each precision's CPU ms per step (median) and the bf16/fp32 speed ratio
 * per repeat (median, min-max), with the load average before and after.
 *
 *   node --import tsx bench/bf16-train.ts [--model resnet20] [--shape 32,32,3] [--repeats 7] [--steps 3]
 *
 * `npm run bench -- --case "bf16 train"` measures the same ratio by wall clock through the
 * data-parallel trainer (threads > 1 too); this one is for a loaded machine.
 */
import os from 'node:os';
import { initBackend } from '../src/backend/backend.ts';
import { enterBf16Training } from '../src/backend/training-kernels.ts';
import { createModel } from '../src/models/model.ts';
import { Sgd } from '../src/optim/sgd.ts';
import { createRng } from '../src/random/rng.ts';
import { applyGrads, computeGrads } from '../src/train/step.ts';
import { LOADED_ABOVE, median } from './torch-env.ts';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : fallback;
}

const modelName = arg('model', 'resnet20');
const shape = arg('shape', '32,32,3').split(',').map(Number) as [number, number, number];
const repeats = Number(arg('repeats', '7'));
const steps = Number(arg('steps', '3'));
const B = 128;

await initBackend('wasm');
const rng = createRng(0);
const x = Float32Array.from({ length: B * shape[0] * shape[1] * shape[2] }, () => rng.next());
const y = Int32Array.from({ length: B }, (_, i) => i % 10);

function trainer(bf16: boolean) {
  const model = createModel(modelName, shape, 10, 0);
  const opt = new Sgd({ momentum: 0.9, weightDecay: 5e-4 });
  /** CPU ms per step over `n` steps. */
  return (n: number) => {
    const leave = bf16 ? enterBf16Training() : null;
    try {
      const c = process.cpuUsage();
      for (let s = 0; s < n; s++) {
        const { grads } = computeGrads(model, x, y);
        applyGrads(model, opt, grads, 0.01);
      }
      const d = process.cpuUsage(c);
      return (d.user + d.system) / 1000 / n;
    } finally {
      leave?.();
    }
  };
}

const fp32 = trainer(false);
const bf16 = trainer(true);
fp32(2);
bf16(2);
const load0 = os.loadavg()[0]!;
const c32: number[] = [];
const c16: number[] = [];
for (let r = 0; r < repeats; r++) {
  if (r % 2 === 0) {
    c32.push(fp32(steps));
    c16.push(bf16(steps));
  } else {
    c16.push(bf16(steps));
    c32.push(fp32(steps));
  }
}
const load1 = os.loadavg()[0]!;
const ratios = c32.map((v, i) => v / c16[i]!);
console.log(
  `${modelName} ${shape.join('x')} b${B}, 1 thread: CPU ms per step fp32 ${median(c32).toFixed(0)}, bf16 ${median(c16).toFixed(0)}; ` +
    `bf16 speed / fp32 ${median(ratios).toFixed(2)} (${Math.min(...ratios).toFixed(2)}-${Math.max(...ratios).toFixed(2)}), ` +
    `${repeats} alternating repeats of ${steps} steps`,
);
const loaded = Math.max(load0, load1) > LOADED_ABOVE;
console.log(`load average ${load0.toFixed(2)} -> ${load1.toFixed(2)}${loaded ? ' LOADED' : ''}`);
