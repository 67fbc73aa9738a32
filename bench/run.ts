/**
 * `npm run bench`: speed and memory of stage 1 (training steps, feature extraction) and stage 2
 * (cRT, LWS, tau-norm, NCM on large synthetic features), with PyTorch on the same machine in
 * the same run as the yardstick when it is installed; and the package as a user gets it (case
 * `package`: packed, installed offline into a new project with production dependencies, its
 * install size, tarball size and `longtail --version` start time and memory). Each case runs in its own process (so its
 * peak RSS is its own); each figure is the median of several timed repeats after a warm-up.
 *
 *   npm run bench [-- --quick] [-- --json] [-- --case PREFIX[,PREFIX...]] [-- --no-torch] [-- --out FILE] [-- --inat] [-- --full-epochs]
 *
 * Stage 2 at the paper's scale: the `stage2 ... imagenet-lt` cases (113,158 x 2048 training
 * features, 1000 classes, 20 val and 50 test images per class: ImageNet-LT's sizes) and, with
 * --inat, `stage2 ... inat` (441,588 x 2048, 8,142 classes, 3 val and 3 test per class:
 * iNaturalist 2018's) first write synthetic features to a temporary .npz with np.savez (as a
 * user's export; needs /usr/bin/python3 with NumPy, else they are skipped), then each case reads
 * the file (timed: `readSeconds`) and builds its method once; cRT and LWS train 1 epoch, with
 * `projected` the figure at the official schedule (cRT 10 epochs at ImageNet-LT size and 30 at
 * iNaturalist's, LWS 5: one epoch costs the same whatever the LR), or the whole schedule with
 * --full-epochs (long: hours at iNaturalist size). Not in --quick.
 *
 * `ratio` is longtail's speed over PyTorch's, so above 1 is faster: images/s over images/s, and
 * for cases in seconds PyTorch's seconds over longtail's. PyTorch runs the same stage-2 settings
 * on the same features (bench/torch_bench.py --stage2; its `impl` names the BLAS it loaded:
 * Debian's python3-torch uses the reference BLAS unless OpenBLAS is installed or first on
 * LD_LIBRARY_PATH, and stage 2 is mostly matrix products).
 *
 * The results document goes to FILE (default bench/results/latest.json in the repository; a
 * relative FILE is taken from the current directory).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { backendInfo, initBackend } from '../src/backend/backend.ts';
import { createClassifier, type MethodName } from '../src/classifiers/registry.ts';
import { loadFeatureFile } from '../src/features/feature-set.ts';
import { writeJsonAtomic } from '../src/io/atomic.ts';
import { writeNpz } from '../src/io/npy.ts';
import { createModel } from '../src/models/model.ts';
import { Sgd } from '../src/optim/sgd.ts';
import { createRng } from '../src/random/rng.ts';
import { formatTable } from '../src/report/table.ts';
import { DataParallel } from '../src/train/parallel/data-parallel.ts';
import { diskUsage, installTarball, packPackage } from '../test/helpers/package.ts';
import { type ConvPass, recordConvLayers, timeConvPass } from './conv-layers.ts';
import { syntheticFeatures } from './synthetic.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const TORCH = join(ROOT, 'bench', 'torch_bench.py');
const PYTHON = '/usr/bin/python3';
const DEFAULT_OUT = join(ROOT, 'bench', 'results', 'latest.json');

/** Feature files at the paper's scales (bench/torch_bench.py --write-features). */
const FILES = {
  'imagenet-lt': { rows: 113158, classes: 1000, dim: 2048, val: 20, test: 50, official: { crt: 10, lws: 5 } },
  // 30 epochs: iNaturalist's official cRT schedule.
  inat: { rows: 441588, classes: 8142, dim: 2048, val: 3, test: 3, official: { crt: 30, lws: 5 } },
} as const;
type FileName = keyof typeof FILES;
/** Epochs the file cases train: 1 (projected to the official schedule), or the official ones with --full-epochs. */
const fileEpochs = (file: FileName, full: boolean) => (full ? FILES[file].official : { crt: 1, lws: 1 });

interface CaseSpec {
  name: string;
  unit: 'images/s' | 's' | 'GFLOP/s';
  threads: number;
  kind: 'train' | 'extract' | 'stage2' | 'stage2-file' | 'conv' | 'package';
  file?: FileName;
  pass?: ConvPass;
  model?: string;
  shape?: [number, number, number];
  method?: MethodName;
}

const shapes: [string, [number, number, number]][] = [
  ['1x28x28', [28, 28, 1]],
  ['3x32x32', [32, 32, 3]],
];

export function cases(opts: { inat?: boolean; quick?: boolean; fullEpochs?: boolean } = {}): CaseSpec[] {
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
  if (!opts.quick) {
    for (const file of ['imagenet-lt', ...(opts.inat ? ['inat'] : [])] as FileName[]) {
      const f = FILES[file];
      for (const method of ['crt', 'lws', 'tau-norm', 'ncm'] as MethodName[]) {
        const trains = method === 'crt' || method === 'lws';
        const epochs = trains
          ? ` ${fileEpochs(file, opts.fullEpochs ?? false)[method as 'crt' | 'lws']} ep`
          : '';
        out.push({
          name: `stage2 ${method} ${file} ${f.rows}x${f.dim} C${f.classes}${epochs}`,
          unit: 's',
          threads: trains ? cores : 1,
          kind: 'stage2-file',
          method,
          file,
        });
      }
    }
  }
  // The installed package: the figure is `longtail --version`'s wall time; install and tarball
  // sizes and the command's peak RSS go in `package`.
  out.push({ name: 'package longtail --version', unit: 's', threads: 1, kind: 'package' });
  return out;
}

interface PackageFigures {
  /** `npm ci` of the tarball into an empty project, production dependencies: node_modules on disk. */
  installMiB: number;
  tarballMiB: number;
  /** Peak RSS of `longtail --version` (median over the runs). */
  versionRssMiB: number;
  /** Whether `--version` loaded TensorFlow.js (it must not). */
  versionLoadsTfjs: boolean;
}

/** Packs, installs offline into a temporary project, times `longtail --version`. */
function packageCase(quick: boolean): { runs: number[]; pkg: PackageFigures } {
  const dir = mkdtempSync(join(os.tmpdir(), 'longtail-bench-package-'));
  try {
    const tgz = packPackage(dir);
    const project = join(dir, 'project');
    installTarball(tgz, project);
    const bin = join(project, 'node_modules', 'longtail', 'bin', 'longtail.js');
    // Reports the process's peak RSS and whether tfjs-core was loaded, on exit.
    const probe =
      'data:text/javascript,' +
      encodeURIComponent(
        "process.on('exit', () => process.stderr.write('\\nPROBE ' + JSON.stringify({ rss: process.resourceUsage().maxRSS, tf: globalThis._tfengine !== undefined }) + '\\n'));",
      );
    const runs: number[] = [];
    const rss: number[] = [];
    let loadsTfjs = false;
    for (let i = 0; i < (quick ? 3 : 9); i++) {
      const t = performance.now();
      const r = spawnSync(process.execPath, [bin, '--version'], { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`longtail --version failed: ${r.stderr}`);
      if (i > 0) runs.push((performance.now() - t) / 1000); // the first run warms the file cache
    }
    for (let i = 0; i < 3; i++) {
      const r = spawnSync(process.execPath, ['--import', probe, bin, '--version'], { encoding: 'utf8' });
      const p = JSON.parse(r.stderr.split('PROBE ').pop()!) as { rss: number; tf: boolean };
      rss.push(p.rss / 1024);
      loadsTfjs ||= p.tf;
    }
    return {
      runs,
      pkg: {
        installMiB: diskUsage(join(project, 'node_modules')) / 2 ** 20,
        tarballMiB: statSync(tgz).size / 2 ** 20,
        versionRssMiB: median(rss),
        versionLoadsTfjs: loadsTfjs,
      },
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Runs one case in this process; returns the timed repeats (and a file case's reading time). */
async function runCase(
  spec: CaseSpec,
  quick: boolean,
  file: string | null,
  fullEpochs: boolean,
): Promise<{ runs: number[]; readSeconds?: number }> {
  if (spec.kind === 'stage2-file') {
    await initBackend('wasm');
    const t0 = performance.now();
    const fs = loadFeatureFile(file!);
    const readSeconds = (performance.now() - t0) / 1000;
    const e = fileEpochs(spec.file!, fullEpochs);
    const t = performance.now();
    const clf = createClassifier(
      spec.method!,
      { features: fs, seed: 0, threads: spec.threads },
      { crtEpochs: e.crt, lwsEpochs: e.lws },
    );
    if (spec.method === 'ncm') clf.logits(fs.test.features, fs.test.labels.length);
    return { runs: [(performance.now() - t) / 1000], readSeconds };
  }
  return { runs: await runTimed(spec, quick) };
}

async function runTimed(spec: CaseSpec, quick: boolean): Promise<number[]> {
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
  torch?: {
    median: number;
    min: number;
    max: number;
    impl: string;
    /** Stage-2 file cases: np.load of the file, and the PyTorch process's peak RSS. */
    readSeconds?: number;
    peakRssMiB?: number;
  } | null;
  /** longtail's speed over PyTorch's (above 1: faster); see the header. */
  ratio?: number | null;
  /** Stage-2 file cases: reading the feature file (loadFeatureFile). */
  readSeconds?: number;
  /** 1-epoch file cases: the median times the official epochs (FILES), s. */
  projected?: { epochs: number; seconds: number; torchSeconds: number | null };
  /** The `package` case: install and tarball sizes, `--version`'s memory. */
  package?: PackageFigures;
}

const median = (v: number[]) => {
  const s = [...v].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

/** One bench/torch_bench.py --stage2 run per (file, threads, methods); cached for the run. */
const torchStage2Runs = new Map<string, Record<string, unknown> | null>();

function torchStage2(
  file: string,
  spec: CaseSpec,
  quick: boolean,
  epochs: { crt: number; lws: number },
): CaseResult['torch'] {
  const methods =
    spec.threads > 1 || spec.method === 'crt' || spec.method === 'lws' ? 'crt,lws' : 'tau-norm,ncm';
  const key = `${file} ${spec.threads} ${methods}`;
  if (!torchStage2Runs.has(key)) {
    const r = spawnSync(
      PYTHON,
      [
        TORCH,
        '--stage2',
        file,
        '--methods',
        methods,
        '--threads',
        String(spec.threads),
        '--repeats',
        spec.kind === 'stage2-file' || quick ? '1' : '3',
        '--crt-epochs',
        String(epochs.crt),
        '--lws-epochs',
        String(epochs.lws),
      ],
      {
        encoding: 'utf8',
        timeout: 4 * 3600_000,
        // Waiting OpenMP threads sleep instead of spinning: on a loaded machine spinning threads
        // made a 2-thread cRT 50-100x slower than 1 thread (measured); set it to override.
        env: { ...process.env, OMP_WAIT_POLICY: process.env.OMP_WAIT_POLICY ?? 'PASSIVE' },
      },
    );
    torchStage2Runs.set(key, r.status === 0 ? JSON.parse(r.stdout.trim().split('\n').pop()!) : null);
  }
  const j = torchStage2Runs.get(key) as {
    impl: string;
    read: number;
    peakRssMiB: number;
    methods: Record<string, { median: number; min: number; max: number }>;
  } | null;
  const m = j?.methods[spec.method!];
  if (!j || !m) return null;
  return {
    median: m.median,
    min: m.min,
    max: m.max,
    impl: j.impl,
    ...(spec.kind === 'stage2-file' ? { readSeconds: j.read, peakRssMiB: Math.round(j.peakRssMiB) } : {}),
  };
}

function torchFor(
  spec: CaseSpec,
  quick: boolean,
  files: Partial<Record<string, string>>,
  fullEpochs: boolean,
): CaseResult['torch'] {
  if (!existsSync(PYTHON)) return null;
  if (spec.kind === 'stage2') {
    const file = files.synthetic;
    // The synthetic cases' settings: crt / lws at their defaults (createClassifier in runTimed).
    return file ? torchStage2(file, spec, quick, { crt: 10, lws: 5 }) : null;
  }
  if (spec.kind === 'stage2-file') {
    const file = files[spec.file!];
    return file ? torchStage2(file, spec, quick, fileEpochs(spec.file!, fullEpochs)) : null;
  }
  if (spec.kind !== 'train' && spec.kind !== 'extract') return null;
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
  const inat = argv.includes('--inat');
  const fullEpochs = argv.includes('--full-epochs');
  const all = cases({ inat, quick, fullEpochs });
  const fileIdx = argv.indexOf('--file');
  if (childIdx >= 0) {
    const spec = all[Number(argv[childIdx + 1])]!;
    if (spec.kind === 'package') {
      const { runs, pkg } = packageCase(quick);
      const peakRssMiB = process.resourceUsage().maxRSS / 1024;
      process.stdout.write(`${JSON.stringify({ runs, kernels: '-', peakRssMiB, pkg })}\n`);
      process.exit(0);
    }
    const { runs, readSeconds } = await runCase(
      spec,
      quick,
      fileIdx >= 0 ? argv[fileIdx + 1]! : null,
      fullEpochs,
    );
    const kernels = backendInfo().trainingKernels ?? backendInfo().name;
    process.stdout.write(
      `${JSON.stringify({ runs, readSeconds, kernels, peakRssMiB: process.resourceUsage().maxRSS / 1024 })}\n`,
    );
    process.exit(0);
  }
  const filterIdx = argv.indexOf('--case');
  // One prefix, or several separated by commas (case names have none).
  const filter = filterIdx >= 0 ? argv[filterIdx + 1]!.split(',') : null;
  const noTorch = argv.includes('--no-torch');
  const outIdx = argv.indexOf('--out');
  if (outIdx >= 0 && (argv[outIdx + 1] === undefined || argv[outIdx + 1]!.startsWith('--'))) {
    process.stderr.write('bench: --out expects a file path, e.g. --out /tmp/bench.json\n');
    process.exit(2);
  }
  const outFile = outIdx >= 0 ? resolve(argv[outIdx + 1]!) : DEFAULT_OUT;
  const selected = all
    .map((c, i) => [c, i] as const)
    .filter(([c]) => filter === null || filter.some((f) => c.name.startsWith(f)));
  const results: CaseResult[] = [];
  // Feature files for the stage-2 cases, written once for the run into a temporary folder.
  const tmp = mkdtempSync(join(os.tmpdir(), 'longtail-bench-stage2-'));
  const files: Partial<Record<string, string>> = {};
  const fileFor = (spec: CaseSpec): string | null => {
    const key = spec.kind === 'stage2-file' ? spec.file! : 'synthetic';
    if (files[key] !== undefined) return files[key]!;
    const path = join(tmp, `${key}.npz`);
    if (spec.kind === 'stage2-file') {
      const f = FILES[spec.file!];
      if (!json)
        process.stderr.write(`bench: writing ${f.rows} x ${f.dim} features (${key}) to ${path}...\n`);
      const r = spawnSync(
        PYTHON,
        [
          TORCH,
          '--write-features',
          path,
          ...['--rows', f.rows, '--classes', f.classes, '--dim', f.dim, '--val', f.val, '--test', f.test].map(
            String,
          ),
        ],
        { encoding: 'utf8', timeout: 3600_000 },
      );
      if (r.status !== 0) {
        process.stderr.write(
          `bench: skipping the ${key} cases: writing the features needs ${PYTHON} with NumPy\n${r.stderr ?? ''}\n`,
        );
        return null;
      }
    } else {
      if (noTorch || !existsSync(PYTHON)) return null; // only PyTorch reads it
      const fs = syntheticFeatures(quick);
      writeNpz(path, {
        train_features: { data: fs.train.features, shape: [fs.train.labels.length, fs.dim] },
        train_labels: { data: fs.train.labels, shape: [fs.train.labels.length] },
        val_features: { data: fs.val!.features, shape: [fs.val!.labels.length, fs.dim] },
        val_labels: { data: fs.val!.labels, shape: [fs.val!.labels.length] },
        test_features: { data: fs.test.features, shape: [fs.test.labels.length, fs.dim] },
        test_labels: { data: fs.test.labels, shape: [fs.test.labels.length] },
        classifier_weight: { data: fs.classifier!.weight, shape: [fs.numClasses, fs.dim] },
        classifier_bias: { data: fs.classifier!.bias, shape: [fs.numClasses] },
      });
    }
    files[key] = path;
    return path;
  };
  try {
    for (const [spec, i] of selected) {
      const file = spec.kind === 'stage2' || spec.kind === 'stage2-file' ? fileFor(spec) : null;
      if (spec.kind === 'stage2-file' && file === null) continue;
      if (!json) process.stderr.write(`bench: ${spec.name} (threads ${spec.threads})...\n`);
      const r = spawnSync(
        process.execPath,
        [
          join(ROOT, 'bin', 'bench.js'),
          '--child',
          String(i),
          ...(quick ? ['--quick'] : []),
          ...(inat ? ['--inat'] : []),
          ...(fullEpochs ? ['--full-epochs'] : []),
          ...(spec.kind === 'stage2-file' ? ['--file', file!] : []),
        ],
        {
          encoding: 'utf8',
          timeout: 4 * 3600_000,
        },
      );
      if (r.status !== 0) throw new Error(`bench case '${spec.name}' failed:\n${r.stderr}`);
      const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as {
        runs: number[];
        readSeconds?: number;
        kernels: string;
        peakRssMiB: number;
        pkg?: PackageFigures;
      };
      const torch = noTorch ? null : torchFor(spec, quick, files, fullEpochs);
      const speed = (ours: number, theirs: number) => (spec.unit === 's' ? theirs / ours : ours / theirs);
      const trained = spec.method === 'crt' || spec.method === 'lws' ? (spec.method as 'crt' | 'lws') : null;
      const projectTo =
        spec.kind === 'stage2-file' && trained && !fullEpochs ? FILES[spec.file!].official[trained] : null;
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
        ratio: torch ? speed(median(out.runs), torch.median) : null,
        ...(out.readSeconds === undefined ? {} : { readSeconds: out.readSeconds }),
        ...(projectTo
          ? {
              projected: {
                epochs: projectTo,
                seconds: median(out.runs) * projectTo,
                torchSeconds: torch ? torch.median * projectTo : null,
              },
            }
          : {}),
        ...(out.pkg === undefined ? {} : { package: out.pkg }),
      };
      results.push(res);
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
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
        ['case', 'threads', 'unit', 'median', 'min', 'max', 'peak RSS MiB', 'PyTorch', 'speed vs PyTorch'],
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
    for (const r of results) {
      if (r.readSeconds === undefined) continue;
      const t = r.torch;
      console.log(
        `${r.case}: reading the file ${f(r.readSeconds)} s` +
          (t?.readSeconds !== undefined
            ? ` (PyTorch np.load ${f(t.readSeconds)} s, peak RSS ${t.peakRssMiB} MiB)`
            : '') +
          (r.projected
            ? `; ${r.projected.epochs} epochs projected: ${f(r.projected.seconds)} s` +
              (r.projected.torchSeconds === null ? '' : ` (PyTorch ${f(r.projected.torchSeconds)} s)`)
            : ''),
      );
    }
    for (const r of results)
      if (r.package !== undefined)
        console.log(
          `\npackage: install ${r.package.installMiB.toFixed(1)} MiB (production dependencies), tarball ` +
            `${r.package.tarballMiB.toFixed(1)} MiB, longtail --version ${f(r.median)} s and ` +
            `${r.package.versionRssMiB.toFixed(0)} MiB RSS (median), TensorFlow.js loaded: ${r.package.versionLoadsTfjs ? 'yes' : 'no'}`,
        );
    const kernels = [...new Set(results.map((r) => r.kernels))].join(', ');
    console.log(`\ntraining kernels: ${kernels} (LONGTAIL_NATIVE=0 runs the wasm ones)`);
    const shown = relative(process.cwd(), outFile);
    console.log(`written to ${shown.startsWith('..') ? outFile : shown}`);
  }
}

await main(process.argv.slice(2));
