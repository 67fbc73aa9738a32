/**
 * `npm run bench`: speed and memory of stage 1 (training steps, feature extraction) and stage 2
 * (cRT, LWS, tau-norm, NCM on large synthetic features), with PyTorch on the same machine in
 * the same run as the yardstick when it is installed; and the package as a user gets it (case
 * `package`: packed, installed offline into a new project with production dependencies, its
 * install size, tarball size and `longtail --version` start time and memory). Each case runs in its own process (so its
 * peak RSS is its own); each figure is the median of several timed repeats after a warm-up.
 *
 *   npm run bench [-- --quick] [-- --json] [-- --case PREFIX[,PREFIX...]] [-- --no-torch] [-- --out FILE] [-- --inat] [-- --full-epochs]
 *                 [-- --rounds N] [-- --torch-blas DIR] [-- --features-file NAME=FILE]
 *
 * The yardstick (bench/torch-env.ts, docs/benchmarks.md "How a run is made"): the PyTorch process
 * runs without OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE and with its BLAS and OpenMP thread counts at
 * the case's threads (--torch-blas DIR: an OpenBLAS libblas.so.3 first on its LD_LIBRARY_PATH);
 * training, extraction and synthetic stage-2 cases alternate a longtail and a PyTorch process for
 * N rounds (default 5, --quick 2), the ratio being the ratio of the medians with the rounds' own
 * ratios as min-max; a case run at a 1-minute load average above 1.5 is marked LOADED.
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
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { backendInfo, initBackend } from '../src/backend/backend.ts';
import { headKernels } from '../src/backend/native-head.ts';
import { enterBf16Training } from '../src/backend/training-kernels.ts';
import { createClassifier, type MethodName } from '../src/classifiers/registry.ts';
import { logitSession } from '../src/classifiers/sharded/logit-threads.ts';
import type { Stage2Classifier } from '../src/classifiers/types.ts';
import { defaultChunkRows } from '../src/eval/metrics.ts';
import { type FeatureSet, loadFeatureFile } from '../src/features/feature-set.ts';
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
import { LOADED_ABOVE, loadedLimit, median, pairedRatio, torchEnv } from './torch-env.ts';

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
/**
 * Untimed training steps before a train case's timed ones (--quick: 2): about one demo epoch (19
 * steps), after which a 2-thread step's CPU time has settled (docs/benchmarks.md, 2026-12-05).
 */
const TRAIN_WARMUP_STEPS = 20;

interface CaseSpec {
  name: string;
  unit: 'images/s' | 's' | 'GFLOP/s' | 'bf16/fp32';
  threads: number;
  kind: 'train' | 'extract' | 'stage2' | 'stage2-file' | 'conv' | 'package' | 'bf16';
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
  // --precision bf16 against fp32: training speed, alternating in one process (no PyTorch side).
  for (const [model, label, shape] of [
    ['resnet20', '3x32x32', [32, 32, 3]],
    ['resnet8', '1x28x28', [28, 28, 1]],
  ] as const)
    for (const t of [...new Set([1, Math.min(2, cores)])])
      out.push({
        name: `bf16 train ${model} ${label} b128`,
        unit: 'bf16/fp32',
        threads: t,
        kind: 'bf16',
        model,
        shape: [...shape],
      });
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
  /** Whether the installed package rendered a chart to SVG and PNG (it must: no optional peer). */
  chartsRender: boolean;
}

/** The install budget (issue 27): a plain install of the tarball, charts included. */
export const INSTALL_BUDGET_MIB = 150;

/** Renders one chart with the installed package's bundled renderer; whether SVG and PNG came out. */
function installedChartsRender(project: string, dir: string): boolean {
  const render = join(project, 'node_modules', 'longtail', 'dist', 'report', 'render.js');
  const base = join(dir, 'chart');
  const script =
    `const { writeChart } = await import(${JSON.stringify(pathToFileURL(render).href)});` +
    `await writeChart(${JSON.stringify(base)}, { data: { values: [{ a: 'x', b: 1 }] }, mark: 'bar',` +
    ` encoding: { x: { field: 'a', type: 'nominal' }, y: { field: 'b', type: 'quantitative' } } });`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    cwd: project,
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`the installed package did not render a chart: ${r.stderr}`);
  return (
    readFileSync(`${base}.svg`, 'utf8').startsWith('<svg') &&
    readFileSync(`${base}.png`).subarray(1, 4).toString('latin1') === 'PNG'
  );
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
    const installMiB = diskUsage(join(project, 'node_modules')) / 2 ** 20;
    const chartsRender = installedChartsRender(project, dir);
    if (!chartsRender) throw new Error('the installed package wrote no SVG / PNG chart');
    if (installMiB > INSTALL_BUDGET_MIB)
      throw new Error(
        `install ${installMiB.toFixed(1)} MiB is over the ${INSTALL_BUDGET_MIB} MiB budget (charts included)`,
      );
    return {
      runs,
      pkg: {
        chartsRender,
        installMiB,
        tarballMiB: statSync(tgz).size / 2 ** 20,
        versionRssMiB: median(rss),
        versionLoadsTfjs: loadsTfjs,
      },
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * NCM's timed work beyond its centroids: the test split's top-1, as a run evaluates it
 * (stage2.ts evaluateClassifier on one thread: logitSession's logits a block of
 * defaultChunkRows rows at a time, never the whole [n, C]) and as bench/torch_bench.py's ncm()
 * computes it (distances, argmax, accuracy).
 */
function ncmTestTop1(clf: Stage2Classifier, fs: FeatureSet): number {
  const { dim: d, numClasses: C } = fs;
  const n = fs.test.labels.length;
  const session = clf.linear ? logitSession(clf.linear, C, d, 1) : null;
  const step = defaultChunkRows(C, d);
  const pred = new Int32Array(step);
  let hit = 0;
  try {
    for (let s = 0; s < n; s += step) {
      const m = Math.min(step, n - s);
      const f = fs.test.features.subarray(s * d, (s + m) * d);
      const z = session ? session.logits(f, m) : clf.logits(f, m); // [m, C]
      headKernels().argmaxColumns(z, m, C, null, null, pred);
      for (let i = 0; i < m; i++) if (pred[i] === fs.test.labels[s + i]) hit++;
    }
  } finally {
    session?.close();
  }
  return hit / n;
}

/** Runs one case in this process; returns the timed repeats (and a file case's reading time). */
async function runCase(
  spec: CaseSpec,
  quick: boolean,
  file: string | null,
  fullEpochs: boolean,
  repeats?: number,
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
    if (spec.method === 'ncm') ncmTestTop1(clf, fs);
    return { runs: [(performance.now() - t) / 1000], readSeconds };
  }
  return { runs: await runTimed(spec, quick, repeats) };
}

/** A case's figures beyond its runs (the bf16 cases: each precision's images/s), for the table's notes. */
let caseDetail: string | undefined;

/**
 * bf16 against fp32 training (`--precision bf16`): two data-parallel trainers, one per precision,
 * stepped in turn (the order swapped every repeat) so both see the same load; each run is one
 * repeat's bf16 images/s over fp32's.
 */
async function bf16Ratios(spec: CaseSpec, quick: boolean, repeats: number): Promise<number[]> {
  const [H, W, Ch] = spec.shape!;
  const B = 128;
  const rng = createRng(0);
  const x = Float32Array.from({ length: B * H * W * Ch }, () => rng.next());
  const y = Int32Array.from({ length: B }, (_, i) => i % 10);
  const steps = quick ? 2 : 5;
  const trainer = async (precision: 'fp32' | 'bf16') => {
    const model = createModel(spec.model!, spec.shape!, 10, 0);
    const opt = new Sgd({ momentum: 0.9, weightDecay: 5e-4 });
    const cfg = { seed: 0, momentum: 0.9, weightDecay: 5e-4, precision };
    const dp = await DataParallel.create(model, opt, spec.threads, cfg);
    // This thread computes a shard too: its kernels switch for the bf16 trainer's steps.
    const time = async (n: number) => {
      const leave = precision === 'bf16' ? enterBf16Training() : null;
      try {
        const t = performance.now();
        for (let s = 0; s < n; s++) await dp.step(x, y, 0.01);
        return (n * B) / ((performance.now() - t) / 1000);
      } finally {
        leave?.();
      }
    };
    await time(2);
    return { dp, time };
  };
  const fp32 = await trainer('fp32');
  const bf16 = await trainer('bf16');
  const r32: number[] = [];
  const r16: number[] = [];
  for (let r = 0; r < repeats; r++) {
    if (r % 2 === 0) {
      r32.push(await fp32.time(steps));
      r16.push(await bf16.time(steps));
    } else {
      r16.push(await bf16.time(steps));
      r32.push(await fp32.time(steps));
    }
  }
  await fp32.dp.dispose();
  await bf16.dp.dispose();
  caseDetail = `fp32 ${median(r32).toFixed(0)}, bf16 ${median(r16).toFixed(0)} images/s (medians)`;
  return r16.map((v, i) => v / r32[i]!);
}

async function runTimed(spec: CaseSpec, quick: boolean, repeatsArg?: number): Promise<number[]> {
  await initBackend('wasm');
  const repeats = repeatsArg ?? (quick ? 2 : 5);
  if (spec.kind === 'bf16') return bf16Ratios(spec, quick, repeatsArg ?? (quick ? 2 : 7));
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
      const t0 = performance.now();
      const dp = await DataParallel.create(model, opt, spec.threads, {
        seed: 0,
        momentum: 0.9,
        weightDecay: 5e-4,
      });
      const t1 = performance.now();
      // A run's first steps are slow (JIT, wasm tier-up, garbage collections while the heaps
      // grow), and with 2 threads for about 20 steps, not 2-5: timed from step 2, the quiet bench
      // of 2026-12-04 measured that warm-up (1.42x) where steady steps scale 1.6-1.8x
      // (docs/benchmarks.md, 2026-12-05). A run pays it once (the demo trains 570 steps), so it
      // is reported beside the figure and not inside it.
      const warm = quick ? 2 : TRAIN_WARMUP_STEPS;
      // Every step's next batch is this one, announced as the trainer's epoch loop announces
      // its next (the workers start on their shards with the update: DataParallel.step).
      const next = { whileWaiting: () => true };
      await dp.step(x, y, 0.01, next);
      const t2 = performance.now();
      for (let i = 1; i < warm; i++) await dp.step(x, y, 0.01, next);
      const t3 = performance.now();
      caseDetail =
        `start-up (not in the figure): workers ${(t1 - t0).toFixed(0)} ms, first step ${(t2 - t1).toFixed(0)} ms, ` +
        `steps 2-${warm} ${(((warm - 1) * B) / ((t3 - t2) / 1000)).toFixed(0)} images/s`;
      const runs: number[] = [];
      for (let r = 0; r < repeats; r++) {
        const t = performance.now();
        for (let s = 0; s < steps; s++) await dp.step(x, y, 0.01, next);
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
    if (spec.method === 'ncm') ncmTestTop1(clf, fs);
    runs.push((performance.now() - t) / 1000);
  }
  return runs;
}

interface RoundFigures {
  /** Each round's figure: the median of that round's timed repeats. */
  rounds: number[];
  median: number;
  min: number;
  max: number;
}

/** What the PyTorch process ran on (bench/torch_bench.py runtime_info). */
interface TorchRuntime {
  threads: number;
  torchThreads: number;
  openblasEnv: Record<string, string | null>;
  pools: { api: string; lib: string; architecture: string | null; threads: number }[] | null;
  mkldnnConv: boolean;
  convOps: string[];
}

interface CaseResult {
  case: string;
  threads: number;
  unit: string;
  /** The bf16 cases: each precision's images/s. */
  detail?: string;
  /** Over the rounds' figures (each round: one longtail process, its repeats' median). */
  median: number;
  min: number;
  max: number;
  rounds: number[];
  peakRssMiB: number;
  /** Kernels on the wasm backend: `native` (the AVX2 addon) or `wasm`. */
  kernels: string;
  runs: number[];
  /** The 1-minute load average before and after each round; `loaded` when above the case's threads + LOADED_ABOVE. */
  load: { min: number; max: number; loaded: boolean };
  torch?:
    | (RoundFigures & {
        impl: string;
        runtime: TorchRuntime | null;
        /** Stage-2 file cases: np.load of the file, and the PyTorch process's peak RSS. */
        readSeconds?: number;
        peakRssMiB?: number;
      })
    | null;
  /** longtail's speed over PyTorch's (above 1: faster): the ratio of the medians; see the header. */
  ratio?: number | null;
  /** The lowest and highest ratio of one round's longtail figure to the same round's PyTorch one. */
  ratioRange?: { min: number; max: number } | null;
  /** Stage-2 file cases: reading the feature file (loadFeatureFile). */
  readSeconds?: number;
  /** 1-epoch file cases: the median times the official epochs (FILES), s. */
  projected?: { epochs: number; seconds: number; torchSeconds: number | null };
  /** The `package` case: install and tarball sizes, `--version`'s memory. */
  package?: PackageFigures;
}

/** One PyTorch round's figure for a case, with what it ran on. */
interface TorchRound {
  figure: number;
  impl: string;
  runtime: TorchRuntime | null;
  readSeconds?: number;
  peakRssMiB?: number;
}

/** One bench/torch_bench.py --stage2 run per (file, threads, methods, round); cached for the round. */
const torchStage2Runs = new Map<string, Record<string, unknown> | null>();

interface TorchOpts {
  quick: boolean;
  fullEpochs: boolean;
  blasDir: string | null;
  round: number;
}

function torchStage2(
  file: string,
  spec: CaseSpec,
  o: TorchOpts,
  epochs: { crt: number; lws: number },
): TorchRound | null {
  const methods =
    spec.threads > 1 || spec.method === 'crt' || spec.method === 'lws' ? 'crt,lws' : 'tau-norm,ncm';
  const key = `${file} ${spec.threads} ${methods} ${o.round}`;
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
        spec.kind === 'stage2-file' || o.quick ? '1' : '3',
        '--crt-epochs',
        String(epochs.crt),
        '--lws-epochs',
        String(epochs.lws),
      ],
      { encoding: 'utf8', timeout: 4 * 3600_000, env: torchEnv(process.env, spec.threads, o.blasDir) },
    );
    torchStage2Runs.set(key, r.status === 0 ? JSON.parse(r.stdout.trim().split('\n').pop()!) : null);
  }
  const j = torchStage2Runs.get(key) as {
    impl: string;
    read: number;
    peakRssMiB: number;
    runtime?: TorchRuntime;
    methods: Record<string, { median: number; min: number; max: number }>;
  } | null;
  const m = j?.methods[spec.method!];
  if (!j || !m) return null;
  return {
    figure: m.median,
    impl: j.impl,
    runtime: j.runtime ?? null,
    ...(spec.kind === 'stage2-file' ? { readSeconds: j.read, peakRssMiB: Math.round(j.peakRssMiB) } : {}),
  };
}

function torchRound(spec: CaseSpec, files: Partial<Record<string, string>>, o: TorchOpts): TorchRound | null {
  if (!existsSync(PYTHON)) return null;
  if (spec.kind === 'stage2') {
    const file = files.synthetic;
    // The synthetic cases' settings: crt / lws at their defaults (createClassifier in runTimed).
    return file ? torchStage2(file, spec, o, { crt: 10, lws: 5 }) : null;
  }
  if (spec.kind === 'stage2-file') {
    const file = files[spec.file!];
    return file ? torchStage2(file, spec, o, fileEpochs(spec.file!, o.fullEpochs)) : null;
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
      o.quick ? '2' : '3',
      '--batch',
      spec.kind === 'train' ? '128' : '256',
      '--part',
      spec.kind === 'train' ? 'train' : 'infer',
      // The same untimed steps as longtail's side (runTimed).
      ...(spec.kind === 'train' && !o.quick ? ['--warmup', String(TRAIN_WARMUP_STEPS)] : []),
    ],
    { encoding: 'utf8', timeout: 600_000, env: torchEnv(process.env, spec.threads, o.blasDir) },
  );
  if (r.status !== 0) return null; // no PyTorch here: the ratio is omitted
  const j = JSON.parse(r.stdout.trim().split('\n').pop()!);
  const part = spec.kind === 'train' ? j.train : j.infer;
  return { figure: part.median, impl: j.impl, runtime: j.runtime ?? null };
}

/** Which BLAS kernel and threads PyTorch ran, and whether its convolutions went through oneDNN. */
function describeRuntime(rt: TorchRuntime | null): string {
  if (rt === null) return 'runtime unknown';
  const pools =
    rt.pools === null
      ? 'thread pools unknown (no threadpoolctl: apt-get install python3-threadpoolctl)'
      : rt.pools
          .map(
            (p) =>
              `${p.api} ${p.lib}${p.architecture ? ` kernel ${p.architecture}` : ''} ${p.threads} thread(s)`,
          )
          .join(', ');
  return `${pools}; torch threads ${rt.torchThreads}; convolutions via oneDNN: ${rt.mkldnnConv ? 'yes' : 'no'}`;
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
    const repIdx = argv.indexOf('--repeats');
    const { runs, readSeconds } = await runCase(
      spec,
      quick,
      fileIdx >= 0 ? argv[fileIdx + 1]! : null,
      fullEpochs,
      repIdx >= 0 ? Number(argv[repIdx + 1]) : undefined,
    );
    const kernels = backendInfo().trainingKernels ?? backendInfo().name;
    const peakRssMiB = process.resourceUsage().maxRSS / 1024;
    process.stdout.write(
      `${JSON.stringify({ runs, readSeconds, kernels, peakRssMiB, detail: caseDetail })}\n`,
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
  const roundsIdx = argv.indexOf('--rounds');
  const rounds = roundsIdx >= 0 ? Number(argv[roundsIdx + 1]) : quick ? 2 : 5;
  if (!Number.isInteger(rounds) || rounds < 1) {
    process.stderr.write(`bench: --rounds expects a positive integer, got '${argv[roundsIdx + 1]}'\n`);
    process.exit(2);
  }
  // A feature file written before (e.g. imagenet-lt=/tmp/f.npz, by torch_bench.py --write-features)
  // instead of writing one for this run; with --rounds, its cases alternate rounds as the others do.
  const given = new Map<string, string>();
  argv.forEach((a, i) => {
    if (a !== '--features-file') return;
    const [name, path] = (argv[i + 1] ?? '').split('=');
    if (!name || !path || !(name in FILES) || !existsSync(path)) {
      process.stderr.write(
        `bench: --features-file expects NAME=FILE (NAME one of ${Object.keys(FILES).join(', ')}, FILE existing), got '${argv[i + 1]}'\n`,
      );
      process.exit(2);
    }
    given.set(name, resolve(path));
  });
  const blasIdx = argv.indexOf('--torch-blas');
  const blasDir = blasIdx >= 0 ? resolve(argv[blasIdx + 1] ?? '') : null;
  if (blasDir !== null && !existsSync(join(blasDir, 'libblas.so.3'))) {
    process.stderr.write(`bench: --torch-blas expects a folder holding libblas.so.3, got '${blasDir}'\n`);
    process.exit(2);
  }
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
    if (given.has(key)) {
      files[key] = given.get(key)!;
      return files[key]!;
    }
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
      // Rounds alternate a longtail process and a PyTorch one, so both see the same load; the
      // long file cases and the cases without a PyTorch counterpart run one round.
      const paired =
        spec.kind === 'train' ||
        spec.kind === 'extract' ||
        spec.kind === 'stage2' ||
        (spec.kind === 'stage2-file' && roundsIdx >= 0);
      const n = paired ? rounds : 1;
      const loads: number[] = [];
      const ours: number[] = [];
      const allRuns: number[] = [];
      const theirs: TorchRound[] = [];
      let out!: {
        runs: number[];
        readSeconds?: number;
        kernels: string;
        peakRssMiB: number;
        pkg?: PackageFigures;
        detail?: string;
      };
      let peak = 0;
      for (let round = 0; round < n; round++) {
        loads.push(os.loadavg()[0]!);
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
            // Several rounds: fewer repeats in each (the rounds carry the spread).
            ...(paired && n > 1 && !quick ? ['--repeats', '3'] : []),
          ],
          { encoding: 'utf8', timeout: 4 * 3600_000 },
        );
        if (r.status !== 0) throw new Error(`bench case '${spec.name}' failed:\n${r.stderr}`);
        out = JSON.parse(r.stdout.trim().split('\n').pop()!);
        ours.push(median(out.runs));
        allRuns.push(...out.runs);
        peak = Math.max(peak, out.peakRssMiB);
        loads.push(os.loadavg()[0]!);
        if (!noTorch) {
          const t = torchRound(spec, files, { quick, fullEpochs, blasDir, round });
          if (t) theirs.push(t);
          loads.push(os.loadavg()[0]!);
        }
      }
      const t0 = theirs[0];
      const torch: CaseResult['torch'] =
        t0 && theirs.length === n
          ? {
              rounds: theirs.map((t) => t.figure),
              median: median(theirs.map((t) => t.figure)),
              min: Math.min(...theirs.map((t) => t.figure)),
              max: Math.max(...theirs.map((t) => t.figure)),
              impl: t0.impl,
              runtime: t0.runtime,
              ...(t0.readSeconds === undefined ? {} : { readSeconds: t0.readSeconds }),
              ...(t0.peakRssMiB === undefined ? {} : { peakRssMiB: t0.peakRssMiB }),
            }
          : null;
      const ratio = torch ? pairedRatio(ours, torch.rounds, spec.unit) : null;
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
        median: median(ours),
        // One round for a bf16 case: the spread is its repeats' ratios.
        min: Math.min(...(spec.kind === 'bf16' ? allRuns : ours)),
        max: Math.max(...(spec.kind === 'bf16' ? allRuns : ours)),
        rounds: ours,
        peakRssMiB: Math.round(peak),
        kernels: out.kernels,
        runs: allRuns,
        load: {
          min: Math.min(...loads),
          max: Math.max(...loads),
          loaded: Math.max(...loads) > loadedLimit(spec.threads),
        },
        torch,
        ratio: ratio ? ratio.median : null,
        ratioRange: ratio ? { min: ratio.min, max: ratio.max } : null,
        ...(out.readSeconds === undefined ? {} : { readSeconds: out.readSeconds }),
        ...(out.detail === undefined ? {} : { detail: out.detail }),
        ...(projectTo
          ? {
              projected: {
                epochs: projectTo,
                seconds: median(ours) * projectTo,
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
  const loaded = results.filter((r) => r.load.loaded).map((r) => r.case);
  const doc = {
    createdAt: new Date().toISOString(),
    quick,
    rounds,
    /** Cases during which the 1-minute load average exceeded their threads + LOADED_ABOVE: not quiet-machine figures. */
    loaded,
    loadedAbove: LOADED_ABOVE,
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
        [
          'case',
          'threads',
          'unit',
          'median',
          'min',
          'max',
          'peak RSS MiB',
          'PyTorch',
          'speed vs PyTorch (min-max)',
          'load',
        ],
        results.map((r) => [
          r.case,
          r.threads,
          r.unit,
          f(r.median),
          f(r.min),
          f(r.max),
          r.peakRssMiB,
          r.torch ? f(r.torch.median) : '-',
          r.ratio && r.ratioRange
            ? `${r.ratio.toFixed(2)} (${r.ratioRange.min.toFixed(2)}-${r.ratioRange.max.toFixed(2)})`
            : '-',
          `${r.load.min.toFixed(1)}-${r.load.max.toFixed(1)}${r.load.loaded ? ' LOADED' : ''}`,
        ]),
      ),
    );
    for (const r of results)
      if (r.detail !== undefined) console.log(`${r.case} (threads ${r.threads}): ${r.detail}`);
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
            `${r.package.versionRssMiB.toFixed(0)} MiB RSS (median), TensorFlow.js loaded: ${r.package.versionLoadsTfjs ? 'yes' : 'no'}; ` +
            `charts render (SVG, PNG): ${r.package.chartsRender ? 'yes' : 'no'}; budget ${INSTALL_BUDGET_MIB} MiB`,
        );
    const seen = new Set<string>();
    for (const r of results) {
      if (!r.torch) continue;
      const line = `PyTorch (${r.threads} thread(s)): ${r.torch.impl}; ${describeRuntime(r.torch.runtime)}`;
      if (!seen.has(line)) console.log(line);
      seen.add(line);
    }
    if (results.some((r) => r.torch))
      console.log(
        `speed vs PyTorch: the ratio of the medians over ${rounds} alternating rounds each; (min-max): the rounds' own ratios`,
      );
    if (loaded.length > 0)
      console.log(
        `LOADED: the 1-minute load average was above the case's threads + ${LOADED_ABOVE} during ${loaded.length} of ${results.length} case(s); these are not quiet-machine figures`,
      );
    const kernels = [...new Set(results.map((r) => r.kernels))].join(', ');
    console.log(`\ntraining kernels: ${kernels} (LONGTAIL_NATIVE=0 runs the wasm ones)`);
    const shown = relative(process.cwd(), outFile);
    console.log(`written to ${shown.startsWith('..') ? outFile : shown}`);
  }
}

await main(process.argv.slice(2));
