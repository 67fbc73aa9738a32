/**
 * The forward convolution of each layer of one model alone (native kernels where they run): CPU
 * ms per call (median of 7, robust to other processes on a shared machine) and GFLOP/s, to see
 * which layer shapes the kernels serve badly.
 *
 *   node --import tsx bench/profile-layers.ts [resnet8] [28,28,1] [batch 256]
 */
import { Conv2D, engine, type Tensor, tensor } from '@tensorflow/tfjs-core';
import { initBackend } from '../src/backend/backend.ts';
import { recordConvLayers } from './conv-layers.ts';

await initBackend('wasm');
const model = process.argv[2] ?? 'resnet8';
const shape = (process.argv[3] ?? '28,28,1').split(',').map(Number) as [number, number, number];
const B = Number(process.argv[4] ?? '256');
const layers = recordConvLayers(model, shape, B);
const cpu = () => {
  const c = process.cpuUsage();
  return (c.user + c.system) / 1000;
};
let tot = 0;
for (const l of layers) {
  const x = tensor(new Float32Array(l.x.reduce((p, d) => p * d, 1)).fill(0.5), l.x);
  const f = tensor(new Float32Array(l.filter.reduce((p, d) => p * d, 1)).fill(0.1), l.filter);
  const flop = 2 * l.y.reduce((p, d) => p * d, 1) * l.filter[0]! * l.filter[1]! * l.filter[2]!;
  const run = () => (engine().runKernel(Conv2D, { x, filter: f }, l.attrs as never) as Tensor).dispose();
  run();
  const ts: number[] = [];
  for (let r = 0; r < 7; r++) {
    const t = cpu();
    for (let i = 0; i < 3; i++) run();
    ts.push((cpu() - t) / 3);
  }
  ts.sort((a, b) => a - b);
  const ms = ts[3]!;
  tot += ms;
  console.log(
    `${l.x.join('x')} * ${l.filter.join('x')} s${JSON.stringify(l.attrs.strides)}: ${ms.toFixed(2)} ms cpu, ${(flop / ms / 1e6).toFixed(0)} GFLOP/s`,
  );
}
console.log(`total ${tot.toFixed(1)} ms`);
