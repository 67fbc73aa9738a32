/**
 * The convolution kernels alone on one model's layers (bench/conv-layers.ts), all three passes:
 * GFLOP/s per wall second (median of 5) and per CPU second of this process (robust to other
 * processes taking the cores on a shared machine).
 *
 *   node --import tsx bench/profile-conv.ts [resnet20] [32,32,3] [batch]
 */
import { initBackend } from '../src/backend/backend.ts';
import { recordConvLayers, timeConvPass } from './conv-layers.ts';

await initBackend('wasm');
const model = process.argv[2] ?? 'resnet20';
const shape = (process.argv[3] ?? '32,32,3').split(',').map(Number) as [number, number, number];
const layers = recordConvLayers(model, shape, Number(process.argv[4] ?? '128'));
const med = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]!;
const out = (['forward', 'input', 'filter'] as const).map((p) => {
  const wall = med(timeConvPass(layers, p, 5));
  const cpu = med(timeConvPass(layers, p, 5, 'cpu'));
  return `${p} ${wall.toFixed(1)} (cpu ${cpu.toFixed(1)})`;
});
console.log(`${model} ${shape.join('x')}: ${out.join(', ')} GFLOP/s`);
