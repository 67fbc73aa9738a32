import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { availableBackends } from '../backend/backend.ts';
import { checkBundledFashionMnist } from '../data/fashion-mnist.ts';
import { avx512Status, bf16Status } from '../native-addon.ts';
import { formatTable } from '../report/table.ts';
import { backendOption, printJson, startBackend } from './common.ts';

/** An optional peer dependency: its installed version, or null when it cannot be found. */
function optionalVersion(name: string): string | null {
  try {
    const req = createRequire(import.meta.url);
    const pkg = req(`${name}/package.json`) as { version?: string };
    return pkg.version ?? 'unknown version';
  } catch {
    return null;
  }
}

/** The optional parts, present or not, and what each enables. */
export function optionalParts(): {
  name: string;
  version: string | null;
  enables: string;
  install: string;
}[] {
  return [
    {
      name: 'onnxruntime-node',
      version: optionalVersion('onnxruntime-node'),
      enables: 'ONNX backbones (--backbone onnx:FILE) and running exported ONNX models',
      install:
        'npm install onnxruntime-node --onnxruntime-node-install=skip (CUDA: --onnxruntime-node-install=cuda12)',
    },
  ];
}

/** The folder of the Python examples (PyTorch stage 1, ONNX export, the preprocessing contract). */
export function examplesDir(): string {
  return fileURLToPath(new URL('../../examples/', import.meta.url));
}

export function registerDoctor(program: Command): void {
  program
    .command('doctor')
    .description('show the compute backend, versions, the machine and whether the bundled data is intact')
    .addOption(backendOption())
    .option('--json', 'print one JSON document instead of the table')
    .action(async (opts: { backend?: string; json?: boolean }) => {
      const info = await startBackend(opts.backend);
      const available = await availableBackends();
      const data = checkBundledFashionMnist();
      const avx512 = avx512Status();
      const report = {
        backend: info.name,
        availableBackends: available,
        wasmSimd: info.simd,
        wasmThreads: info.threads,
        trainingKernels: info.trainingKernels,
        nativeKernels: info.nativeNote === '' ? 'available' : info.nativeNote,
        /** Whether the native kernels run their AVX-512 tiles, or why not. */
        avx512Tiles: avx512.available ? 'on' : `off: ${avx512.reason}`,
        /** Whether the bf16 products (vdpbf16ps, fp32 sums) run here, or why not. */
        bf16Kernels: ((s) => (s.available ? 'available (AVX512_BF16)' : `off: ${s.reason}`))(bf16Status()),
        tfjs: info.tfjsVersion,
        node: process.versions.node,
        platform: `${os.platform()} ${os.arch()}`,
        cpus: os.cpus().length,
        cpuModel: os.cpus()[0]?.model ?? 'unknown',
        memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
        bundledData: data,
        optional: optionalParts(),
        examples: existsSync(examplesDir()) ? examplesDir() : null,
      };
      if (opts.json) return printJson(report);
      const rows: [string, string][] = [
        ['backend', `${report.backend} (available: ${available.join(', ')})`],
        ['wasm SIMD / threads', info.name === 'wasm' ? `${report.wasmSimd} / ${report.wasmThreads}` : '-'],
        [
          'training kernels',
          info.name !== 'wasm'
            ? '-'
            : info.trainingKernels === 'native'
              ? 'native (AVX2 + FMA addon: convolutions, batch norm, matrix products)'
              : `wasm (native: ${report.nativeKernels})`,
        ],
        ['AVX-512 tiles', report.avx512Tiles],
        ['bf16 kernels', report.bf16Kernels],
        ['tfjs', report.tfjs],
        ['node', report.node],
        ['platform', report.platform],
        ['cores', `${report.cpus} x ${report.cpuModel}`],
        ['memory', `${report.memoryGiB} GiB`],
        ['fashion-mnist', data.ok ? `ok (${data.dir})` : `PROBLEM: ${data.problem}`],
        ...report.optional.map((o): [string, string] => [
          o.name,
          o.version ? `${o.version}: ${o.enables}` : `not installed (${o.enables}): ${o.install}`,
        ]),
        ['python examples', report.examples ?? 'not found (examples/ of the package)'],
      ];
      console.log(formatTable(['check', 'value'], rows));
      if (info.name !== 'tensorflow') {
        console.log(
          "\nnote: `npm i @tensorflow/tfjs-node` (needs internet for its binary) enables TensorFlow's C++ backend (tensorflow).",
        );
      }
      if (!data.ok) process.exitCode = 1;
    });
}
