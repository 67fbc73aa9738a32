/**
 * The convolution kernels alone on one model's layers (bench/conv-layers.ts), all three passes:
 * GFLOP/s per wall second (median of 5) and per CPU second of this process (robust to other
 * processes taking the cores on a shared machine). With `--per-layer`, also each distinct layer
 * shape on its own (CPU-time GFLOP/s, median of 5, and its share of the pass's FLOPs).
 *
 *   node --import tsx bench/profile-conv.ts [resnet20] [32,32,3] [batch] [--per-layer]
 */
import { initBackend } from '../src/backend/backend.ts';
import { recordConvLayers, timeConvPass } from './conv-layers.ts';

await initBackend('wasm');
const args = process.argv.slice(2).filter((a) => a !== '--per-layer');
const perLayer = process.argv.includes('--per-layer');
const model = args[0] ?? 'resnet20';
const shape = (args[1] ?? '32,32,3').split(',').map(Number) as [number, number, number];
const layers = recordConvLayers(model, shape, Number(args[2] ?? '128'));
const med = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]!;
const passes = ['forward', 'input', 'filter'] as const;
const out = passes.map((p) => {
  const wall = med(timeConvPass(layers, p, 5));
  const cpu = med(timeConvPass(layers, p, 5, 'cpu'));
  return `${p} ${wall.toFixed(1)} (cpu ${cpu.toFixed(1)})`;
});
console.log(`${model} ${shape.join('x')}: ${out.join(', ')} GFLOP/s`);
if (perLayer) {
  // One row per distinct geometry (a ResNet repeats its block shapes), with how often it occurs.
  const flopOf = (l: (typeof layers)[number]) =>
    2 * l.y.reduce((p, d) => p * d, 1) * l.filter[0]! * l.filter[1]! * l.filter[2]!;
  const total = layers.reduce((s, l) => s + flopOf(l), 0);
  const groups = new Map<string, typeof layers>();
  for (const l of layers) {
    const key = JSON.stringify([l.x, l.filter, l.attrs.strides, l.attrs.pad]);
    groups.set(key, [...(groups.get(key) ?? []), l]);
  }
  console.log(
    'layer (x -> filter, stride) | count | share of FLOPs | forward | input | filter (CPU GFLOP/s)',
  );
  for (const group of groups.values()) {
    const l = group[0]!;
    const rates = passes.map((p) => med(timeConvPass([l], p, 5, 'cpu')).toFixed(1));
    const share = ((100 * flopOf(l) * group.length) / total).toFixed(1);
    const strides = l.attrs.strides as number | number[];
    const stride = Array.isArray(strides) ? strides[0] : strides;
    console.log(
      `${l.x.join('x')} -> ${l.filter.join('x')} s${stride} | ${group.length} | ${share} % | ${rates.join(' | ')}`,
    );
  }
}
