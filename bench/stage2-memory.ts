/**
 * Where stage 2's memory goes: `retrain --features FILE` through the library, with the process's
 * resident memory sampled at every phase (reading, each method, writing the report).
 *
 *   node --import tsx bench/stage2-memory.ts FILE [--out DIR] [--methods all] [--epochs 1]
 *       [--json OUT.json] [--compiled]
 *
 * Per phase it prints the peak RSS inside the phase (VmHWM, reset at each phase start through
 * /proc/self/clear_refs, Linux), the RSS at its end, and the main thread's V8 heap, `external`,
 * `arrayBuffers` (SharedArrayBuffers included) and the wasm heap of the tfjs backend (its
 * Memory never shrinks once grown). Worker threads' own heaps count in RSS only. `--epochs`
 * sets every trained method's epochs (the official schedules when absent). Run with
 * `node --expose-gc` and each phase's end is measured after a full collection too (`live`: the
 * ArrayBuffers still reachable, not garbage waiting for the collector).
 *
 * `--compiled` runs the compiled package (dist/, `npm run build` first), as an installed
 * `longtail retrain` does; without it the sources run through tsx, whose loader and
 * transpiled modules cost about 60 MiB in the main thread and 40 in each worker thread
 * (docs/benchmarks.md).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import type * as Backend from '../src/backend/backend.ts';
import type * as Run from '../src/pipeline/run.ts';

const MiB = 1024 * 1024;
const argv = process.argv.slice(2);
const arg = (name: string) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : undefined;
};
const file = argv[0];
if (!file || file.startsWith('--')) {
  process.stderr.write('usage: node --import tsx bench/stage2-memory.ts FILE [--out DIR] [--epochs N]\n');
  process.exit(2);
}

const compiled = argv.includes('--compiled');
const from = (module: string) =>
  new URL(compiled ? `../dist/${module}.js` : `../src/${module}.ts`, import.meta.url).href;
const { initBackend } = (await import(from('backend/backend'))) as typeof Backend;
const { retrain } = (await import(from('pipeline/run'))) as typeof Run;

function status(): { rss: number; hwm: number } {
  const s = readFileSync('/proc/self/status', 'utf8');
  const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(s)?.[1] ?? Number.NaN);
  return { rss: (kb('VmRSS') * 1024) / MiB, hwm: (kb('VmHWM') * 1024) / MiB };
}
/** Resets VmHWM to the current RSS (Linux >= 4.0). */
function resetPeak(): void {
  try {
    writeFileSync('/proc/self/clear_refs', '5');
  } catch {
    // Not Linux: peaks are then cumulative.
  }
}
function wasmHeap(): number {
  const b = tf.backend() as unknown as { wasm?: { HEAPU8?: Uint8Array } };
  return (b.wasm?.HEAPU8?.buffer.byteLength ?? 0) / MiB;
}

interface Row {
  phase: string;
  peakRss: number;
  endRss: number;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
  wasmHeap: number;
  tfBytes: number;
  seconds: number;
  /** ArrayBuffers (MiB) after a full collection; null without --expose-gc. */
  liveArrayBuffers: number | null;
}
const rows: Row[] = [];
let phase = 'start';
let t0 = performance.now();
let overall = 0;
function close(next: string): void {
  const s = status();
  overall = Math.max(overall, s.hwm);
  const m = process.memoryUsage();
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  const live = gc ? process.memoryUsage().arrayBuffers / MiB : null;
  rows.push({
    phase,
    peakRss: s.hwm,
    endRss: s.rss,
    heapUsed: m.heapUsed / MiB,
    external: m.external / MiB,
    arrayBuffers: m.arrayBuffers / MiB,
    wasmHeap: wasmHeap(),
    tfBytes: tf.memory().numBytes / MiB,
    seconds: (performance.now() - t0) / 1000,
    liveArrayBuffers: live,
  });
  const r = rows.at(-1)!;
  process.stderr.write(
    `${r.phase.padEnd(28)} peak ${r.peakRss.toFixed(0).padStart(5)} MiB  end ${r.endRss.toFixed(0).padStart(5)}  heap ${r.heapUsed.toFixed(0).padStart(4)}  ext ${r.external.toFixed(0).padStart(5)}  ab ${r.arrayBuffers.toFixed(0).padStart(5)}  wasm ${r.wasmHeap.toFixed(0).padStart(4)}  tf ${r.tfBytes.toFixed(0).padStart(4)}${r.liveArrayBuffers === null ? '' : `  live ab ${r.liveArrayBuffers.toFixed(0).padStart(5)}`}  ${r.seconds.toFixed(1)} s\n`,
  );
  phase = next;
  t0 = performance.now();
  resetPeak();
}

await initBackend(arg('backend'));
close('load');
const epochs = arg('epochs');
const e = epochs === undefined ? {} : Number(epochs);
const cfg = {
  features: file,
  methods: arg('methods') ?? 'all',
  ...(typeof e === 'number' ? { crtEpochs: e, lwsEpochs: e, bsEpochs: e, wbEpochs: e } : {}),
};
let training = '';
await retrain(cfg as Parameters<typeof retrain>[0], {
  force: true,
  ...(arg('out') ? { out: arg('out')! } : {}),
  onPhase: (name) => {
    if (name.startsWith('stage 2')) close('next method');
    else if (name.startsWith('writing')) close('write results + report');
    else if (name.startsWith('reading')) phase = 'load';
  },
  onStage2Progress: (method, done, total) => {
    if (training !== method) {
      // Progress of a new trained method: what came before it was its set-up.
      training = method;
      phase = `${method}: set-up`;
      close(`${method}: train`);
    }
    // The end of training: what follows is the evaluation.
    if (done === total && phase === `${method}: train`) close(`${method}: evaluate`);
  },
  onMethod: (r) => {
    if (!phase.startsWith(`${r.method}:`) && !phase.startsWith(`${training}:`)) phase = r.method;
    close('next method');
  },
});
close('end');
process.stderr.write(`overall peak ${overall.toFixed(0)} MiB\n`);
const out = arg('json');
if (out) writeFileSync(out, `${JSON.stringify({ file, overallPeakMiB: overall, rows }, null, 2)}\n`);
