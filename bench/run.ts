/**
 * `npm run bench`: speed and memory of stage 1 (training steps, feature extraction) and stage 2
 * (cRT, LWS, tau-norm, NCM on large synthetic features), with PyTorch on the same machine in
 * the same run as the yardstick when it is installed. Each case runs in its own process (so its
 * peak RSS is its own); each figure is the median of several timed repeats after a warm-up.
 *
 *   npm run bench [-- --quick] [-- --json] [-- --case PREFIX] [-- --no-torch] [-- --out FILE]
 *
 * The results document goes to FILE (default bench/results/latest.json in the repository; a
 * relative FILE is taken from the current directory).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { backendInfo, initBackend } from '../src/backend/backend.ts';
import { createClassifier, type MethodName } from '../src/classifiers/registry.ts';
import { writeJsonAtomic } from '../src/io/atomic.ts';
import { createModel } from '../src/models/model.ts';
import { createRng } from '../src/random/rng.ts';
import { formatTable } from '../src/report/table.ts';
import { Sgd } from '../src/train/optimizer.ts';
import { DataParallel } from '../src/train/parallel/data-parallel.ts';
import { type ConvPass, recordConvLayers, timeConvPass } from './conv-layers.ts';
import { syntheticFeatures } from './synthetic.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const TORCH = join(ROOT, 'bench', 'torch_bench.py');
const PYTHON = '/usr/bin/python3';
const DEFAULT_OUT = join(ROOT, 'bench', 'results', 'latest.json');

interface CaseSpec {
  name: string;
  unit: 'images/s' | 's' | 'GFLOP/s';
  threads: number;
  kind: 'train' | 'extract' | 'stage2' | 'conv';
  pass?: ConvPass;
  model?: string;
  shape?: [number, number, number];
  method?: MethodName;
}

const shapes: [string, [number, number, number]][] = [
  ['1x28x28', [28, 28, 1]],
  ['3x32x32', [32, 32, 3]],
];

export function cases(): CaseSpec[] {
  const out: CaseSpec[] = [];
  const cores = Math.max(1, os.availableParallelism());
  for (const model of ['resnet8', 'resnet20']) {
    for (const [label, shape] of shapes) {
      const threadSet = model === 'resnet8' && label === '1x28x28' ? [1, cores] : [cores];
      for (const t of [...new Set(threadSet)]) {
        out.push({
          name: `train ${model} ${label} b128`,
          unit: 'images/s',
          threads: t,
          kind: 'train',
          model,
          shape,
        });
      }
    }
  }
  for (const model of ['resnet8', 'resnet20']) {
    for (const [label, shape] of shapes)
      out.push({
        name: `extract ${model} ${label} b256`,
        unit: 'images/s',
        threads: 1,
        kind: 'extract',
        model,
        shape,
      });
  }
  for (const pass of ['forward', 'input', 'filter'] as ConvPass[]) {
    // The kernels alone: all convolutions of ResNet-8 on 1x28x28, batch 128 (first-layer
    // input gradient included although training never needs it).
    out.push({
      name: `conv ${pass} resnet8 1x28x28 b128`,
      unit: 'GFLOP/s',
      threads: 1,
      kind: 'conv',
      model: 'resnet8',
      shape: [28, 28, 1],
      pass,
    });
  }
  for (const method of ['crt', 'lws', 'tau-norm', 'ncm'] as MethodName[]) {
    // cRT and LWS split their classes over the threads; tau-norm and NCM are one pass on one thread.
    const threads = method === 'crt' || method === 'lws' ? cores : 1;
    out.push({ name: `stage2 ${method} 100000x512 C1000`, unit: 's', threads, kind: 'stage2', method });
  }
  return out;
}

/** Runs one case in this process; returns the timed repeats. */
async function runCase(spec: CaseSpec, quick: boolean): Promise<number[]> {
  await initBackend('wasm');
  const repeats = quick ? 2 : 5;
  if (spec.kind === 'conv') {
    const layers = recordConvLayers(spec.model!, spec.shape!, quick ? 16 : 128);
    return timeConvPass(layers, spec.pass!, repeats);
  }
  if (spec.kind === 'train' || spec.kind === 'extract') {
    const [H, W, Ch] = spec.shape!;
    const B = spec.kind === 'train' ? 128 : 256;
    const model = createModel(spec.model!, spec.shape!, 10, 0);
    const rng = createRng(0);
    const x = Float32Array.from({ length: B * H * W * Ch }, () => rng.next());
    const y = Int32Array.from({ length: B }, (_, i) => i % 10);
    const steps = quick ? 2 : 5;
    if (spec.kind === 'train') {
      const opt = new Sgd({ momentum: 0.9, weightDecay: 5e-4 });
      const dp = await DataParallel.create(model, opt, spec.threads, {
        seed: 0,
        momentum: 0.9,
        weightDecay: 5e-4,
      });
      for (let i = 0; i < 2; i++) await dp.step(x, y, 0.01);
      const runs: number[] = [];
      for (let r = 0; r < repeats; r++) {
        const t = performance.now();
        for (let s = 0; s < steps; s++) await dp.step(x, y, 0.01);
        runs.push((steps * B) / ((performance.now() - t) / 1000));
      }
      await dp.dispose();
      return runs;
    }
    const once = () => {
      const f = tf.tidy(() => model.backbone.features(tf.tensor4d(x, [B, H, W, Ch]), false));
      f.dataSync();
      f.dispose();
    };
    for (let i = 0; i < 2; i++) once();
    const runs: number[] = [];
    for (let r = 0; r < repeats; r++) {
      const t = performance.now();
      for (let s = 0; s < steps; s++) once();
      runs.push((steps * B) / ((performance.now() - t) / 1000));
    }
    return runs;
  }
  const fs = syntheticFeatures(quick);
  const runs: number[] = [];
  const n = quick ? 1 : 3;
  for (let r = 0; r < n; r++) {
    const t = performance.now();
    const clf = createClassifier(spec.method!, { features: fs, seed: 0, threads: spec.threads });
    if (spec.method === 'ncm') clf.logits(fs.test.features, fs.test.labels.length);
    runs.push((performance.now() - t) / 1000);
  }
  return runs;
}

interface CaseResult {
  case: string;
  threads: number;
  unit: string;
  median: number;
  min: number;
  max: number;
  peakRssMiB: number;
  /** Kernels on the wasm backend: `native` (the AVX2 addon) or `wasm`. */
  kernels: string;
  runs: number[];
  torch?: { median: number; min: number; max: number; impl: string } | null;
  ratio?: number | null;
}

const median = (v: number[]) => {
  const s = [...v].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

function torchFor(spec: CaseSpec, quick: boolean): CaseResult['torch'] {
  if (spec.kind === 'stage2' || spec.kind === 'conv' || !existsSync(PYTHON)) return null;
  const [H, W, C] = spec.shape!;
  const r = spawnSync(
    PYTHON,
    [
      TORCH,
      '--model',
      spec.model!,
      '--shape',
      `${C},${H},${W}`,
      '--threads',
      String(spec.threads),
      '--repeats',
      quick ? '2' : '5',
      '--batch',
      spec.kind === 'train' ? '128' : '256',
    ],
    { encoding: 'utf8', timeout: 600_000 },
  );
  if (r.status !== 0) return null; // no PyTorch here: the ratio is omitted
  const j = JSON.parse(r.stdout.trim().split('\n').pop()!);
  const part = spec.kind === 'train' ? j.train : j.infer;
  return { median: part.median, min: part.min, max: part.max, impl: j.impl };
}

async function main(argv: string[]) {
  const quick = argv.includes('--quick');
  const json = argv.includes('--json');
  const childIdx = argv.indexOf('--child');
  const all = cases();
  if (childIdx >= 0) {
    const spec = all[Number(argv[childIdx + 1])]!;
    const runs = await runCase(spec, quick);
    const kernels = backendInfo().trainingKernels ?? backendInfo().name;
    process.stdout.write(
      `${JSON.stringify({ runs, kernels, peakRssMiB: process.resourceUsage().maxRSS / 1024 })}\n`,
    );
    process.exit(0);
  }
  const filterIdx = argv.indexOf('--case');
  const filter = filterIdx >= 0 ? argv[filterIdx + 1]! : null;
  const noTorch = argv.includes('--no-torch');
  const outIdx = argv.indexOf('--out');
  if (outIdx >= 0 && (argv[outIdx + 1] === undefined || argv[outIdx + 1]!.startsWith('--'))) {
    process.stderr.write('bench: --out expects a file path, e.g. --out /tmp/bench.json\n');
    process.exit(2);
  }
  const outFile = outIdx >= 0 ? resolve(argv[outIdx + 1]!) : DEFAULT_OUT;
  const selected = all
    .map((c, i) => [c, i] as const)
    .filter(([c]) => filter === null || c.name.startsWith(filter));
  const results: CaseResult[] = [];
  for (const [spec, i] of selected) {
    if (!json) process.stderr.write(`bench: ${spec.name} (threads ${spec.threads})...\n`);
    const r = spawnSync(
      process.execPath,
      [join(ROOT, 'bin', 'bench.js'), '--child', String(i), ...(quick ? ['--quick'] : [])],
      {
        encoding: 'utf8',
        timeout: 1_800_000,
      },
    );
    if (r.status !== 0) throw new Error(`bench case '${spec.name}' failed:\n${r.stderr}`);
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as {
      runs: number[];
      kernels: string;
      peakRssMiB: number;
    };
    const torch = noTorch ? null : torchFor(spec, quick);
    const res: CaseResult = {
      case:
        quick && spec.kind === 'stage2'
          ? spec.name.replace('100000x512 C1000', 'quick 4.3k x512 C100')
          : spec.name,
      threads: spec.threads,
      unit: spec.unit,
      median: median(out.runs),
      min: Math.min(...out.runs),
      max: Math.max(...out.runs),
      peakRssMiB: Math.round(out.peakRssMiB),
      kernels: out.kernels,
      runs: out.runs,
      torch,
      ratio: torch ? median(out.runs) / torch.median : null,
    };
    results.push(res);
  }
  const doc = {
    createdAt: new Date().toISOString(),
    quick,
    machine: {
      cpus: os.cpus().length,
      cpuModel: os.cpus()[0]?.model?.trim(),
      node: process.versions.node,
      tfjs: tf.version_core,
    },
    cases: results,
  };
  mkdirSync(dirname(outFile), { recursive: true });
  writeJsonAtomic(outFile, doc);
  if (json) process.stdout.write(`${JSON.stringify(doc, null, 2)}\n`);
  else {
    const f = (v: number) => (v >= 100 ? v.toFixed(0) : v.toFixed(2));
    console.log(
      formatTable(
        ['case', 'threads', 'unit', 'median', 'min', 'max', 'peak RSS MiB', 'PyTorch', 'longtail / PyTorch'],
        results.map((r) => [
          r.case,
          r.threads,
          r.unit,
          f(r.median),
          f(r.min),
          f(r.max),
          r.peakRssMiB,
          r.torch ? f(r.torch.median) : '-',
          r.ratio ? r.ratio.toFixed(2) : '-',
        ]),
      ),
    );
    const kernels = [...new Set(results.map((r) => r.kernels))].join(', ');
    console.log(`\ntraining kernels: ${kernels} (LONGTAIL_NATIVE=0 runs the wasm ones)`);
    const shown = relative(process.cwd(), outFile);
    console.log(`written to ${shown.startsWith('..') ? outFile : shown}`);
  }
}

await main(process.argv.slice(2));
