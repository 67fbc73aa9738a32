/**
 * bf16 against fp32: the forward convolution, input- and filter-gradient kernels alone (native/src/bf16.cc against conv.cc /
 * conv512.cc) on the CIFAR ResNets' convolution shapes (3x32x32 input, batch 128), alternating
 * the two kernels repeat by repeat so both see the same load; GFLOP/s (2 x multiply-adds over
 * this process's CPU seconds, so time the scheduler gave other processes does not count; cache
 * and memory-bandwidth interference from them still does), best and median of the repeats, and each as a share of this machine's measured
 * single-core peaks (bench/fma-peak.c: 225 GFLOP/s fp32 with 512-bit FMA, 418 with vdpbf16ps).
 * Prints the 1-minute load average before and after; above 1.5 the figures are marked loaded.
 *
 *   node --import tsx bench/bf16-conv.ts [repeats (default 15)] [batch (default 128)] [forward,input,filter]
 */
import os from 'node:os';
import { loadNativeAddon } from '../src/native-addon.ts';
import { createRng } from '../src/random/rng.ts';
import { formatTable } from '../src/report/table.ts';
import { LOADED_ABOVE, median } from './torch-env.ts';

const PEAK_FP32 = 225;
const PEAK_BF16 = 418;
const addon = loadNativeAddon();
if (addon === null || !addon.bf16()) {
  process.stderr.write(
    'bf16-conv: needs the native kernels on a CPU with AVX512_BF16 (see `longtail doctor`)\n',
  );
  process.exit(2);
}
const repeats = Number(process.argv[2] ?? '15');
const b = Number(process.argv[3] ?? '128');

// [label, H, W, ci, k, co, stride, top/left pad]: tf 'same' padding (stride 2 on an even size pads 0 on top).
const layers: [string, number, number, number, number, number, number, number][] = [
  ['stem 3->16 32x32', 32, 32, 3, 3, 16, 1, 1],
  ['16->16 32x32', 32, 32, 16, 3, 16, 1, 1],
  ['16->32 s2 32x32', 32, 32, 16, 3, 32, 2, 0],
  ['shortcut 16->32 1x1 s2', 32, 32, 16, 1, 32, 2, 0],
  ['32->32 16x16', 16, 16, 32, 3, 32, 1, 1],
  ['32->64 s2 16x16', 16, 16, 32, 3, 64, 2, 0],
  ['shortcut 32->64 1x1 s2', 16, 16, 32, 1, 64, 2, 0],
  ['64->64 8x8', 8, 8, 64, 3, 64, 1, 1],
];

const rng = createRng(0);
const load0 = os.loadavg()[0]!;
const rows: (string | number)[][] = [];
const passes = (process.argv[4] ?? 'forward,input,filter').split(',');
for (const pass of passes)
  for (const [label, H, W, ci, k, co, s, p] of layers) {
    const kind = pass === 'input' ? 1 : pass === 'filter' ? 2 : 0;
    const oh = Math.ceil(H / s);
    const ow = Math.ceil(W / s);
    const shape = Int32Array.from([b, H, W, ci, k, k, co, s, s, p, p, oh, ow]);
    const nx = b * H * W * ci;
    const nw = k * k * ci * co;
    const ny = b * oh * ow * co;
    // Forward: x, w -> y; input gradient: dy, w -> dx; filter gradient: x, dy -> dw.
    const [na, nb, nc] = kind === 0 ? [nx, nw, ny] : kind === 1 ? [ny, nw, nx] : [nx, ny, nw];
    const heap = new ArrayBuffer(4 * (na + nb + nc));
    const x = new Float32Array(heap, 0, na);
    const w = new Float32Array(heap, 4 * na, nb);
    const y = new Float32Array(heap, 4 * (na + nb), nc);
    for (let i = 0; i < na; i++) x[i] = rng.normal();
    for (let i = 0; i < nb; i++) w[i] = rng.normal();
    const flop = 2 * b * oh * ow * co * k * k * ci;
    const fp32 = () => addon.conv2d(kind, heap, 0, 4 * na, 4 * (na + nb), shape);
    const bf16 = () => addon.conv2dBf16(x, w, y, shape, kind);
    for (let i = 0; i < 2; i++) {
      fp32();
      bf16();
    }
    const g32: number[] = [];
    const g16: number[] = [];
    for (let r = 0; r < repeats; r++) {
      for (const [f, out] of [
        [fp32, g32],
        [bf16, g16],
      ] as const) {
        // CPU seconds of this process (user + system): on a shared machine, time the scheduler
        // gave to other processes does not count; several calls so a repeat spans >= 20 ms.
        const c = process.cpuUsage();
        let calls = 0;
        let used = 0;
        do {
          f();
          calls++;
          const d = process.cpuUsage(c);
          used = (d.user + d.system) / 1e6;
        } while (used < 0.02);
        out.push((calls * flop) / used / 1e9);
      }
    }
    const best32 = Math.max(...g32);
    const best16 = Math.max(...g16);
    rows.push([
      `${pass} ${label}`,
      `${best32.toFixed(0)} / ${median(g32).toFixed(0)}`,
      `${((100 * best32) / PEAK_FP32).toFixed(0)}%`,
      `${best16.toFixed(0)} / ${median(g16).toFixed(0)}`,
      `${((100 * best16) / PEAK_BF16).toFixed(0)}%`,
      (median(g16) / median(g32)).toFixed(2),
    ]);
  }
const load1 = os.loadavg()[0]!;
console.log(
  formatTable(
    [
      `pass, layer (batch ${b})`,
      'fp32 GFLOP/s best / median',
      'of 225',
      'bf16 GFLOP/s best / median',
      'of 418',
      'bf16 / fp32 (medians)',
    ],
    rows,
  ),
);
const loaded = Math.max(load0, load1) > LOADED_ABOVE;
console.log(
  `load average ${load0.toFixed(2)} -> ${load1.toFixed(2)}${loaded ? ` LOADED (above ${LOADED_ABOVE}): not quiet-machine figures` : ''}; ${repeats} alternating repeats`,
);
