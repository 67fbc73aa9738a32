/**
 * The training kernels of the tfjs `wasm` backend: two sets, keyed by tfjs kernel name, one
 * registered at a time. Both run on the wasm backend; the names say what computes:
 *
 * - `native`: the C++ addon (native-kernels/, one kernel a file; AVX2 + FMA): convolutions and both their
 *   gradients, training batch norm and its gradient, matrix products. A call it does not cover
 *   (dilation, NCHW, other dtypes) goes to the `wasm` set's kernel of the same name.
 * - `wasm`: tfjs-wasm alone, so it runs wherever that backend runs: the backend's own (XNNPACK)
 *   kernels and compositions of them (kernels/), which add the Conv2DBackpropFilter the backend
 *   lacks and replace kernels too slow to train with.
 * - `bf16`: the `native` set with the convolution passes that gain from it in bf16 (bf16Wins:
 *   inputs rounded to bf16, fp32 sums; a CPU with AVX512_BF16). Never chosen by itself: stage 1
 *   switches to it for `--precision bf16` and back afterwards.
 *
 * The names are public (`setTrainingKernels`, `LONGTAIL_NATIVE=0`, `doctor`, bench results), so
 * `wasm` keeps its name although it is also the backend's.
 */
import {
  BatchMatMul,
  Conv2D,
  Conv2DBackpropFilter,
  Conv2DBackpropInput,
  getBackend,
  getKernel,
  Identity,
  type KernelConfig,
  registerKernel,
  unregisterKernel,
} from '@tensorflow/tfjs-core';
import { ConfigError } from '../errors.ts';
import { bf16Status, nativeStatus } from '../native-addon.ts';
import { checkName } from '../registry.ts';
import { batchMatMulConfig } from './kernels/BatchMatMul.ts';
import { conv2DBackpropFilterConfig } from './kernels/Conv2DBackpropFilter.ts';
import { conv2DBackpropInputConfig } from './kernels/Conv2DBackpropInput.ts';
import { identityConfig } from './kernels/Identity.ts';
import { nativeKernelSet } from './native-kernels/kernel-set.ts';

/** Kernel configs keyed by tfjs kernel name. */
export type KernelSet = Record<string, KernelConfig>;

/** The wasm backend's own kernels that ours wrap or fall back to, looked up before ours replace them. */
export interface OwnKernels {
  backendName: string;
  [BatchMatMul]: KernelConfig;
  [Conv2D]: KernelConfig;
  /** Optional: only the fallback for padding wider than the filter. */
  [Conv2DBackpropInput]: KernelConfig | undefined;
}

export interface TrainingKernelSet {
  /** Why the set cannot run here; '' when it can. */
  unavailable(): string;
  build(own: OwnKernels): KernelSet;
}

function wasmKernels(own: OwnKernels): KernelSet {
  const { backendName } = own;
  return {
    [Identity]: identityConfig(backendName),
    [BatchMatMul]: batchMatMulConfig(backendName, own[BatchMatMul]),
    [Conv2D]: own[Conv2D],
    [Conv2DBackpropInput]: conv2DBackpropInputConfig(backendName, own[Conv2DBackpropInput]),
    [Conv2DBackpropFilter]: conv2DBackpropFilterConfig(backendName),
  };
}

/**
 * The training-kernel sets; of `native` and `wasm`, in that order of preference, the first that
 * runs here is installed. `bf16` only when asked for (setTrainingKernels).
 */
export const TRAINING_KERNELS = {
  native: {
    unavailable: () => nativeStatus().reason,
    build: (own) => nativeKernelSet(wasmKernels(own), own.backendName),
  },
  wasm: {
    unavailable: () => '',
    build: wasmKernels,
  },
  bf16: {
    unavailable: () => bf16Status().reason,
    build: (own) => nativeKernelSet(wasmKernels(own), own.backendName, true),
  },
} as const satisfies Record<string, TrainingKernelSet>;

/**
 * `native`: the AVX2 addon; `wasm`: tfjs-wasm's own kernels and compositions of them; `bf16`:
 * `native` with bf16 convolutions where they are faster.
 */
export type TrainingKernels = keyof typeof TRAINING_KERNELS;
const KINDS = Object.keys(TRAINING_KERNELS) as TrainingKernels[];
/** The sets installed by default, in order of preference. */
const DEFAULT_KINDS: TrainingKernels[] = ['native', 'wasm'];

let installed = false;
/** The sets that run here, built once at install, and which one is registered now. */
let kernelSets: Partial<Record<TrainingKernels, KernelSet>> | null = null;
let active: TrainingKernels = 'wasm';

function ownKernels(backendName: string): OwnKernels {
  const required = (name: string) => {
    const k = getKernel(name, backendName);
    if (k === undefined) throw new Error(`the ${backendName} backend has no ${name} kernel`);
    return k;
  };
  return {
    backendName,
    [BatchMatMul]: required(BatchMatMul),
    [Conv2D]: required(Conv2D),
    [Conv2DBackpropInput]: getKernel(Conv2DBackpropInput, backendName),
  };
}

/**
 * Registers the training kernels on the `wasm` backend (idempotent): the first set that runs
 * here (`native` where the addon runs, else `wasm`). Call after the wasm backend module is
 * imported and before the backend starts (setup functions run at start); done by `initBackend`.
 */
export function installWasmTrainingKernels(backendName = 'wasm'): void {
  if (installed) return;
  installed = true;
  const own = ownKernels(backendName);
  const sets: Partial<Record<TrainingKernels, KernelSet>> = {};
  for (const kind of KINDS) {
    if (TRAINING_KERNELS[kind].unavailable() === '') sets[kind] = TRAINING_KERNELS[kind].build(own);
  }
  kernelSets = sets;
  register(DEFAULT_KINDS.find((kind) => sets[kind] !== undefined)!);
}

function register(kind: TrainingKernels): void {
  const all = Object.values(kernelSets!).flatMap((set) => Object.values(set));
  for (const k of all) {
    if (getKernel(k.kernelName, k.backendName) !== undefined) unregisterKernel(k.kernelName, k.backendName);
  }
  for (const k of Object.values(kernelSets![kind]!)) registerKernel(k);
  active = kind;
}

/** Which training kernels the wasm backend runs now. */
export function trainingKernels(): TrainingKernels {
  return active;
}

/**
 * Switches the wasm backend's training kernels (tests and the bench compare the sets). An
 * unknown name is an error listing the sets; asking for one that cannot run here is an error
 * naming why.
 */
export function setTrainingKernels(kind: TrainingKernels): void {
  checkName(TRAINING_KERNELS, 'training kernel set', kind);
  if (kernelSets === null)
    throw new Error('the wasm training kernels are not installed (call initBackend first)');
  if (kernelSets[kind] === undefined) {
    throw new Error(`${kind} kernels are not available: ${TRAINING_KERNELS[kind].unavailable()}`);
  }
  register(kind);
}

/**
 * Switches this thread's wasm backend to the `bf16` set for a stage-1 run (`--precision bf16`)
 * and returns the function that switches back. Refuses with a ConfigError naming the flag where
 * it cannot run: another backend, no native kernels, or a CPU without AVX512_BF16.
 */
export function enterBf16Training(): () => void {
  const backend = getBackend();
  const why =
    backend !== 'wasm'
      ? `it needs the wasm backend with the native kernels (running: ${backend})`
      : kernelSets?.bf16 === undefined
        ? TRAINING_KERNELS.bf16.unavailable() || 'the wasm training kernels are not installed'
        : '';
  if (why !== '') throw new ConfigError(`--precision bf16: cannot run here: ${why}; use --precision fp32`);
  const before = active;
  register('bf16');
  return () => register(before);
}
